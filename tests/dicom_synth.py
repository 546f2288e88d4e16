"""Synthetic DICOM for the import tests: CT series, RT Structure Sets and RT Plans written with
pydicom from analytic shapes (circles, C-shapes), and a prostate-like phantom.

Every writer takes the identifying attributes the tests then look for in a session
(``PatientName``, ``PatientID``); UIDs are fixed per call so that tests can mismatch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RTPLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"

Contour = NDArray[np.float64]


@dataclass
class Ids:
    """The identifying and referencing attributes of one synthetic study."""

    patient_name: str = "Synthetic^Phantom"
    patient_id: str = "SYN0001"
    study_uid: str = field(default_factory=generate_uid)
    frame_uid: str = field(default_factory=generate_uid)
    series_uid: str = field(default_factory=generate_uid)


def circle(cx: float, cy: float, r: float, z: float, n: int = 128) -> Contour:
    """A closed polygon of ``n`` vertices on the circle (mm), counter-clockwise."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t), np.full(n, z)])


def ellipse(cx: float, cy: float, a: float, b: float, z: float, n: int = 128) -> Contour:
    """A closed polygon on the ellipse of half-axes ``a`` (x) and ``b`` (y)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return np.column_stack([cx + a * np.cos(t), cy + b * np.sin(t), np.full(n, z)])


def c_shape(
    cx: float, cy: float, r_out: float, r_in: float, gap_deg: float, z: float, n: int = 128
) -> Contour:
    """An annulus sector open by ``gap_deg`` towards +x: outer arc, then inner arc back."""
    half = np.deg2rad(gap_deg) / 2.0
    t = np.linspace(half, 2.0 * np.pi - half, n)
    outer = np.column_stack([cx + r_out * np.cos(t), cy + r_out * np.sin(t)])
    inner = np.column_stack([cx + r_in * np.cos(t[::-1]), cy + r_in * np.sin(t[::-1])])
    xy = np.vstack([outer, inner])
    return np.column_stack([xy, np.full(len(xy), z)])


def _meta(ds: Dataset, sop_class: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class


def _common(ds: Dataset, ids: Ids, modality: str) -> None:
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = ids.patient_name
    ds.PatientID = ids.patient_id
    ds.StudyInstanceUID = ids.study_uid
    ds.Modality = modality


@dataclass
class CtSpec:
    """A CT series: ``hu[ix, iy, iz]`` with its geometry and how it is stored."""

    hu: NDArray[np.float64]
    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    patient_position: str | None = "HFS"
    slope: float = 1.0
    intercept: float = -1024.0
    padding_value: int | None = None
    padding_mask: NDArray[np.bool_] | None = None  # voxels stored as the padding value
    drop_slices: Sequence[int] = ()
    modality: str = "CT"


def write_ct(folder: Path, spec: CtSpec, ids: Ids) -> list[Path]:
    """One file per axial slice in ``folder`` (files named by index, in shuffled order)."""
    folder.mkdir(parents=True, exist_ok=True)
    nx, ny, nz = spec.hu.shape
    stored_all = np.round((spec.hu - spec.intercept) / spec.slope).astype(np.int16)
    if spec.padding_mask is not None and spec.padding_value is not None:
        stored_all[spec.padding_mask] = spec.padding_value
    paths: list[Path] = []
    order = np.random.default_rng(0).permutation(nz)  # the reader must sort by position
    for k in order:
        if int(k) in spec.drop_slices:
            continue
        ds = Dataset()
        _common(ds, ids, spec.modality)
        _meta(ds, CT_STORAGE if spec.modality == "CT" else MR_STORAGE)
        ds.SeriesInstanceUID = ids.series_uid
        ds.FrameOfReferenceUID = ids.frame_uid
        if spec.patient_position is not None:
            ds.PatientPosition = spec.patient_position
        ds.ImageOrientationPatient = list(spec.orientation)
        x0, y0, z0 = spec.origin_mm
        ds.ImagePositionPatient = [x0, y0, z0 + float(k) * spec.spacing_mm[2]]
        ds.PixelSpacing = [spec.spacing_mm[1], spec.spacing_mm[0]]  # row (y), column (x)
        ds.SliceThickness = spec.spacing_mm[2]
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope, ds.RescaleIntercept = spec.slope, spec.intercept
        if spec.padding_value is not None:
            ds.PixelPaddingValue = spec.padding_value
        ds.PixelData = np.ascontiguousarray(stored_all[:, :, k].T).tobytes()  # [row y, col x]
        path = folder / f"img{int(k):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass
class RoiSpec:
    """An ROI: name, interpreted type and its closed planar contours."""

    name: str
    interpreted_type: str
    contours: list[Contour]


def write_rtstruct(path: Path, rois: Sequence[RoiSpec], ids: Ids) -> Path:
    """An RT Structure Set in the frame of reference of ``ids``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = Dataset()
    _common(ds, ids, "RTSTRUCT")
    _meta(ds, RTSTRUCT_STORAGE)
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "synthetic"
    ref = Dataset()
    ref.FrameOfReferenceUID = ids.frame_uid
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([ref])
    ssroi, contours, obs = [], [], []
    for number, roi in enumerate(rois, start=1):
        item = Dataset()
        item.ROINumber = number
        item.ReferencedFrameOfReferenceUID = ids.frame_uid
        item.ROIName = roi.name
        ssroi.append(item)
        rc = Dataset()
        rc.ReferencedROINumber = number
        seq = []
        for c in roi.contours:
            ci = Dataset()
            ci.ContourGeometricType = "CLOSED_PLANAR"
            ci.NumberOfContourPoints = len(c)
            ci.ContourData = [round(float(v), 4) for v in c.ravel()]
            seq.append(ci)
        rc.ContourSequence = DicomSequence(seq)
        contours.append(rc)
        ob = Dataset()
        ob.ObservationNumber = number
        ob.ReferencedROINumber = number
        ob.RTROIInterpretedType = roi.interpreted_type
        obs.append(ob)
    ds.StructureSetROISequence = DicomSequence(ssroi)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_rtplan(
    path: Path,
    isocenter_mm: Sequence[float],
    gantry_deg: Sequence[float],
    ids: Ids,
    rotation: str = "NONE",
) -> Path:
    """A minimal RT Plan: treatment beams at one isocenter (static, or arcs: ``CW``/``CC``)."""
    ds = Dataset()
    _common(ds, ids, "RTPLAN")
    _meta(ds, RTPLAN_STORAGE)
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = ids.frame_uid
    beams = []
    for number, angle in enumerate(gantry_deg, start=1):
        beam = Dataset()
        beam.BeamNumber = number
        beam.TreatmentDeliveryType = "TREATMENT"
        cp = Dataset()
        cp.ControlPointIndex = 0
        cp.GantryAngle = float(angle)
        cp.GantryRotationDirection = rotation
        cp.PatientSupportAngle = 0.0
        cp.IsocenterPosition = [float(v) for v in isocenter_mm]
        beam.ControlPointSequence = DicomSequence([cp])
        beams.append(beam)
    ds.BeamSequence = DicomSequence(beams)
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------- prostate-like phantom
#: 64 x 64 x 40 CT, 3 mm voxels, centred on the origin.
PHANTOM_SHAPE = (64, 64, 40)
PHANTOM_SPACING_MM = (3.0, 3.0, 3.0)
BODY_AB_MM = (85.0, 60.0)
PTV = (0.0, 0.0, 0.0, 25.0)  # centre x, y, z and radius (mm), a sphere
BLADDER = (0.0, -38.0, 20.0, 22.0)  # anterior (-y) and superior (+z) of the PTV
RECTUM = (0.0, 35.0, 13.0, -36.0, 36.0)  # x, y, radius, z from, z to: a cylinder posterior


