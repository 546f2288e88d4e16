"""bench/peer_pyradplan.py without the peer venv: CLI, JSON payload and D_x helper."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "peer_pyradplan.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_pyradplan_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peer = _load_script()


def _fake_result() -> dict[str, Any]:
    # numbers of one real run (CT dose grid), with numpy scalar types as pyRadPlan returns them
    return {
        "dij_s": np.float64(69.6),
        "opt_s": 128.7,
        "n_voxels": np.int64(3_597_681),
        "n_beamlets": np.int32(2226),
        "nnz": np.int64(161_188_317),
        "target_d95_gy": np.float32(50.0),
        "core_d10_gy": 26.17,
        "peak_rss_mb": 5620.5,
        "version": "0.5.0",
        "solver": "scipy:L-BFGS-B",
        "num_iter": 249,
    }


def test_module_import_does_not_import_pyradplan() -> None:
    was_loaded = "pyRadPlan" in sys.modules
    _load_script()
    assert was_loaded or "pyRadPlan" not in sys.modules


def test_help_runs_with_the_main_venv_python() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for option in ("--out", "--phantom", "--solver", "--dose-grid-mm"):
        assert option in proc.stdout


def test_parse_args_defaults_and_values(tmp_path: Path) -> None:
    args = peer.parse_args(["--out", str(tmp_path / "p.json")])
    assert args.out == tmp_path / "p.json"
    assert (args.phantom, args.solver, args.dose_grid_mm, args.verbose) == (
        None,
        "auto",
        None,
        False,
    )
    args = peer.parse_args(
        ["--out", "x.json", "--solver", "scipy", "--dose-grid-mm", "5", "--phantom", "t.mat"]
    )
    assert (args.solver, args.dose_grid_mm, args.phantom) == ("scipy", 5.0, Path("t.mat"))


def test_parse_args_rejects_missing_out_and_unknown_solver() -> None:
    with pytest.raises(SystemExit) as missing:
        peer.parse_args([])
    assert missing.value.code == 2
    with pytest.raises(SystemExit) as bad:
        peer.parse_args(["--out", "x.json", "--solver", "gurobi"])
    assert bad.value.code == 2


def test_main_reports_missing_pyradplan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pyRadPlan", None)  # makes `import pyRadPlan` fail
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = tmp_path / "peer.json"
    assert peer.main(["--out", str(out)]) == 3
    assert "setup_peer.sh" in capsys.readouterr().err
    assert not out.exists()


def test_main_rejects_missing_phantom(tmp_path: Path) -> None:
    out = tmp_path / "peer.json"
    assert peer.main(["--out", str(out), "--phantom", str(tmp_path / "none.mat")]) == 2
    assert not out.exists()


def test_result_json_has_required_keys_first_with_plain_types() -> None:
    payload = peer.result_json(_fake_result())
    keys = list(payload)
    assert keys[: len(peer.REQUIRED_KEYS)] == list(peer.REQUIRED_KEYS)
    assert keys[len(peer.REQUIRED_KEYS) :] == ["solver", "num_iter"]
    for key in ("n_voxels", "n_beamlets", "nnz"):
        assert type(payload[key]) is int
    for key in ("dij_s", "opt_s", "target_d95_gy", "core_d10_gy", "peak_rss_mb"):
        assert type(payload[key]) is float
    assert payload["version"] == "0.5.0"
    assert payload["nnz"] == 161_188_317
    assert json.loads(json.dumps(payload)) == payload  # serialisable as is


def test_result_json_rejects_missing_key_and_non_finite_value() -> None:
    fake = _fake_result()
    del fake["nnz"]
    with pytest.raises(KeyError, match="nnz"):
        peer.result_json(fake)
    fake = _fake_result()
    fake["opt_s"] = float("nan")
    with pytest.raises(ValueError, match="opt_s"):
        peer.result_json(fake)


def test_write_result_json_round_trip(tmp_path: Path) -> None:
    path = peer.write_result_json(_fake_result(), tmp_path / "sub" / "peer.json")
    data = json.loads(path.read_text())
    assert set(peer.REQUIRED_KEYS) <= set(data)
    assert data["n_beamlets"] == 2226
    assert data["core_d10_gy"] == pytest.approx(26.17, abs=1e-12)  # written as given
    assert not list(path.parent.glob("*.tmp"))


def test_dose_at_volume_pct_hand_computed() -> None:
    # doses 1..100 Gy, one voxel each: 95 voxels get >= 6 Gy, 10 voxels get >= 91 Gy
    doses = np.arange(100, 0, -1, dtype=np.float64)
    assert peer.dose_at_volume_pct(doses, 95.0) == 6.0
    assert peer.dose_at_volume_pct(doses, 10.0) == 91.0
    assert peer.dose_at_volume_pct(doses, 100.0) == 1.0
    assert peer.dose_at_volume_pct(doses, 0.5) == 100.0
    assert peer.dose_at_volume_pct(np.array([7.5]), 95.0) == 7.5
    # D_x is linear in dose: scaling doses scales it (why the peer rescales D95 to 50 Gy exactly)
    assert peer.dose_at_volume_pct(doses * 2.5, 95.0) == 15.0


def test_dose_at_volume_pct_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        peer.dose_at_volume_pct(np.array([]), 95.0)
    for bad_pct in (0.0, 100.5):
        with pytest.raises(ValueError, match="volume_pct"):
            peer.dose_at_volume_pct(np.ones(3), bad_pct)


def test_beam_geometry_is_seven_equispaced_coplanar_fields() -> None:
    angles = np.array(peer.GANTRY_ANGLES_DEG)
    assert len(angles) == 7
    # 360 / 7 = 51.428...; printed rounded to 0.01 degree in the TG-119 set-up
    assert np.allclose(np.diff(angles), 360.0 / 7, atol=1e-9)
    assert angles[0] == 0.0 and round(float(angles[-1]), 2) == 308.57
    assert peer.BIXEL_WIDTH_MM == 5.0 and peer.COUCH_ANGLE_DEG == 0.0
