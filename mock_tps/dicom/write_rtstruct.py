"""An RT Structure Set of a case's masks, contours traced along voxel edges.

Every structure's axial slices become ``CLOSED_PLANAR`` contours at the slice centres
(:mod:`mock_tps.dicom.contour_trace`: holes and islands are contours of their own; even-odd
filling at voxel centres recovers the mask). With a CT series the contours reference its
slices; without one (a phantom's export) the set references only the frame of reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from mock_tps.dicom.contour_trace import trace_mask
from mock_tps.dicom.write_common import (
    CT_IMAGE_STORAGE,
    RT_STRUCTURE_SET_STORAGE,
    DicomIdentity,
    new_dataset,
    save,
)
from mock_tps.dicom.write_ct import CtSeries
from mock_tps.grid import Grid

#: DICOM RT ROI Interpreted Types we write; other types become ``ORGAN``.
_INTERPRETED = frozenset({"EXTERNAL", "PTV", "CTV", "GTV", "ORGAN", "AVOIDANCE", "CONTROL"})
_STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (by convention)
_COLOURS = ((255, 0, 0), (0, 160, 255), (0, 200, 0), (255, 160, 0), (200, 0, 200),
            (0, 200, 200), (160, 160, 0), (120, 80, 255))  # fmt: skip


def _ref_image(uid: str) -> Dataset:
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    ref.ReferencedSOPInstanceUID = uid
    return ref


def rtstruct_dataset(
    masks: Mapping[str, NDArray[np.bool_]],
    dicom_types: Mapping[str, str],
    grid: Grid,
    identity: DicomIdentity,
    ct: CtSeries | None = None,
    *,
    label: str = "RTPLAN-AGENT",
    order: Sequence[str] | None = None,
) -> FileDataset:
    """The RT Structure Set of ``masks`` (``[ix, iy, iz]`` on ``grid``, patient coordinates).

    ``dicom_types`` gives each structure's RT ROI Interpreted Type; ``order`` the ROI
    order (default: the masks' own); empty masks are left out.
    """
    ds = new_dataset(
        RT_STRUCTURE_SET_STORAGE, "RTSTRUCT", identity, series_description="rtplan-agent structures"
    )
    ds.StructureSetLabel = label[:16]
    ds.StructureSetDate = ds.InstanceCreationDate
    ds.StructureSetTime = ds.InstanceCreationTime
    frame = Dataset()
    frame.FrameOfReferenceUID = identity.frame_of_reference_uid
    if ct is not None:
        series = Dataset()
        series.SeriesInstanceUID = ct.series_instance_uid
        series.ContourImageSequence = [_ref_image(u) for u in ct.slice_uids]
        study = Dataset()
        study.ReferencedSOPClassUID = _STUDY_COMPONENT
        study.ReferencedSOPInstanceUID = identity.study_instance_uid
        study.RTReferencedSeriesSequence = [series]
        frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    rois, contours, observations = [], [], []
    names = [s for s in (order or list(masks)) if masks[s].any()]
    for number, sid in enumerate(names, start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = identity.frame_of_reference_uid
        roi.ROIName = sid[:64]
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = list(_COLOURS[(number - 1) % len(_COLOURS)])
        item.ContourSequence = [
            _contour(points, None if ct is None else ct.slice_uids[k], n)
            for n, (k, points) in enumerate(trace_mask(masks[sid], grid), start=1)
        ]
        contours.append(item)
        obs = Dataset()
        obs.ObservationNumber = number
        obs.ReferencedROINumber = number
        kind = dicom_types.get(sid, "ORGAN").upper()
        obs.RTROIInterpretedType = kind if kind in _INTERPRETED else "ORGAN"
        obs.ROIInterpreter = ""
        observations.append(obs)
    ds.StructureSetROISequence = rois
    ds.ROIContourSequence = contours
    ds.RTROIObservationsSequence = observations
    return ds


def _contour(points: NDArray[np.float64], slice_uid: str | None, number: int) -> Dataset:
    contour = Dataset()
    contour.ContourNumber = number
    if slice_uid is not None:
        contour.ContourImageSequence = [_ref_image(slice_uid)]
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = len(points)
    contour.ContourData = [round(float(v), 4) for v in points.ravel()]
    return contour


def write_rtstruct(
    path: str | Path,
    masks: Mapping[str, NDArray[np.bool_]],
    dicom_types: Mapping[str, str],
    grid: Grid,
    identity: DicomIdentity,
    ct: CtSeries | None = None,
) -> tuple[Path, str]:
    """Write the RT Structure Set (see :func:`rtstruct_dataset`); returns the path and its
    SOP Instance UID."""
    ds = rtstruct_dataset(masks, dicom_types, grid, identity, ct)
    return save(ds, path), str(ds.SOPInstanceUID)