def phantom_origin() -> tuple[float, float, float]:
    """Centre of voxel (0, 0, 0) of the phantom CT."""
    o = [-(n - 1) * s / 2.0 for n, s in zip(PHANTOM_SHAPE, PHANTOM_SPACING_MM, strict=True)]
    return (o[0], o[1], o[2])


def slice_z(n: int = PHANTOM_SHAPE[2], dz: float = PHANTOM_SPACING_MM[2]) -> NDArray[np.float64]:
    """The phantom's slice positions (mm)."""
    return np.asarray(phantom_origin()[2] + dz * np.arange(n), dtype=np.float64)


def sphere_contours(
    cx: float, cy: float, cz: float, r: float, zs: Sequence[float]
) -> list[Contour]:
    """Circles of the sphere on every plane of ``zs`` that cuts it."""
    return [circle(cx, cy, float(np.sqrt(r * r - (z - cz) ** 2)), z)
            for z in zs if abs(z - cz) < r]  # fmt: skip


def phantom_hu() -> NDArray[np.float64]:
    """The phantom's CT: air, a soft-tissue elliptic body (40 HU), a bony ring (700 HU)."""
    o, s = phantom_origin(), PHANTOM_SPACING_MM
    x, y = np.meshgrid(*[o[a] + s[a] * np.arange(PHANTOM_SHAPE[a]) for a in (0, 1)], indexing="ij")
    inside = (x / BODY_AB_MM[0]) ** 2 + (y / BODY_AB_MM[1]) ** 2 <= 1.0
    slice_hu = np.where(inside, 40.0, -1000.0)
    pelvis = inside & (np.hypot(x, y) > 65.0)  # bone near the lateral skin
    slice_hu[pelvis] = 700.0
    return np.repeat(slice_hu[:, :, None], PHANTOM_SHAPE[2], axis=2)


def phantom_rois(zs: Sequence[float] | None = None) -> list[RoiSpec]:
    """PTV, Bladder, Rectum and BODY (EXTERNAL) contoured on the phantom's slices."""
    zs = list(slice_z() if zs is None else zs)
    rx, ry, rr, z0, z1 = RECTUM
    return [
        RoiSpec("PTV", "PTV", sphere_contours(*PTV, zs)),
        RoiSpec("Bladder", "ORGAN", sphere_contours(*BLADDER, zs)),
        RoiSpec("Rectum", "ORGAN", [circle(rx, ry, rr, z) for z in zs if z0 <= z <= z1]),
        RoiSpec("BODY", "EXTERNAL", [ellipse(0.0, 0.0, *BODY_AB_MM, z) for z in zs]),
    ]


def write_phantom(folder: Path, ids: Ids | None = None, *, plan: bool = False) -> Ids:
    """The prostate-like phantom as CT + RT Structure Set (+ RT Plan) in ``folder``."""
    ids = ids or Ids()
    write_ct(folder, CtSpec(phantom_hu(), phantom_origin(), PHANTOM_SPACING_MM), ids)
    write_rtstruct(folder / "rtstruct.dcm", phantom_rois(), ids)
    if plan:
        write_rtplan(folder / "rtplan.dcm", (0.0, 0.0, 0.0), [0, 72, 144, 216, 288], ids)
    return ids
