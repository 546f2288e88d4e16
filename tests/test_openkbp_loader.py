"""The OpenKBP loader (#13): the vendored patient (tests/data/openkbp, OpenKBP pt_1, MIT) as a
case: orientation from the anatomy, densities through the calibration curve, masks exactly
as in the CSV files, derived structures without nesting assumptions, errors that say what
is wrong. References are computed here from the raw CSV files with numpy."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from esapi_bridge.errors import InvalidInput
from mock_tps.hu_density import DEFAULT_CURVE, HuDensityCurve
from mock_tps.openkbp import (
    BODY_MINUS_PTV_ID,
    PTV56_FAR_ID,
    OpenKbpPatient,
    load_openkbp,
    orientation_problems,
    to_patient_axes,
)
from mock_tps.phantoms.shapes import centroid_mm, distance_mm

PATIENT = Path(__file__).resolve().parent / "data" / "openkbp" / "pt_1"
STRUCTURES = ("PTV70", "PTV63", "PTV56", "Brainstem", "SpinalCord", "RightParotid",
              "LeftParotid", "Mandible")  # fmt: skip


def raw(name: str) -> np.ndarray:
    """The CSV file's rows (index[, value]) as read by numpy, header skipped."""
    with gzip.open(PATIENT / f"{name}.csv.gz", "rt") as f:
        return np.loadtxt(f, delimiter=",", skiprows=1, ndmin=2, usecols=(0, 1) if name in (
            "ct", "dose") else (0,))  # fmt: skip


@pytest.fixture(scope="module")
def patient() -> OpenKbpPatient:
    return load_openkbp(PATIENT)


def test_axes_map_file_indices_to_patient_axes() -> None:
    a = np.zeros((128, 128, 128), dtype=np.int8)
    a[10, 20, 30] = 1  # file axes: 0 anterior->posterior, 1 right->left, 2 superior->inferior
    ours = to_patient_axes(a)
    assert tuple(np.argwhere(ours)[0]) == (20, 10, 127 - 30)


def test_orientation_follows_the_anatomy(patient: OpenKbpPatient) -> None:
    case = patient.case

    def c(sid: str) -> tuple[float, float, float]:
        return centroid_mm(case.structures[sid].mask, case.grid)

    assert c("SpinalCord")[1] > c("PTV70")[1] + 20.0  # cord posterior to the PTVs (y: A->P)
    assert c("Mandible")[1] < c("SpinalCord")[1] - 40.0  # mandible anterior
    assert c("LeftParotid")[0] > c("PTV70")[0] > c("RightParotid")[0]  # x: right -> left
    assert c("Brainstem")[2] > c("SpinalCord")[2] + 50.0  # z: inferior -> superior
    assert case.grid.spacing_mm == pytest.approx((3.906, 3.906, 2.5))  # 2.5 mm cranio-caudal
    assert orientation_problems(case) == []


def test_a_mirrored_patient_is_refused(patient: OpenKbpPatient) -> None:
    case = patient.case
    left, right = case.structures["LeftParotid"], case.structures["RightParotid"]
    left.mask, right.mask = right.mask, left.mask
    try:
        assert orientation_problems(case) == [
            "LeftParotid is not on the patient's left of RightParotid"
        ]
    finally:
        left.mask, right.mask = right.mask, left.mask


def test_masks_are_kept_exactly_and_ptvs_do_not_overlap(patient: OpenKbpPatient) -> None:
    s = patient.case.structures
    for name in STRUCTURES:
        assert int(s[name].mask.sum()) == len(raw(name)), name
    assert not (s["PTV70"].mask & s["PTV63"].mask).any()
    assert not ((s["PTV70"].mask | s["PTV63"].mask) & s["PTV56"].mask).any()
    assert {n: s[n].dicom_type for n in ("PTV70", "SpinalCord", "BODY")} == {
        "PTV70": "PTV",
        "SpinalCord": "ORGAN",
        "BODY": "EXTERNAL",
    }
    body = s["BODY"].mask
    assert all((s[n].mask <= body).all() for n in s)


def test_derived_structures_assume_no_nesting(patient: OpenKbpPatient) -> None:
    case = patient.case
    s = case.structures
    ptvs = s["PTV70"].mask | s["PTV63"].mask | s["PTV56"].mask
    assert (s[BODY_MINUS_PTV_ID].mask == (s["BODY"].mask & ~ptvs)).all()
    far = s[PTV56_FAR_ID].mask
    assert far.any() and (far <= s["PTV56"].mask).all()
    higher = s["PTV70"].mask | s["PTV63"].mask
    assert distance_mm(higher, case.grid, 20.0)[far].min() > 10.0


