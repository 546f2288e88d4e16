"""OpenKBP -> DICOM -> import (#13): the vendored patient (tests/data/openkbp, OpenKBP pt_1,
MIT) written as CT + RT Structure Set by the export (contours traced along voxel edges)
and read back by the DICOM import.

On the CT's own grid (``spacing_mm=None``) the import must reproduce every structure's
volume within 2 % (the issue's requirement); since the traced contours run along voxel edges
and the centre-sampling rasterizer never meets a centre on an edge, the masks, the body and
the densities come back exactly, which is asserted too. On the default 3 mm dose grid the
large clinical structures (> 50 cm3) stay within 2 %; the small organs (5-16 cm3) move by
up to about 10 % there (a different voxel lattice), and the derived planning structures
(``PTV56-PTV70+10mm``, thin where PTV56 wraps the expansion) by about 4 %: measured, not
asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mock_tps.dicom.case_from_dicom import load_dicom
from mock_tps.dicom.plan_spec import DicomPlanSpec
from mock_tps.dicom.write_export import export_openkbp_case
from mock_tps.openkbp import ORGANS, TARGET_LEVELS_GY, load_openkbp

PATIENT = Path(__file__).resolve().parent / "data" / "openkbp" / "pt_1"
SPEC = DicomPlanSpec(target_id="PTV70", rx_gy=70.0, fractions=35,
                     dose_levels_gy={"PTV63": 63.0, "PTV56": 56.0}, fields=9)  # fmt: skip


def test_openkbp_through_dicom_keeps_the_structures(tmp_path: Path) -> None:
    exported = export_openkbp_case(PATIENT, tmp_path / "dicom")
    patient = load_openkbp(PATIENT)
    ref = patient.case
    native = load_dicom(tmp_path / "dicom", SPEC.model_copy(update={"spacing_mm": None}))
    case = native.case
    assert case.grid == ref.grid and case.body_id == ref.body_id == "BODY"
    assert set(exported.structures) <= set(case.structures)
    for sid in exported.structures:
        assert case.volume_cm3(sid) == pytest.approx(ref.volume_cm3(sid), rel=0.02), sid
        assert np.array_equal(case.structures[sid].mask, ref.structures[sid].mask), sid
    assert np.array_equal(case.density, ref.density)
    assert native.capped_voxels == patient.capped_voxels
    assert native.geometry.frame_of_reference_uid is not None

    coarse = load_dicom(tmp_path / "dicom", SPEC).case  # the default 3 mm dose grid
    assert coarse.grid.spacing_mm == (3.0, 3.0, 3.0)
    clinical = {*TARGET_LEVELS_GY, *ORGANS, "BODY"}
    for sid in exported.structures:
        if sid in clinical and ref.volume_cm3(sid) > 50.0:
            assert coarse.volume_cm3(sid) == pytest.approx(ref.volume_cm3(sid), rel=0.02), sid
