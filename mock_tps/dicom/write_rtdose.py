"""RT Dose of a plan's 3D dose: physical dose of the whole plan in Gy, 32-bit unsigned.

Geometry (see :mod:`mock_tps.dicom.geometry`): ``ImagePositionPatient`` is the centre of
voxel ``(0, 0, 0)``, frames are axial planes at ``GridFrameOffsetVector`` (mm, the first 0)
from it, rows run along ``y`` and columns along ``x``. The stored value of a voxel is
``round(dose_gy / DoseGridScaling)``; ``DoseGridScaling`` (16 characters at most, a DICOM
DS) maps the largest dose to about 4e9 of the 4.29e9 a 32-bit value holds, so the
quantization error is at most ``DoseGridScaling / 2`` (about 1e-8 Gy at 70 Gy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset
from pydicom.tag import Tag

from esapi_bridge.errors import InvalidInput
from mock_tps.dicom.geometry import DicomGeometry
from mock_tps.dicom.write_common import (
    RT_DOSE_STORAGE,
    RT_PLAN_STORAGE,
    DicomIdentity,
    ds_list,
    new_dataset,
    save,
)
from mock_tps.dicom.write_common import ds as ds_value

#: The stored value the largest dose maps to (below 2**32 - 1 by a margin for rounding).
TOP_VALUE = 4.0e9


def dose_grid_scaling(max_dose_gy: float) -> str:
    """``DoseGridScaling`` (a DS string of at most 16 characters) for a largest dose."""
    if not np.isfinite(max_dose_gy) or max_dose_gy < 0.0:
        raise InvalidInput(f"the dose must be finite and >= 0, its largest value is {max_dose_gy}")
    if max_dose_gy == 0.0:
        return "1"
    return f"{max_dose_gy / TOP_VALUE:.8e}"


def rtdose_dataset(
    dose_gy: NDArray[np.floating],
    geometry: DicomGeometry,
    identity: DicomIdentity,
    rtplan_uid: str,
    *,
    comment: str = "",
) -> FileDataset:
    """The RT Dose dataset of ``dose_gy`` (``[ix, iy, iz]`` on ``geometry``'s grid, Gy).

    ``rtplan_uid`` is the SOP Instance UID of the RT Plan it references (DoseSummationType
    ``PLAN``).

    Raises
    ------
    InvalidInput
        The dose has negative or non-finite values, or not the geometry's shape.
    """
    dose = np.asarray(dose_gy, dtype=np.float64)
    if tuple(dose.shape) != geometry.shape:
        raise InvalidInput(f"dose shape {dose.shape} is not the grid's {geometry.shape}")
    if not np.all(np.isfinite(dose)) or float(dose.min(initial=0.0)) < 0.0:
        raise InvalidInput("the dose has negative or non-finite values: it cannot be exported")
    scaling = dose_grid_scaling(float(dose.max(initial=0.0)))
    stored = np.rint(dose / float(scaling)).astype(np.uint32)
    frames = geometry.to_frames(stored)
    ds = new_dataset(RT_DOSE_STORAGE, "RTDOSE", identity, series_description="rtplan-agent dose")
    nz, ny, nx = frames.shape
    ds.ContentDate = ds.InstanceCreationDate
    ds.ContentTime = ds.InstanceCreationTime
    ds.ImagePositionPatient = ds_list(geometry.origin_mm)
    ds.ImageOrientationPatient = ds_list(geometry.image_orientation_patient)
    ds.PixelSpacing = ds_list(geometry.pixel_spacing_mm)
    ds.SliceThickness = ds_value(geometry.spacing_mm[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = nz
    ds.FrameIncrementPointer = Tag(0x3004, 0x000C)
    ds.Rows, ds.Columns = ny, nx
    ds.BitsAllocated = 32
    ds.BitsStored = 32
    ds.HighBit = 31
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    if comment:
        ds.DoseComment = comment[:64]
    ds.GridFrameOffsetVector = ds_list(geometry.frame_offsets_mm())
    ds.DoseGridScaling = scaling
    ref = Dataset()
    ref.ReferencedSOPClassUID = RT_PLAN_STORAGE
    ref.ReferencedSOPInstanceUID = rtplan_uid
    ds.ReferencedRTPlanSequence = [ref]
    ds.PixelData = frames.astype("<u4").tobytes()
    return ds


def write_rtdose(
    path: str | Path,
    dose_gy: NDArray[np.floating],
    geometry: DicomGeometry,
    identity: DicomIdentity,
    rtplan_uid: str,
    *,
    comment: str = "",
) -> Path:
    """Write the RT Dose of ``dose_gy`` to ``path`` (see :func:`rtdose_dataset`)."""
    return save(rtdose_dataset(dose_gy, geometry, identity, rtplan_uid, comment=comment), path)


def read_rtdose_gy(path: str | Path) -> tuple[NDArray[np.float64], DicomGeometry]:
    """An RT Dose we wrote, read back: the dose (Gy, ``[ix, iy, iz]``) and its geometry."""
    import pydicom

    ds = pydicom.dcmread(path)
    offsets = [float(v) for v in ds.GridFrameOffsetVector]
    dz = offsets[1] - offsets[0] if len(offsets) > 1 else float(ds.SliceThickness)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    x0, y0, z0 = (float(v) for v in ds.ImagePositionPatient)
    geometry = DicomGeometry(
        origin_mm=(x0, y0, z0 + offsets[0]),
        spacing_mm=(col_mm, row_mm, dz),
        shape=(int(ds.Columns), int(ds.Rows), int(ds.NumberOfFrames)),
        frame_of_reference_uid=str(ds.FrameOfReferenceUID),
        study_instance_uid=str(ds.StudyInstanceUID),
    )
    frames = np.asarray(ds.pixel_array, dtype=np.float64).reshape(
        int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)
    )
    dose = np.asarray(geometry.from_frames(frames), dtype=np.float64) * float(ds.DoseGridScaling)
    return dose, geometry