def test_prescription_isocenter_and_beams(patient: OpenKbpPatient) -> None:
    case = patient.case
    assert case.prescription.target_levels_gy == {"PTV70": 70.0, "PTV63": 63.0, "PTV56": 56.0}
    assert (case.prescription.fractions, patient.levels) == (35, 3)
    assert case.beams.isocenter_mm == pytest.approx(
        centroid_mm(case.structures["PTV70"].mask, case.grid)
    )
    assert [b.gantry_deg for b in case.beams.beams] == pytest.approx([i * 40.0 for i in range(9)])
    assert case.name == "openkbp" and "pt_1" not in repr(case.name)


def test_densities_through_the_curve_with_capped_voxels_counted(
    patient: OpenKbpPatient,
) -> None:
    ct = raw("ct")
    hu = np.zeros(128**3)
    hu[ct[:, 0].astype(int)] = ct[:, 1]
    hu = to_patient_axes(hu.reshape((128,) * 3)) - 1024.0
    case = patient.case
    body_full = np.zeros(hu.shape, dtype=bool)  # the body in the file's full grid
    body_full[_box_of(hu, case)] = case.structures["BODY"].mask
    assert patient.capped_voxels == int((hu[body_full] > 1600.0).sum()) > 0
    assert patient.max_hu == pytest.approx(hu[body_full].max())
    dens = case.density[case.structures["BODY"].mask]
    assert dens.max() == pytest.approx(1.8)  # cortical bone cap
    soft = case.density[case.structures["LeftParotid"].mask]
    assert 0.9 < float(np.median(soft)) < 1.1  # soft tissue near water
    assert (case.density[~case.structures["BODY"].mask] == 0.0).all()


def _box_of(hu: np.ndarray, patient_case) -> tuple[slice, slice, slice]:  # type: ignore[no-untyped-def]
    """Where the cropped case grid sits in the full grid: the PTV70 mask locates it."""
    ptv = raw("PTV70")[:, 0].astype(int)
    full = np.zeros(128**3, dtype=bool)
    full[ptv] = True
    first_full = np.argwhere(to_patient_axes(full.reshape((128,) * 3))).min(axis=0)
    first_case = np.argwhere(patient_case.structures["PTV70"].mask).min(axis=0)
    off = first_full - first_case
    shape = patient_case.grid.shape
    return tuple(slice(int(o), int(o) + n) for o, n in zip(off, shape, strict=True))  # type: ignore[return-value]


def test_the_default_curve_and_its_cap() -> None:
    hu = np.array([-1024.0, -1000.0, 0.0, 1000.0, 1600.0, 18800.0])
    assert DEFAULT_CURVE.density(hu) == pytest.approx([0.0, 0.0, 1.0, 1.5, 1.8, 1.8])
    assert DEFAULT_CURVE.cap_hu == pytest.approx(1600.0)
    assert DEFAULT_CURVE.n_capped(hu) == 1
    flat = HuDensityCurve(hu=[-1000.0, 3000.0], relative_density=[0.0, 4.0], max_density=2.0)
    assert flat.cap_hu == pytest.approx(1000.0)
    with pytest.raises(ValidationError, match="increase strictly"):
        HuDensityCurve(hu=[0.0, 0.0], relative_density=[1.0, 1.0])
    with pytest.raises(ValidationError, match="one density per CT number"):
        HuDensityCurve(hu=[0.0, 1.0, 2.0], relative_density=[1.0, 1.0])


def test_a_configured_curve_changes_the_densities() -> None:
    water = HuDensityCurve(hu=[-1000.0, 0.0], relative_density=[1.0, 1.0])
    case = load_openkbp(PATIENT, curve=water).case
    assert (case.density[case.structures["BODY"].mask] == 1.0).all()


def test_content_hash_ignores_the_folder_name(tmp_path: Path, patient: OpenKbpPatient) -> None:
    other = tmp_path / "renamed"
    shutil.copytree(PATIENT, other)
    assert load_openkbp(other).content_hash == patient.content_hash


def test_errors_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="patient folder not found"):
        load_openkbp(tmp_path / "nowhere")
    folder = tmp_path / "p"
    shutil.copytree(PATIENT, folder)
    (folder / "ct.csv.gz").unlink()
    with pytest.raises(InvalidInput, match=r"no ct\.csv.*OpenKBP patient folder"):
        load_openkbp(folder)
    shutil.copy(PATIENT / "ct.csv.gz", folder)
    (folder / "PTV70.csv").write_text(",data\n9999999,\n")
    (folder / "PTV70.csv.gz").unlink()
    with pytest.raises(InvalidInput, match=r"PTV70\.csv: flat indices must be integers"):
        load_openkbp(folder)
