"""A CT series (one file per axial slice) of a CT on a case grid, in HU.

Stored values are signed 16-bit ``HU + 1024`` with ``RescaleIntercept`` -1024 and slope 1
(HU rounded to integers and clipped to -1024..31743). Rows run along ``y``, columns along
``x``; slice ``iz`` lies at ``ImagePositionPatient`` of :meth:`DicomGeometry.slice_positions_mm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput
from mock_tps.dicom.geometry import DicomGeometry
from mock_tps.dicom.write_common import (
    CT_IMAGE_STORAGE,
    DicomIdentity,
    ds_list,
    new_dataset,
    new_uid,
    save,
)
from mock_tps.dicom.write_common import ds as ds_value

INTERCEPT_HU = -1024


@dataclass(frozen=True)
class CtSeries:
    """What a structure set written for the series references: its UIDs, slice by slice."""

    series_instance_uid: str
    slice_uids: tuple[str, ...]  # SOP Instance UID of slice iz
    paths: tuple[Path, ...]


def write_ct_series(
    folder: str | Path,
    hu: NDArray[np.floating],
    geometry: DicomGeometry,
    identity: DicomIdentity,
    *,
    description: str = "rtplan-agent CT",
) -> CtSeries:
    """Write ``hu`` (``[ix, iy, iz]`` on ``geometry``'s grid) as ``CT_0001.dcm``, ... in ``folder``.

    Raises
    ------
    InvalidInput
        The CT does not have the geometry's shape or has non-finite values.
    """
    values = np.asarray(hu, dtype=np.float64)
    if tuple(values.shape) != geometry.shape:
        raise InvalidInput(f"CT shape {values.shape} is not the grid's {geometry.shape}")
    if not np.all(np.isfinite(values)):
        raise InvalidInput("the CT has non-finite values: it cannot be exported")
    stored = np.clip(np.rint(values) - INTERCEPT_HU, 0, 32767).astype(np.int16)
    out = Path(folder)
    series_uid = new_uid()
    uids: list[str] = []
    paths: list[Path] = []
    for k, position in enumerate(geometry.slice_positions_mm()):
        ds = new_dataset(
            CT_IMAGE_STORAGE, "CT", identity, series_uid=series_uid,
            series_description=description, instance_number=k + 1,
        )  # fmt: skip
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.PatientPosition = geometry.patient_position
        ds.ContentDate = ds.InstanceCreationDate
        ds.ContentTime = ds.InstanceCreationTime
        ds.Laterality = ""
        ds.AcquisitionNumber = 1
        ds.KVP = ""
        ds.ImagePositionPatient = ds_list(position)
        ds.ImageOrientationPatient = ds_list(geometry.image_orientation_patient)
        ds.PixelSpacing = ds_list(geometry.pixel_spacing_mm)
        ds.SliceThickness = ds_value(geometry.spacing_mm[2])
        ds.SliceLocation = ds_value(position[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = geometry.shape[1], geometry.shape[0]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = INTERCEPT_HU
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype("<i2").tobytes()
        paths.append(save(ds, out / f"CT_{k + 1:04d}.dcm"))
        uids.append(str(ds.SOPInstanceUID))
    return CtSeries(series_instance_uid=series_uid, slice_uids=tuple(uids), paths=tuple(paths))
