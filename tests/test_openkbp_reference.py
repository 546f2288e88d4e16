"""The clinical plan as a reference (#13, item 2): OpenKBP's DVH criteria of the vendored
patient's delivered dose (tests/data/openkbp, OpenKBP pt_1, MIT) against values computed
here with numpy from the raw CSV files by OpenKBP's definitions (its evaluation code:
``numpy.percentile`` at 1 / 5 / 99 for D99 / D95 / D1; D0.1cc the percentile at
``100 - n / size * 100`` with ``n = max(1, round(100 / voxel_mm3))``; mean), and the
verdicts of the agent-vs-clinical comparison."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from agent.evaluation.reference import compare_criteria, verdict
from mock_tps.openkbp import ORGANS, TARGET_LEVELS_GY, load_openkbp
from mock_tps.openkbp_metrics import BETTER, openkbp_metrics, tenth_cc_voxels

PATIENT = Path(__file__).resolve().parent / "data" / "openkbp" / "pt_1"


def _rows(name: str, cols: tuple[int, ...]) -> np.ndarray:
    with gzip.open(PATIENT / f"{name}.csv.gz", "rt") as f:
        return np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2, usecols=cols)


def _reference() -> dict[str, dict[str, float]]:
    """OpenKBP's criteria of the delivered dose, from the raw files in the file's own order."""
    rows = _rows("dose", (0, 1))
    dose = np.zeros(128**3)
    np.put(dose, rows[:, 0].astype(int), rows[:, 1])  # as OpenKBP's loader does
    with gzip.open(PATIENT / "voxel_dimensions.csv.gz", "rt") as f:
        voxel_mm3 = float(np.prod(np.loadtxt(f)))
    out: dict[str, dict[str, float]] = {}
    for name in (*TARGET_LEVELS_GY, *ORGANS):
        if not (PATIENT / f"{name}.csv.gz").is_file():
            continue
        d = dose[_rows(name, (0,))[:, 0].astype(int)]
        if name.startswith("PTV"):
            out[name] = {
                k: float(np.percentile(d, q)) for k, q in (("D99", 1), ("D95", 5), ("D1", 99))
            }
        else:
            n = max(1, round(100 / voxel_mm3))
            out[name] = {
                "D0.1cc": float(np.percentile(d, 100 - n / d.size * 100)),
                "mean": float(d.mean()),
            }
    return out


def test_clinical_criteria_match_openkbp_definitions_on_the_raw_csv() -> None:
    patient = load_openkbp(PATIENT)
    case = patient.case
    masks = {k: s.mask for k, s in case.structures.items() if k in (*TARGET_LEVELS_GY, *ORGANS)}
    ours = openkbp_metrics(patient.clinical_dose_gy, masks, frozenset(TARGET_LEVELS_GY),
                           patient.voxel_volume_mm3)  # fmt: skip
    ref = _reference()
    assert set(ours) == set(ref) == {"PTV70", "PTV63", "PTV56", "Brainstem", "SpinalCord",
                                     "RightParotid", "LeftParotid", "Mandible"}  # fmt: skip
    for sid, values in ref.items():
        assert ours[sid] == pytest.approx(values, abs=1e-4), sid  # float32 dose grid
    assert ref["PTV70"]["D95"] == pytest.approx(68.6, abs=0.05)  # the 68.6 Gy as delivered
    assert tenth_cc_voxels(patient.voxel_volume_mm3) == 3  # 100 / 38.14 mm3, rounded


def test_verdicts_follow_the_direction_and_the_tie_tolerance() -> None:
    assert verdict(70.0, 69.8, "higher", 0.5) == "tie"
    assert verdict(70.0, 69.0, "higher", 0.5) == "agent"
    assert verdict(30.0, 29.0, "lower", 0.5) == "clinical"
    agent = {"PTV70": {"D99": 66.0, "D1": 75.0}, "Larynx": {"mean": 40.0}}
    clinical = {"PTV70": {"D99": 64.0, "D1": 74.0}}
    rows = compare_criteria(agent, clinical, clinical, BETTER, 0.5)
    assert [(r.structure_id, r.metric, r.verdict) for r in rows] == [
        ("PTV70", "D99", "agent"),
        ("PTV70", "D1", "clinical"),
    ]  # Larynx is absent from the clinical side: no row
