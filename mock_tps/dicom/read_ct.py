"""A CT series as a HU volume on its own grid, checked.

Checks, each refused with a message naming what is wrong and what to do:

- every slice axial with ``ImageOrientationPatient`` ``[1, 0, 0, 0, 1, 0]`` within
  :data:`ORIENTATION_TOLERANCE` (oblique, sagittal, coronal and flipped images refused);
- ``PatientPosition`` HFS (head first supine; FFS, HFP, ... refused; a missing one is taken
  as HFS with a warning);
- one geometry: equal ``Rows``, ``Columns``, ``PixelSpacing``, ``FrameOfReferenceUID`` and
  in-plane position on every slice (else a mixed series);
- slices sorted by ``ImagePositionPatient`` along the slice normal (row x column cosines),
  no two at one position, uniform spacing: a gap above :data:`GAP_FACTOR` x the spacing is a
  missing slice (the position is named), other deviations above :data:`SPACING_TOLERANCE`
  are refused as non-uniform.

Stored values become HU through ``RescaleSlope`` and ``RescaleIntercept``; stored values equal
to ``PixelPaddingValue`` (or within it and ``PixelPaddingRangeLimit``) are air (-1000 HU).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from loguru import logger
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from esapi_bridge.errors import InvalidInput
from mock_tps.dicom.geometry import AXIAL_HFS

ORIENTATION_TOLERANCE = 1e-3
GAP_FACTOR = 1.5
#: Largest deviation of a slice step from the median step, relative (2 %) or 0.01 mm.
SPACING_TOLERANCE = 0.02
AIR_HU = -1000.0
_FIX = "export the series again as axial head-first-supine slices, every slice"


@dataclass(frozen=True)
class CtVolume:
    """A CT on its own grid: ``hu[ix, iy, iz]`` (patient x, y, z), ``origin_mm`` the centre of
    voxel ``(0, 0, 0)``; ``padding_voxels`` counts voxels set to air from the padding value."""

    hu: NDArray[np.float32]
    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    frame_of_reference_uid: str
    study_instance_uid: str
    padding_voxels: int

    def axis_mm(self, axis: int) -> NDArray[np.float64]:
        """Voxel-centre coordinates (mm) along ``axis``."""
        n = self.hu.shape[axis]
        return self.origin_mm[axis] + self.spacing_mm[axis] * np.arange(n, dtype=np.float64)


def _floats(ds: Dataset, keyword: str, n: int) -> NDArray[np.float64]:
    value = getattr(ds, keyword, None)
    if value is None:
        raise InvalidInput(f"a CT slice has no {keyword}; {_FIX}")
    out = np.asarray([float(v) for v in value], dtype=np.float64)
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise InvalidInput(f"a CT slice's {keyword} must hold {n} finite numbers, got {value}")
    return out


def _check_orientation(slices: list[Dataset]) -> None:
    for ds in slices:
        iop = _floats(ds, "ImageOrientationPatient", 6)
        if np.max(np.abs(iop - np.asarray(AXIAL_HFS))) > ORIENTATION_TOLERANCE:
            shown = ", ".join(f"{v:g}" for v in iop)
            raise InvalidInput(
                f"CT ImageOrientationPatient is [{shown}], not axial [1, 0, 0, 0, 1, 0] "
                f"(within {ORIENTATION_TOLERANCE}): oblique, sagittal, coronal or flipped "
                f"images are not supported; {_FIX}"
            )
    positions = {str(getattr(ds, "PatientPosition", "")).upper() for ds in slices}
    if positions == {""}:
        logger.warning("DICOM import: the CT has no PatientPosition; taken as HFS")
        return
    wrong = sorted(p for p in positions if p != "HFS")
    if wrong:
        raise InvalidInput(
            f"CT PatientPosition {', '.join(p or 'missing' for p in wrong)}: only head-first "
            "supine (HFS) is supported (feet-first and prone scans would need their axes "
            "flipped); scan or export the patient HFS"
        )


def _check_one_geometry(slices: list[Dataset]) -> None:
    def key(ds: Dataset) -> tuple[object, ...]:
        spacing = tuple(round(float(v), 4) for v in getattr(ds, "PixelSpacing", ()) or ())
        return (
            int(getattr(ds, "Rows", 0)),
            int(getattr(ds, "Columns", 0)),
            spacing,
            str(getattr(ds, "FrameOfReferenceUID", "")),
        )

    keys = {key(ds) for ds in slices}
    if len(keys) > 1:
        fields = ("Rows", "Columns", "PixelSpacing", "FrameOfReferenceUID")
        differ = [f for i, f in enumerate(fields) if len({k[i] for k in keys}) > 1]
        raise InvalidInput(
            f"mixed series: the CT slices differ in {', '.join(differ)}; pass the folder of "
            "one CT series"
        )
    if not str(getattr(slices[0], "FrameOfReferenceUID", "")):
        raise InvalidInput(f"the CT has no FrameOfReferenceUID; {_FIX}")


def _sorted_positions(slices: list[Dataset]) -> tuple[list[Dataset], NDArray[np.float64]]:
    """Slices sorted along the normal, their positions (n, 3); spacing checked."""
    iop = _floats(slices[0], "ImageOrientationPatient", 6)
    normal = np.cross(iop[:3], iop[3:])
    pos = np.stack([_floats(ds, "ImagePositionPatient", 3) for ds in slices])
    order = np.argsort(pos @ normal, kind="stable")
    slices, pos = [slices[i] for i in order], pos[order]
    inplane = np.abs(pos[:, :2] - pos[0, :2]).max()
    if inplane > 0.01:
        raise InvalidInput(
            f"the CT slices are shifted in-plane by up to {inplane:.2f} mm (a tilted gantry "
            f"or a mixed series); {_FIX}"
        )
    along = pos @ normal
    steps = np.diff(along)
    if np.any(steps <= 1e-3):
        k = int(np.argmax(steps <= 1e-3))
        raise InvalidInput(
            f"two CT slices lie at one position (z = {along[k]:.2f} mm): a duplicate slice or "
            "a mixed series; pass the folder of one CT series"
        )
    nominal = float(np.median(steps))
    for k, step in enumerate(steps):
        if step > GAP_FACTOR * nominal:
            missing = max(1, round(step / nominal) - 1)
            raise InvalidInput(
                f"missing CT slice: a gap of {step:.2f} mm between z = {along[k]:.2f} and "
                f"z = {along[k + 1]:.2f} mm (slice spacing {nominal:.2f} mm: {missing} "
                f"slice(s) missing there); {_FIX}"
            )
    worst = float(np.max(np.abs(steps - nominal)))
    if worst > max(0.01, SPACING_TOLERANCE * nominal):
        raise InvalidInput(
            f"non-uniform CT slice spacing: steps from {steps.min():.2f} to {steps.max():.2f} mm "
            f"(median {nominal:.2f} mm); resample the series to one slice spacing"
        )
    return slices, pos


def _hu(ds: Dataset) -> tuple[NDArray[np.float32], int]:
    """One slice in HU as ``[x, y]`` (columns, rows), and its count of padding voxels."""
    stored = np.asarray(ds.pixel_array)
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    hu = (stored.astype(np.float64) * slope + intercept).astype(np.float32)
    pad = getattr(ds, "PixelPaddingValue", None)
    n_pad = 0
    if pad is not None:
        limit = getattr(ds, "PixelPaddingRangeLimit", None)
        lo, hi = (int(pad), int(pad)) if limit is None else sorted((int(pad), int(limit)))
        padded = (stored >= lo) & (stored <= hi)
        hu[padded] = AIR_HU
        n_pad = int(padded.sum())
    return np.ascontiguousarray(hu.T), n_pad


def read_ct(slices: list[Dataset]) -> CtVolume:
    """The CT volume of a series' slices (any order), checked (see the module docstring).

    Raises
    ------
    InvalidInput
        Fewer than two slices, a non-axial orientation, a patient position other than HFS,
        a mixed series, a missing slice or non-uniform spacing.
    """
    if len(slices) < 2:
        raise InvalidInput(f"the CT series has {len(slices)} slice; at least 2 are needed")
    if any(int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 for ds in slices):
        raise InvalidInput(f"multi-frame (enhanced) CT images are not supported; {_FIX}")
    _check_orientation(slices)
    _check_one_geometry(slices)
    slices, pos = _sorted_positions(slices)
    planes = [_hu(ds) for ds in slices]
    hu = np.stack([p[0] for p in planes], axis=2)
    row_mm, col_mm = (float(v) for v in slices[0].PixelSpacing)
    dz = float(np.median(np.diff(pos[:, 2])))
    return CtVolume(
        hu=hu,
        origin_mm=(float(pos[0, 0]), float(pos[0, 1]), float(pos[0, 2])),
        spacing_mm=(col_mm, row_mm, dz),
        frame_of_reference_uid=str(slices[0].FrameOfReferenceUID),
        study_instance_uid=str(getattr(slices[0], "StudyInstanceUID", "")),
        padding_voxels=sum(p[1] for p in planes),
    )
