"""``python -m bench.openkbp`` (#13, item 3): patient folders found, a clear message when
there are none, and one patient planned end to end on the vendored data (tests/data/openkbp,
OpenKBP pt_1, MIT) without writing the real results file or a folder name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import bench.openkbp as bench

PATIENT = Path(__file__).resolve().parent / "data" / "openkbp" / "pt_1"


def test_patient_folders_are_found_in_a_folder_of_patients(tmp_path: Path) -> None:
    for name in ("pt_10", "pt_2", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "pt_10" / "ct.csv").write_text(",data\n")
    (tmp_path / "pt_2" / "ct.csv.gz").write_bytes(b"")
    assert bench.patient_folders([tmp_path]) == [tmp_path / "pt_2", tmp_path / "pt_10"]
    assert bench.patient_folders([tmp_path / "pt_2"]) == [tmp_path / "pt_2"]


def test_no_patients_is_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main([str(tmp_path / "absent")]) == 2
    out = capsys.readouterr().out
    assert "no OpenKBP patient folder found" in out and "provided-data/train-pats" in out


def test_one_patient_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "pt_1"
    shutil.copytree(PATIENT, folder)
    written: dict[str, Any] = {}

    def fake_write(name: str, payload: dict[str, Any]) -> Path:
        written[name] = payload
        return tmp_path / f"{name}.json"

    monkeypatch.setattr(bench, "write_results", fake_write)
    assert bench.main([str(folder), "--max-iterations", "0", "--no-warm"]) == 0  # template plan
    payload = written["openkbp"]
    (row,) = payload["patients"]
    assert row["patient"].startswith("patient 1 (") and row["template"].endswith("-3level")
    assert row["clinical_ptv70_d95_gy"] == pytest.approx(68.65, abs=0.05)
    assert len(row["criteria"]) == 19 and payload["patients_planned"] == 1
    assert {c["better"] for c in row["criteria"]} == {"higher", "lower"}
    assert "pt_1" not in json.dumps(payload)
