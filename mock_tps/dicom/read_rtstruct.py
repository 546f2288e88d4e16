"""The ROIs of an RT Structure Set: name, interpreted type and closed planar contours (mm).

Each ROI of ``StructureSetROISequence`` with its contours from ``ROIContourSequence``
(``CLOSED_PLANAR`` only; points and open contours are skipped with a warning) and its
``RTROIInterpretedType`` from ``RTROIObservationsSequence`` (``EXTERNAL``, ``PTV``, ``ORGAN``,
...; ``ORGAN`` when absent). The structure set's frame of reference must be the CT's; a
contour must be axial (one ``z``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from loguru import logger
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from esapi_bridge.errors import InvalidInput

#: Largest spread (mm) of a contour's z coordinates: an axial contour lies in one plane.
PLANAR_TOLERANCE_MM = 0.01
DEFAULT_TYPE = "ORGAN"
_FIX = "pass the RT Structure Set drawn on this CT"


@dataclass(frozen=True)
class Roi:
    """One ROI: ``contours`` are ``(n, 3)`` arrays of patient coordinates (mm), each closed
    and axial."""

    number: int
    name: str
    interpreted_type: str
    contours: tuple[NDArray[np.float64], ...]


def frame_of_reference(rtstruct: Dataset) -> str:
    """The frame of reference the structure set's contours are drawn in."""
    refs = {
        str(r.FrameOfReferenceUID)
        for r in getattr(rtstruct, "ReferencedFrameOfReferenceSequence", [])
        if "FrameOfReferenceUID" in r
    }
    refs |= {
        str(r.ReferencedFrameOfReferenceUID)
        for r in getattr(rtstruct, "StructureSetROISequence", [])
        if "ReferencedFrameOfReferenceUID" in r
    }
    if len(refs) != 1:
        what = "no frame of reference" if not refs else f"{len(refs)} frames of reference"
        raise InvalidInput(f"the RT Structure Set names {what}; it needs exactly one; {_FIX}")
    return refs.pop()


def check_frame(rtstruct: Dataset, ct_frame_uid: str) -> None:
    """Refuse a structure set drawn in another frame of reference than the CT's."""
    if frame_of_reference(rtstruct) != ct_frame_uid:
        raise InvalidInput(
            "the RT Structure Set's FrameOfReferenceUID differs from the CT's: its contours "
            f"were drawn on another image (or another registration); {_FIX}"
        )


def roi_names(rtstruct: Dataset) -> list[str]:
    """The ROI names in the structure set's order (blanks stripped)."""
    return [str(r.ROIName).strip() for r in getattr(rtstruct, "StructureSetROISequence", [])]


def _contour_data(contour: Dataset, name: str) -> NDArray[np.float64] | None:
    """``ContourData`` as floats; parsed from the raw text when not yet decoded (pydicom's
    per-value decimal strings are about 100 times slower on large structure sets)."""
    if "ContourData" not in contour:
        return None
    value = contour.get_item("ContourData").value
    try:
        if isinstance(value, bytes):
            text = value.decode("ascii").strip(" \0")
            pts = np.asarray(text.split("\\") if text else [], dtype=np.float64)
        else:
            values = value if hasattr(value, "__len__") and not isinstance(value, str) else [value]
            pts = np.asarray([float(v) for v in values], dtype=np.float64)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"ROI {name!r}: a contour's ContourData is not numbers") from None
    if pts.size % 3 or not np.all(np.isfinite(pts)):
        raise InvalidInput(f"ROI {name!r}: a contour's ContourData is not x, y, z triples")
    return pts


def _contours(item: Dataset, name: str) -> tuple[NDArray[np.float64], ...]:
    out: list[NDArray[np.float64]] = []
    skipped: set[str] = set()
    for c in getattr(item, "ContourSequence", []):
        kind = str(getattr(c, "ContourGeometricType", "CLOSED_PLANAR")).upper()
        pts = _contour_data(c, name)
        if kind != "CLOSED_PLANAR" or pts is None or pts.size < 9:
            skipped.add(kind if pts is not None else "empty")
            continue
        pts = pts.reshape(-1, 3)
        if np.ptp(pts[:, 2]) > PLANAR_TOLERANCE_MM:
            raise InvalidInput(
                f"ROI {name!r}: a contour spans z {pts[:, 2].min():.2f} to {pts[:, 2].max():.2f}"
                " mm; only axial contours (one z each) are supported"
            )
        out.append(pts)
    if skipped:
        logger.warning(
            "DICOM import: ROI {!r}: skipped {} contours (only CLOSED_PLANAR ones are filled)",
            name,
            ", ".join(sorted(skipped)),
        )
    return tuple(out)


def read_rois(rtstruct: Dataset) -> list[Roi]:
    """Every ROI of the structure set with its contours and interpreted type.

    Raises
    ------
    InvalidInput
        Two ROIs of one name, or a contour that is not axial or not x, y, z triples.
    """
    types = {
        int(o.ReferencedROINumber): str(getattr(o, "RTROIInterpretedType", "") or "").upper()
        for o in getattr(rtstruct, "RTROIObservationsSequence", [])
        if "ReferencedROINumber" in o
    }
    contours = {
        int(c.ReferencedROINumber): c
        for c in getattr(rtstruct, "ROIContourSequence", [])
        if "ReferencedROINumber" in c
    }
    rois: list[Roi] = []
    seen: set[str] = set()
    for item in getattr(rtstruct, "StructureSetROISequence", []):
        number, name = int(item.ROINumber), str(item.ROIName).strip()
        if name in seen:
            raise InvalidInput(
                f"the RT Structure Set has two ROIs named {name!r}; rename one of them"
            )
        seen.add(name)
        found = contours.get(number)
        rois.append(
            Roi(
                number=number,
                name=name,
                interpreted_type=types.get(number) or DEFAULT_TYPE,
                contours=_contours(found, name) if found is not None else (),
            )
        )
    return rois
