"""DICOM export writers (#13, item 5): RT Dose round trip, contours traced along voxel edges,
and dciodvfy on the RT Dose, RT Plan, CT and RT Structure Set we write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from esapi_bridge.dto import Technique
from mock_tps.dicom.contour_trace import fill_even_odd, trace_mask, trace_slice
from mock_tps.dicom.geometry import DicomGeometry
from mock_tps.dicom.validate import (
    check_uint32_pixels,
    dciodvfy_path,
    parse_output,
    validate_file,
    validate_rtdose_attributes,
)
from mock_tps.dicom.write_common import ANONYMOUS_NAME, anonymous_identity
from mock_tps.dicom.write_ct import write_ct_series
from mock_tps.dicom.write_rtdose import read_rtdose_gy, write_rtdose
from mock_tps.dicom.write_rtplan import write_rtplan
from mock_tps.dicom.write_rtstruct import write_rtstruct
from mock_tps.final_dose import BeamMeta, FinalDoseMeta, StructureMeta

#: A grid with an origin, anisotropic spacing and unequal sizes, so that a swapped axis shows.
GEOMETRY = DicomGeometry(
    origin_mm=(-61.5, -40.25, 12.5), spacing_mm=(2.5, 3.0, 2.0), shape=(24, 17, 9)
)


def _dose() -> np.ndarray:
    """A smooth dose (Gy) without symmetry: values differ along every axis."""
    x, y, z = GEOMETRY.grid().coordinates_mm()
    return (70.0 * np.exp(-(((x + 30) / 40) ** 2) - ((y / 25) ** 2)) + 0.3 * z).clip(0.0)


def _masks() -> dict[str, np.ndarray]:
    grid = GEOMETRY.grid()
    x, y, z = grid.coordinates_mm()
    ring = (np.hypot(x + 30, y) <= 15) & (np.hypot(x + 30, y) > 6) & (z < 25)  # with a hole
    line = np.zeros(grid.shape, bool)
    line[5:20, 8, 2:7] = True  # one voxel thin
    return {"BODY": np.hypot(x + 20, y) <= 30, "PTV": ring, "Line": line}


def test_rtdose_round_trip(tmp_path: Path) -> None:
    dose = _dose()
    identity = anonymous_identity()
    path = write_rtdose(tmp_path / "RD.dcm", dose, GEOMETRY, identity, "2.25.123")
    back, geometry = read_rtdose_gy(path)
    ds = pydicom.dcmread(path)
    scaling = float(ds.DoseGridScaling)
    assert len(str(ds["DoseGridScaling"].value)) <= 16
    # quantization: round(dose / scaling) * scaling, so within scaling / 2 (plus float64 noise)
    assert np.max(np.abs(back - dose)) <= scaling / 2 * (1 + 1e-9)
    assert scaling < 1e-7  # 70 Gy over ~4e9 steps
    assert geometry.shape == GEOMETRY.shape
    assert geometry.origin_mm == pytest.approx(GEOMETRY.origin_mm, abs=1e-9)
    assert geometry.spacing_mm == pytest.approx(GEOMETRY.spacing_mm, abs=1e-9)
    assert (geometry.frame_of_reference_uid, geometry.study_instance_uid) == (
        identity.frame_of_reference_uid,
        identity.study_instance_uid,
    )
    assert (ds.DoseUnits, ds.DoseType, ds.DoseSummationType) == ("GY", "PHYSICAL", "PLAN")
    assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (32, 32, 0)
    assert ds.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == "2.25.123"
    assert [float(v) for v in ds.GridFrameOffsetVector] == [2.0 * k for k in range(9)]
    assert str(ds.PatientName) == ANONYMOUS_NAME and ds.PatientIdentityRemoved == "YES"
    # a voxel by hand: frame iz, row iy, column ix
    ix, iy, iz = 3, 11, 7
    assert ds.pixel_array[iz, iy, ix] * scaling == pytest.approx(dose[ix, iy, iz], abs=scaling)


@pytest.mark.parametrize("seed", range(4))
def test_traced_contours_fill_back_to_the_mask(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((15, 11)) < 0.45  # islands, holes, diagonal touches (saddles)
    loops = trace_slice(mask)
    assert np.array_equal(fill_even_odd(loops, mask.shape), mask)


def test_thin_and_holed_shapes_keep_their_voxels() -> None:
    line = np.zeros((9, 7), bool)
    line[1:8, 3] = True  # one voxel wide: the contour runs around its voxel edges
    assert len(trace_slice(line)) == 1
    assert trace_slice(line)[0].tolist() == [[1, 3], [8, 3], [8, 4], [1, 4]]
    ring = np.ones((7, 7), bool)
    ring[2:5, 2:5] = False
    loops = trace_slice(ring)
    assert len(loops) == 2  # outer boundary and the hole, separate contours
    assert np.array_equal(fill_even_odd(loops, ring.shape), ring)
    checker = np.indices((6, 6)).sum(axis=0) % 2 == 0  # every pair of voxels touches diagonally
    assert np.array_equal(fill_even_odd(trace_slice(checker), checker.shape), checker)
    assert trace_slice(np.zeros((4, 4), bool)) == []


def test_contours_in_patient_coordinates_recover_the_masks(tmp_path: Path) -> None:
    """ContourData read back from the file, filled even-odd at voxel centres: every mask exactly."""
    from matplotlib.path import Path as MplPath

    grid = GEOMETRY.grid()
    masks = _masks()
    path, _ = write_rtstruct(tmp_path / "RS.dcm", masks, {"PTV": "PTV"}, grid, anonymous_identity())
    ds = pydicom.dcmread(path)
    names = {r.ROINumber: r.ROIName for r in ds.StructureSetROISequence}
    xs, ys = grid.axis_mm(0), grid.axis_mm(1)
    cx, cy = np.meshgrid(xs, ys, indexing="ij")
    centres = np.column_stack([cx.ravel(), cy.ravel()])
    for item in ds.ROIContourSequence:
        name = names[item.ReferencedROINumber]
        filled = np.zeros(grid.shape, bool)
        for c in item.ContourSequence:
            assert c.ContourGeometricType == "CLOSED_PLANAR"
            pts = np.asarray(c.ContourData, dtype=float).reshape(-1, 3)
            k = round((pts[0, 2] - grid.origin_mm[2]) / grid.spacing_mm[2])
            assert np.allclose(pts[:, 2], grid.axis_mm(2)[k])  # contours at slice centres
            inside = MplPath(pts[:, :2]).contains_points(centres).reshape(grid.shape[:2])
            filled[:, :, k] ^= inside
        assert np.array_equal(filled, masks[name]), name
    types = {o.ReferencedROINumber: o.RTROIInterpretedType for o in ds.RTROIObservationsSequence}
    assert types[next(n for n, s in names.items() if s == "PTV")] == "PTV"
    assert len(trace_mask(masks["Line"], grid)) == 5  # one contour per slice 2..6


def _meta() -> FinalDoseMeta:
    return FinalDoseMeta(
        plan_id="phantom", origin_mm=GEOMETRY.origin_mm, spacing_mm=GEOMETRY.spacing_mm,
        shape=GEOMETRY.shape, total_dose_gy=70.0, fractions=35, target_id="PTV",
        technique=Technique.IMRT, isocenter_mm=(-30.0, 0.0, 20.0),
        beams=tuple(BeamMeta(gantry_deg=g) for g in (0.0, 51.42857142857143, 102.85714285714286)),
        structures=(StructureMeta(structure_id="PTV", dicom_type="PTV"),), body_id="BODY",
    )  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """RT Dose, RT Plan, CT series and RT Structure Set of one synthetic case, one identity."""
    out = tmp_path_factory.mktemp("dicom")
    identity = anonymous_identity("0123456789abcdef")
    grid = GEOMETRY.grid()
    x, y, _ = grid.coordinates_mm()
    hu = np.where(np.hypot(x + 20, y) <= 30, 40.0, -1000.0)
    series = write_ct_series(out / "ct", hu, GEOMETRY, identity)
    rs, rs_uid = write_rtstruct(out / "RS.dcm", _masks(), {"PTV": "PTV", "BODY": "EXTERNAL"},
                                grid, identity, series)  # fmt: skip
    rp, rp_uid = write_rtplan(out / "RP.dcm", _meta(), identity, rs_uid, (40.0, 30.0))
    rd = write_rtdose(out / "RD.dcm", _dose(), GEOMETRY, identity, rp_uid)
    return {"RD": rd, "RP": rp, "RS": rs, "CT": series.paths[0], "CT_last": series.paths[-1],
            "work": out}  # fmt: skip


def test_objects_reference_each_other(written: dict[str, Path]) -> None:
    rd, rp, rs, ct = (pydicom.dcmread(written[k]) for k in ("RD", "RP", "RS", "CT"))
    assert rd.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp.SOPInstanceUID
    assert rp.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs.SOPInstanceUID
    assert {d.FrameOfReferenceUID for d in (rd, rp, rs, ct)} == {ct.FrameOfReferenceUID}
    assert {d.StudyInstanceUID for d in (rd, rp, rs, ct)} == {ct.StudyInstanceUID}
    assert len({d.SeriesInstanceUID for d in (rd, rp, rs, ct)}) == 4
    # the same content hash gives the same study and frame (export-case and export agree)
    again = anonymous_identity("0123456789abcdef")
    assert again.frame_of_reference_uid == ct.FrameOfReferenceUID
    assert anonymous_identity().frame_of_reference_uid != ct.FrameOfReferenceUID
    assert [float(b.ControlPointSequence[0].GantryAngle) for b in rp.BeamSequence] == (
        pytest.approx([0.0, 51.4285714, 102.8571429], abs=1e-6)
    )
    assert rp.FractionGroupSequence[0].NumberOfFractionsPlanned == 35
    hu = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    assert hu.shape == (17, 24) and set(np.unique(hu)) == {-1000.0, 40.0}
    ref = rs.ROIContourSequence[0].ContourSequence[0].ContourImageSequence[0]
    assert ref.ReferencedSOPInstanceUID in {
        pydicom.dcmread(p).SOPInstanceUID for p in sorted((written["work"] / "ct").iterdir())
    }


needs_dciodvfy = pytest.mark.skipif(
    dciodvfy_path() is None, reason="dciodvfy (dicom3tools) absent: make test installs it"
)


@needs_dciodvfy
@pytest.mark.parametrize("kind", ["RP", "RS", "CT", "CT_last"])
def test_dciodvfy_finds_no_error(written: dict[str, Path], kind: str) -> None:
    report = validate_file(written[kind])
    assert report.aborted is None and report.iod in {"RTPlan", "RTStructureSet", "CTImage"}
    assert report.errors == (), report.errors
    print(f"{kind}: {len(report.warnings)} warnings: {report.warnings}")  # reported, allowed


@needs_dciodvfy
def test_dciodvfy_on_the_rtdose(written: dict[str, Path]) -> None:
    """dicom3tools (1.00~20220618) aborts on 32-bit pixel data, so the 32-bit file itself gets
    no verdict from it: its attributes are validated on a 16-bit twin and its 32-bit encoding
    checked apart. When a dciodvfy that reads 32-bit data is installed, the direct run counts."""
    direct = validate_file(written["RD"])
    if direct.aborted is None:
        assert direct.iod == "RTDose" and direct.errors == (), direct.errors
    else:
        assert "bitsallocated <= bytesinword*8u" in direct.aborted and not direct.ok
    twin = validate_rtdose_attributes(written["RD"], written["work"])
    assert twin.iod == "RTDose" and twin.errors == (), twin.errors
    assert "16-bit twin" in twin.note
    assert check_uint32_pixels(pydicom.dcmread(written["RD"])) == []
    print(f"RT Dose: {len(twin.warnings)} warnings: {twin.warnings}")


def test_the_parser_counts_errors_and_aborts() -> None:
    text = "Error - Missing attribute Type 1\nWarning - Dubious\nRTDose\nError - Bad value\n"
    report = parse_output("RD.dcm", text)
    assert (len(report.errors), len(report.warnings), report.iod) == (2, 1, "RTDose")
    assert not report.ok
    crashed = parse_output("RD.dcm", "dciodvfy: x.cc:46: Assertion `a' failed.\n", returncode=-6)
    assert crashed.aborted is not None and "Assertion" in crashed.aborted and not crashed.ok
    assert parse_output("RP.dcm", "Warning - Dubious\nRTPlan\n").ok
