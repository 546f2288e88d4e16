"""Our DVHs against dicompyler-core's, an independent implementation (#13).

dicompyler-core 0.5.6 rasterizes each RT Structure Set contour on the RT Dose grid itself
(matplotlib point-in-polygon at the dose voxel centres, contours XOR-ed per plane, 1 cGy
histogram bins) and computes D95, D50, D2 and the mean from its own cumulative DVH; ours
come from the case's voxel masks (:func:`mock_tps.dvh.dvh_from_doses`, 0.01 Gy bins). It
runs in a venv of its own (``tests/dicompyler_env.py``: pydicom 2), made by the session
fixture below on first use (about a minute) and reused afterwards.

Tolerance: 1 % of the prescription at D95, D50, D2 and the mean, the agreement issue #13
asks for. What we expect is far less: both count the same voxels (our contours run along
voxel edges, so dicompyler's fill at voxel centres recovers our masks), both bin at 0.01 Gy,
and the RT Dose's quantization is ~1e-8 Gy; so the measured differences (printed) are
about one bin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dicom_export_helpers import PATIENT, openkbp_dicom, phantom_session, runner  # noqa: F401
from dicompyler_env import DicompylerSetupError, dicompyler_dvh, ensure_venv

import agent.cli.main as cli
from mock_tps.dicom.geometry import DicomGeometry
from mock_tps.dicom.write_common import anonymous_identity
from mock_tps.dicom.write_rtdose import write_rtdose
from mock_tps.dvh import dvh_from_doses
from mock_tps.final_dose import FINAL_DOSE_FILENAME, load_final_dose
from mock_tps.openkbp import ORGANS, TARGET_LEVELS_GY, load_openkbp

TOLERANCE_PCT_RX = 1.0


@pytest.fixture(scope="session")
def dicompyler() -> Path:
    """The dicompyler venv's Python (created on first use; pip failing fails the test)."""
    try:
        return ensure_venv()
    except DicompylerSetupError as exc:
        pytest.fail(f"the dicompyler-core venv could not be set up: {exc}")


#: Dose levels of the D-metrics (% of the volume).
LEVELS_PCT = {"D95_gy": 95.0, "D50_gy": 50.0, "D2_gy": 2.0}


def _cumulative_cgy(doses_gy: np.ndarray, n_bins: int) -> np.ndarray:
    """% of the voxels receiving at least ``i`` cGy, ``i = 0 .. n_bins - 1`` (dicompyler's bins)."""
    d = np.sort(doses_gy.astype(np.float64))
    edges = np.arange(n_bins) / 100.0
    return 100.0 * (d.size - np.searchsorted(d, edges - 1e-9, side="left")) / d.size


def _standard_dx(curve_pct: np.ndarray, level_pct: float) -> float:
    """The highest dose (Gy, 1 cGy bins) that ``level_pct`` of the volume receives."""
    return float(np.flatnonzero(curve_pct >= level_pct - 1e-9)[-1]) / 100.0


def _nearest_dx(curve_pct: np.ndarray, level_pct: float) -> float:
    """dicompyler-core 0.5.6's D_x: the bin whose cumulative volume is nearest ``level_pct``
    (``DVH.dose_constraint``: ``bins[argmin |V - x|]``, no interpolation)."""
    return float(np.argmin(np.abs(curve_pct - level_pct))) / 100.0


