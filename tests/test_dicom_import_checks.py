"""DICOM import checks (#13): what is refused (with what message), HU rescale and padding,
density capping, clipping, the body, the RT Plan's isocenter and beams, the content hash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_synth import (
    BLADDER,
    PTV,
    CtSpec,
    Ids,
    RoiSpec,
    circle,
    phantom_hu,
    phantom_origin,
    phantom_rois,
    slice_z,
    write_ct,
    write_phantom,
    write_rtplan,
    write_rtstruct,
)
from loguru import logger
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from esapi_bridge.dto import Technique
from esapi_bridge.errors import InvalidInput
from mock_tps.dicom.case_from_dicom import load_dicom
from mock_tps.dicom.plan_spec import DicomPlanSpec
from mock_tps.dicom.read_ct import read_ct
from mock_tps.dicom.read_series import read_folder
from mock_tps.hu_density import DEFAULT_CURVE

SPEC = DicomPlanSpec(target_id="PTV", rx_gy=79.2, fractions=44)
SMALL = (20, 16, 8)  # a small CT for the refusals: 20 x 16 x 8 voxels of 3 mm
SMALL_ORIGIN = (-28.5, -22.5, -10.5)


def _small(folder: Path, ids: Ids, **kw: object) -> None:
    hu = np.full(SMALL, 40.0)
    write_ct(folder, CtSpec(hu, SMALL_ORIGIN, (3.0, 3.0, 3.0), **kw), ids)  # type: ignore[arg-type]
    zs = [SMALL_ORIGIN[2] + 3.0 * k for k in range(SMALL[2])]
    rois = [RoiSpec("PTV", "PTV", [circle(0.4, 0.3, 8.0, z) for z in zs[2:6]])]
    write_rtstruct(folder / "rtstruct.dcm", rois, ids)


def _refused(folder: Path) -> str:
    with pytest.raises(InvalidInput) as err:
        load_dicom(folder, SPEC)
    return str(err.value)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    yield lines
    logger.remove(sink)


def test_non_axial_orientations_are_refused(tmp_path: Path) -> None:
    _small(tmp_path / "sag", Ids(), orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    assert "ImageOrientationPatient is [0, 1, 0, 0, 0, -1], not axial" in _refused(tmp_path / "sag")
    _small(tmp_path / "flip", Ids(), orientation=(-1.0, 0.0, 0.0, 0.0, -1.0, 0.0))
    assert "oblique, sagittal, coronal or flipped" in _refused(tmp_path / "flip")
    _small(tmp_path / "tiny", Ids(), orientation=(1.0, 0.0005, 0.0, 0.0, 1.0, 0.0))
    assert load_dicom(tmp_path / "tiny", SPEC).case.grid.shape[2] >= 4  # within 0.001


def test_patient_positions_other_than_hfs_are_refused(tmp_path: Path, warnings: list[str]) -> None:
    for position in ("FFS", "HFP"):
        _small(tmp_path / position, Ids(), patient_position=position)
        msg = _refused(tmp_path / position)
        assert f"CT PatientPosition {position}: only head-first supine (HFS)" in msg
    _small(tmp_path / "none", Ids(), patient_position=None)
    load_dicom(tmp_path / "none", SPEC)
    assert any("no PatientPosition; taken as HFS" in w for w in warnings)


def test_mixed_series_are_refused(tmp_path: Path) -> None:
    ids = Ids()
    _small(tmp_path / "two", ids)
    write_ct(tmp_path / "two" / "b", CtSpec(np.zeros(SMALL), SMALL_ORIGIN, (3.0, 3.0, 3.0)),
             Ids(study_uid=ids.study_uid, frame_uid=ids.frame_uid))  # fmt: skip
    msg = _refused(tmp_path / "two")
    assert "holds 2 CT series (8, 8 slices): pass the folder of one series" in msg
    _small(tmp_path / "mr", ids)
    write_ct(tmp_path / "mr" / "mr", CtSpec(np.zeros(SMALL), SMALL_ORIGIN, (3.0, 3.0, 3.0),
             modality="MR"), Ids())  # fmt: skip
    assert "mixed series: the DICOM folder holds MR images beside the CT" in _refused(
        tmp_path / "mr"
    )
    _small(tmp_path / "rows", ids)  # one series UID, slices of two sizes
    write_ct(tmp_path / "rows" / "x", CtSpec(np.zeros((20, 20, 1)), (-28.5, -22.5, 50.0),
             (3.0, 3.0, 3.0)), Ids(series_uid=ids.series_uid, frame_uid=ids.frame_uid))  # fmt: skip
    assert "mixed series: the CT slices differ in Rows" in _refused(tmp_path / "rows")


def test_a_missing_slice_is_refused_naming_its_position(tmp_path: Path) -> None:
    _small(tmp_path / "gap", Ids(), drop_slices=(4,))
    msg = _refused(tmp_path / "gap")
    assert "missing CT slice: a gap of 6.00 mm between z = -1.50 and z = 4.50 mm" in msg
    assert "(slice spacing 3.00 mm: 1 slice(s) missing there)" in msg


def test_another_frame_of_reference_is_refused(tmp_path: Path) -> None:
    ids = Ids()
    _small(tmp_path / "for", ids)
    other = Ids(study_uid=ids.study_uid, frame_uid=generate_uid())
    write_rtstruct(tmp_path / "for" / "rtstruct.dcm",
                   [RoiSpec("PTV", "PTV", [circle(0, 0, 8, -1.5)])], other)  # fmt: skip
    msg = _refused(tmp_path / "for")
    assert "RT Structure Set's FrameOfReferenceUID differs from the CT's" in msg
    _small(tmp_path / "plan", ids)
    write_rtplan(tmp_path / "plan" / "plan.dcm", (0, 0, 0), [0, 180], other)
    assert "RT Plan's FrameOfReferenceUID differs from the CT's" in _refused(tmp_path / "plan")


def test_structure_sets_must_be_exactly_one(tmp_path: Path) -> None:
    ids = Ids()
    write_ct(tmp_path / "none", CtSpec(np.zeros(SMALL), SMALL_ORIGIN, (3.0, 3.0, 3.0)), ids)
    assert "holds no RT Structure Set; exactly one is needed" in _refused(tmp_path / "none")
    _small(tmp_path / "two", ids)
    write_rtstruct(tmp_path / "two" / "second.dcm", [RoiSpec("PTV", "PTV", [])], ids)
    assert "holds 2 RT Structure Sets" in _refused(tmp_path / "two")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not DICOM")
    assert "holds no DICOM file (1 other files)" in _refused(tmp_path / "empty")


def test_rescale_and_padding_are_applied(tmp_path: Path) -> None:
    hu = np.linspace(-1000.0, 2000.0, np.prod(SMALL)).reshape(SMALL).round()
    pad = np.zeros(SMALL, dtype=bool)
    pad[:3, :, :] = True  # outside the scan's circle: stored as the padding value
    spec = CtSpec(hu, SMALL_ORIGIN, (3.0, 3.0, 3.0), slope=2.0, intercept=-1000.0,
                  padding_value=-3000, padding_mask=pad)  # fmt: skip
    write_ct(tmp_path, spec, Ids())
    ct = read_ct(read_folder_ct(tmp_path))
    expected = np.where(pad, -1000.0, np.round((hu + 1000.0) / 2.0) * 2.0 - 1000.0)
    assert np.array_equal(ct.hu, expected.astype(np.float32))  # exact: integers x 2 - 1000
    assert ct.padding_voxels == int(pad.sum())
    assert ct.origin_mm == SMALL_ORIGIN and ct.spacing_mm == (3.0, 3.0, 3.0)


def read_folder_ct(folder: Path) -> list[Dataset]:
    """The CT slices of a folder that may lack a structure set (read directly)."""
    return [pydicom.dcmread(p) for p in sorted(folder.glob("img*.dcm"))]


def test_phantom_case_body_density_capping_and_beams(tmp_path: Path, warnings: list[str]) -> None:
    ids = write_phantom(tmp_path / "a", plan=True)
    imported = load_dicom(tmp_path / "a", SPEC)
    case = imported.case
    assert case.name == "dicom" and case.body_id == "BODY"
    assert case.beams.isocenter_mm == (0.0, 0.0, 0.0)  # the RT Plan's
    assert [b.gantry_deg for b in case.beams.beams] == [0.0, 72.0, 144.0, 216.0, 288.0]
    # PTV sphere r = 25 mm on the 3 mm grid: 4/3 pi r^3 = 65.45 cm3 within 2 %
    assert case.volume_cm3("PTV") == pytest.approx(4 / 3 * np.pi * PTV[3] ** 3 / 1000, rel=0.02)
    assert case.volume_cm3("Bladder") == pytest.approx(4 / 3 * np.pi * BLADDER[3] ** 3 / 1000,
                                                       rel=0.03)  # fmt: skip
    water = case.density[case.body_mask & (case.density > 0.9) & (case.density < 1.1)]
    assert float(np.median(water)) == pytest.approx(
        float(DEFAULT_CURVE.density(np.array([40.0]))[0])
    )
    assert imported.capped_voxels == 0 and imported.clipped == ()
    geo = imported.geometry
    assert geo.frame_of_reference_uid == ids.frame_uid and geo.study_instance_uid == ids.study_uid
    offset = (np.asarray(geo.origin_mm) - np.asarray(phantom_origin())) / 3.0
    assert np.allclose(offset, np.round(offset))  # the dose grid lies on the CT's lattice
    assert geo.grid() == case.grid

    hu = phantom_hu()
    hu[30:33, 30:33, 10:20] = 3000.0  # a metal rod inside the body
    rois = phantom_rois()
    rois[0] = RoiSpec("PTV", "PTV", [circle(0.0, 0.0, 25.0, z) for z in slice_z()[5:30]])
    rois[3] = RoiSpec("Skin", "EXTERNAL", rois[3].contours)
    rois.append(RoiSpec("Wide", "ORGAN", [circle(80.0, 0.0, 30.0, z) for z in slice_z()[5:9]]))
    write_ct(tmp_path / "b", CtSpec(hu, phantom_origin(), (3.0, 3.0, 3.0)), ids)
    write_rtstruct(tmp_path / "b" / "rtstruct.dcm", rois, ids)
    other = load_dicom(tmp_path / "b", SPEC.model_copy(update={"fields": 5, "start_deg": 10.0}))
    assert other.case.body_id == "Skin"
    assert other.capped_voxels == 3 * 3 * 10 and other.max_hu == pytest.approx(3000.0, abs=1.0)
    assert float(other.case.density.max()) == pytest.approx(DEFAULT_CURVE.max_density)
    assert any("90 body voxels above 1600 HU had their density capped" in w for w in warnings)
    assert other.clipped == ("Wide",)  # x up to 110 mm; the CT ends at 94.5 mm
    assert any("clipped: Wide" in w for w in warnings)
    assert other.case.beams.isocenter_mm == pytest.approx((0.0, 0.0, slice_z()[17]), abs=1.6)
    assert [b.gantry_deg for b in other.case.beams.beams] == [10.0, 82.0, 154.0, 226.0, 298.0]
    assert other.content_hash != imported.content_hash


def test_body_from_the_threshold_and_the_content_hash(tmp_path: Path) -> None:
    rois = phantom_rois()[:3]  # no EXTERNAL ROI
    first, second = Ids(patient_name="A^B"), Ids(patient_name="C^D", patient_id="X9")
    for name, ids in (("one", first), ("two", second)):
        write_ct(tmp_path / name, CtSpec(phantom_hu(), phantom_origin(), (3.0, 3.0, 3.0)), ids)
        write_rtstruct(tmp_path / name / "rtstruct.dcm", rois, ids)
    one, two = (load_dicom(tmp_path / n, SPEC) for n in ("one", "two"))
    assert one.case.body_id == "BODY" and "BODY" not in [r.name for r in rois]
    body = one.case.volume_cm3("BODY")  # the elliptic body 85 x 60 mm over 120 mm
    assert body == pytest.approx(np.pi * 85 * 60 * 120 / 1000, rel=0.03)
    assert one.content_hash == two.content_hash  # names, ids and UIDs are not content
    assert len(read_folder(tmp_path / "one").ct) == 40


def test_a_roi_named_body_is_the_body_without_an_external_one(tmp_path: Path) -> None:
    ids = Ids()
    rois = phantom_rois()
    rois[3] = RoiSpec("BODY", "ORGAN", rois[3].contours)  # typed ORGAN, named BODY
    write_ct(tmp_path, CtSpec(phantom_hu(), phantom_origin(), (3.0, 3.0, 3.0)), ids)
    write_rtstruct(tmp_path / "rtstruct.dcm", rois, ids)
    case = load_dicom(tmp_path, SPEC).case
    assert case.body_id == "BODY" and case.structures["BODY"].dicom_type == "EXTERNAL"
    assert case.volume_cm3("BODY") == pytest.approx(np.pi * 85 * 60 * 120 / 1000, rel=0.01)


def test_arcs_in_the_rt_plan_keep_the_templates_beams_at_its_isocenter(tmp_path: Path) -> None:
    ids = write_phantom(tmp_path)
    write_rtplan(tmp_path / "rtplan.dcm", (3.0, -6.0, 9.0), [181.0, 179.0], ids, rotation="CW")
    vmat = SPEC.model_copy(
        update={"technique": Technique.VMAT, "fields": None, "arcs": 2, "control_points": 60}
    )
    beams = load_dicom(tmp_path, vmat).case.beams
    assert beams.technique is Technique.VMAT and len(beams.beams) == 60
    assert beams.isocenter_mm == (3.0, -6.0, 9.0)  # the plan's isocenter, the template's arcs
    static = load_dicom(tmp_path, SPEC).case.beams  # IMRT: the plan's beams are arcs, not fields
    assert len(static.beams) == 7 and static.isocenter_mm == (3.0, -6.0, 9.0)
    write_rtplan(tmp_path / "rtplan.dcm", (0.0, 0.0, 0.0), [0.0], ids)
    write_rtplan(tmp_path / "second.dcm", (0.0, 0.0, 0.0), [0.0], ids)
    assert "holds 2 RT Plans; at most one" in _refused(tmp_path)