def _compare(
    doses_gy: np.ndarray,
    masks: dict[str, np.ndarray],
    voxel_cm3: float,
    theirs: dict[str, dict],
    rx_gy: float,
) -> dict[str, float]:
    """Assert the agreement per structure; return the largest differences (Gy)."""
    tolerance_gy = TOLERANCE_PCT_RX / 100.0 * rx_gy
    worst = {"curve_pct": 0.0, "metrics_gy": 0.0, "own_statistics_gy": 0.0}
    explained = []
    for sid, mask in masks.items():
        assert sid in theirs, f"dicompyler has no ROI {sid!r}"
        other, doses = theirs[sid], doses_gy[mask]
        ours = dvh_from_doses(sid, doses, voxel_cm3)
        # the same voxels: dicompyler's volume (voxels x plane area x plane thickness) is ours
        assert other["volume_cm3"] == pytest.approx(ours.volume_cm3, rel=1e-6), sid
        # the same cumulative DVH, bin by bin: dicompyler's V(>= i cGy) lies between ours at
        # i - 1 and i + 1 cGy (a dose on a bin edge, as OpenKBP's 1e-3 Gy doses often are,
        # may fall into the bin below after the RT Dose's scaling)
        curve = np.asarray(other["cumulative_pct"])
        mine = _cumulative_cgy(doses, curve.size + 1)
        above, below = np.append(mine[1:], 0.0)[: curve.size], np.append(100.0, mine[:-1])
        assert np.all(curve >= above[: curve.size] - 1e-6), sid
        assert np.all(curve <= below[: curve.size] + 1e-6), sid
        gap = float(np.max(np.abs(curve - mine[: curve.size])))
        worst["curve_pct"] = max(worst["curve_pct"], gap)
        assert abs(other["mean_gy"] - ours.mean_dose_gy) <= tolerance_gy, sid
        for metric, level in LEVELS_PCT.items():
            value = ours.dose_at_volume_pct(level)
            # D_x read from dicompyler's DVH with our definition
            diff = abs(_standard_dx(curve, level) - value)
            assert diff <= tolerance_gy, (sid, metric, value, _standard_dx(curve, level))
            worst["metrics_gy"] = max(
                worst["metrics_gy"], diff, abs(other["mean_gy"] - ours.mean_dose_gy)
            )
            # dicompyler's own statistic: within the tolerance, or else exactly its own
            # nearest-bin definition applied to our DVH (a difference of definition only)
            own = abs(other[metric] - value)
            worst["own_statistics_gy"] = max(worst["own_statistics_gy"], own)
            if own > tolerance_gy:
                nearest = _nearest_dx(mine[: curve.size], level)
                assert other[metric] == pytest.approx(nearest, abs=0.0101), sid
                explained.append(
                    f"{sid} {metric}: ours {value:.2f}, dicompyler {other[metric]:.2f}"
                )
    print(f"largest differences {worst}; dicompyler's nearest-bin D_x beyond "
          f"{TOLERANCE_PCT_RX}% of Rx: {explained or 'none'}")  # fmt: skip
    return worst


def test_phantom_session_dvhs_agree(
    dicompyler: Path,
    phantom_session: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A briefly planned prostate phantom, exported with its structure set from the CLI."""
    session = phantom_session
    rd, rs = tmp_path / "RD.dcm", tmp_path / "RS.dcm"
    result = runner.invoke(
        cli.app, ["export", str(session), "--rtdose", str(rd), "--rtstruct", str(rs)]
    )
    assert result.exit_code == 0, result.output
    final = load_final_dose(session / FINAL_DOSE_FILENAME)
    masks = {s: m for s, m in final.masks.items() if m.any()}
    worst = _compare(final.dose_gy, masks, final.grid.voxel_volume_cm3,
                     dicompyler_dvh(dicompyler, rs, rd), final.meta.total_dose_gy)  # fmt: skip
    # structures of thousands of voxels: dicompyler's own statistics agree too
    assert worst["own_statistics_gy"] <= TOLERANCE_PCT_RX / 100.0 * final.meta.total_dose_gy


def test_openkbp_anatomy_through_export_case(
    dicompyler: Path,
    openkbp_dicom: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Real anatomy: OpenKBP pt_1 through ``rtplan export-case`` (CT + RT Structure Set of its
    clinical contours), with its clinical dose written as RT Dose in the same frame."""
    folder = openkbp_dicom
    patient = load_openkbp(PATIENT)
    case = patient.case
    identity = anonymous_identity(patient.content_hash)  # the frame export-case wrote
    geometry = DicomGeometry.from_grid(
        case.grid, identity.frame_of_reference_uid, identity.study_instance_uid
    )
    rd = write_rtdose(tmp_path / "RD.dcm", patient.clinical_dose_gy, geometry, identity, "2.25.1")
    names = [s for s in (*TARGET_LEVELS_GY, *ORGANS, case.body_id) if s in case.structures]
    masks = {s: case.structures[s].mask for s in names}
    theirs = dicompyler_dvh(dicompyler, folder / "RS.dcm", rd)
    worst = _compare(patient.clinical_dose_gy, masks, case.grid.voxel_volume_cm3, theirs, 70.0)
    # every structure of the patient was compared, D_x and means within 1 % of Rx (0.7 Gy)
    assert set(theirs) >= set(masks) and len(masks) >= 8
    assert worst["metrics_gy"] <= TOLERANCE_PCT_RX / 100.0 * 70.0
