"""Plan snapshots for reports: DVH curves and dose slices of one plan state, on disk.

The journal holds evaluations, not curves or dose planes; the loop therefore saves a
snapshot of the plan after iteration 0 (label ``"initial"``) and at the end
(``"final"``). A snapshot is two files in the session directory:

- ``dvh_<label>.json``: :class:`DvhSnapshot`, one :class:`~esapi_bridge.dto.DvhCurve`
  per structure (doses rounded to 0.01 Gy, at most :data:`MAX_DVH_POINTS` points
  per curve, chosen by Ramer-Douglas-Peucker so that the shape is kept);
- ``slices_<label>.json``: :class:`SliceSnapshot`, the axial, coronal and sagittal
  dose planes through the target centre (doses rounded to 0.01 Gy, structure masks
  run-length encoded), or the reason why the TPS offers none.

Both are written atomically (temporary file + rename).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field, ValidationError

from esapi_bridge.dto import DoseSlice, DvhCurve, SlicePlane
from esapi_bridge.errors import (
    CapabilityUnavailable,
    EmptyStructure,
    InvalidInput,
    UnknownStructure,
)
from esapi_bridge.port import TpsSession
from rtplan_common.atomic_io import write_text_atomic
from rtplan_common.models import StrictModel

SNAPSHOT_SCHEMA_VERSION = 1
#: Most points kept per DVH curve.
MAX_DVH_POINTS = 1000
#: Dose resolution of stored curves and planes (Gy).
DOSE_RESOLUTION_GY = 0.01
#: Planes saved in a snapshot, in display order.
SNAPSHOT_PLANES: tuple[SlicePlane, ...] = (
    SlicePlane.AXIAL,
    SlicePlane.CORONAL,
    SlicePlane.SAGITTAL,
)

_M = TypeVar("_M", bound=BaseModel)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class SnapshotError(RuntimeError):
    """A snapshot file cannot be read back (malformed, wrong schema); names the file."""


class DvhSnapshot(StrictModel):
    """Content of ``dvh_<label>.json``."""

    schema_version: int = SNAPSHOT_SCHEMA_VERSION
    label: str
    curves: list[DvhCurve]
    missing: dict[str, str] = Field(default_factory=dict)  # structure id -> why no curve


class EncodedSlice(StrictModel):
    """A :class:`~esapi_bridge.dto.DoseSlice`, cropped, with its masks run-length encoded.

    ``masks_rle[sid]`` are alternating run lengths of ``False`` and ``True`` over the
    row-major flattened mask (the first run is ``False`` and may be 0). Structures
    absent from the plane are left out.
    """

    plane: SlicePlane
    index: Annotated[int, Field(ge=0)]
    position_mm: float
    row_axis: str
    col_axis: str
    spacing_mm: tuple[float, float]
    origin_mm: tuple[float, float]
    shape: tuple[int, int]
    dose_gy: list[list[float]]
    masks_rle: dict[str, list[int]] = Field(default_factory=dict)


class SliceSnapshot(StrictModel):
    """Content of ``slices_<label>.json``; ``unavailable`` says why there are no planes."""

    schema_version: int = SNAPSHOT_SCHEMA_VERSION
    label: str
    slices: list[EncodedSlice] = Field(default_factory=list)
    unavailable: str | None = None


class PlanSnapshot(StrictModel):
    """A snapshot read back: curves by structure id and decoded slices by plane.

    ``slices_unavailable`` is the TPS's reason when it offers no dose planes;
    ``slices_missing`` is set when no slices file exists at all.
    """

    label: str
    dvhs: dict[str, DvhCurve]
    dvh_missing: dict[str, str] = Field(default_factory=dict)
    slices: dict[SlicePlane, DoseSlice] = Field(default_factory=dict)
    slices_unavailable: str | None = None
    slices_missing: bool = False


def dvh_path(session_dir: Path, label: str) -> Path:
    """``session_dir/dvh_<label>.json``."""
    return Path(session_dir) / f"dvh_{_check_label(label)}.json"


def slices_path(session_dir: Path, label: str) -> Path:
    """``session_dir/slices_<label>.json``."""
    return Path(session_dir) / f"slices_{_check_label(label)}.json"


def _check_label(label: str) -> str:
    if not _LABEL_RE.match(label):
        raise InvalidInput(
            f"snapshot label must be 1-40 characters of letters, digits, '_' or '-', got {label!r}"
        )
    return label


# ------------------------------------------------------------------ DVH thinning
def _rdp_keep(x: NDArray[np.floating], y: NDArray[np.floating], eps: float) -> NDArray[np.bool_]:
    """Ramer-Douglas-Peucker: which points to keep so that none lies > ``eps`` off the polyline."""
    keep = np.zeros(x.size, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, x.size - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        dx, dy = x[hi] - x[lo], y[hi] - y[lo]
        xs, ys = x[lo + 1 : hi] - x[lo], y[lo + 1 : hi] - y[lo]
        norm = float(np.hypot(dx, dy))
        dist = np.abs(dx * ys - dy * xs) / norm if norm > 0 else np.hypot(xs, ys)
        k = int(np.argmax(dist))
        if dist[k] > eps:
            mid = lo + 1 + k
            keep[mid] = True
            stack.append((lo, mid))
            stack.append((mid, hi))
    return keep


def thin_dvh(curve: DvhCurve, max_points: int = MAX_DVH_POINTS) -> DvhCurve:
    """The curve with doses rounded to 0.01 Gy and at most ``max_points`` points.

    Points are dropped by Ramer-Douglas-Peucker in normalized coordinates
    (dose / max dose, volume / 100 %), with the smallest tolerance (from 0.005 %
    of each axis, doubling) that meets ``max_points``; the first and last points are
    always kept. Volumes are rounded to 1e-4 %.
    """
    if max_points < 2:
        raise InvalidInput(f"max_points must be >= 2, got {max_points}")
    dose = np.round(np.asarray(curve.dose_gy, dtype=np.float64), 2)
    vol = np.round(np.asarray(curve.volume_pct, dtype=np.float64), 4)
    # rounding can make neighbouring points identical: keep one of each
    same = (np.diff(dose) == 0) & (np.diff(vol) == 0)
    if same.any():
        drop = np.zeros(dose.size, dtype=bool)
        drop[1:] = same
        drop[-1] = False
        dose, vol = dose[~drop], vol[~drop]
    scale = float(dose[-1]) if dose[-1] > 0 else 1.0
    x, y = dose / scale, vol / 100.0
    keep = np.ones(dose.size, dtype=bool)
    eps = 5e-5
    while True:
        keep = _rdp_keep(x, y, eps) if dose.size > 2 else keep
        if int(keep.sum()) <= max_points:
            break
        eps *= 2.0
    d_kept, v_kept = dose[keep], vol[keep]
    if d_kept.size < 2:  # a single-point curve after rounding: duplicate it
        d_kept, v_kept = np.repeat(d_kept, 2), np.repeat(v_kept, 2)
    return DvhCurve(
        structure_id=curve.structure_id,
        volume_cm3=curve.volume_cm3,
        dose_gy=d_kept.tolist(),
        volume_pct=v_kept.tolist(),
        min_dose_gy=round(curve.min_dose_gy, 2),
        mean_dose_gy=round(curve.mean_dose_gy, 2),
        max_dose_gy=round(curve.max_dose_gy, 2),
    )


# --------------------------------------------------------------- mask encoding
def encode_mask(mask: NDArray[np.bool_]) -> list[int]:
    """Alternating run lengths (False first, possibly 0) of the row-major flattened mask."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).astype(int).tolist()
    return runs if not flat[0] else [0, *runs]


def decode_mask(runs: Sequence[int], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Inverse of :func:`encode_mask`."""
    total = int(shape[0]) * int(shape[1])
    if any(r < 0 for r in runs) or sum(runs) != total:
        raise ValueError(f"run lengths sum to {sum(runs)}, expected {total} for shape {shape}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, np.asarray(runs, dtype=int)).reshape(shape)


def encode_slice(dose_slice: DoseSlice) -> EncodedSlice:
    """Round the doses to 0.01 Gy, crop and run-length encode the non-empty masks.

    The plane is cropped to the bounding box of the non-zero dose and the masks
    (one voxel kept around it); ``origin_mm`` moves with the crop.
    """
    plane = dose_slice.plane.value
    dose = np.round(np.asarray(dose_slice.dose_gy, dtype=np.float64), 2)
    if dose.ndim != 2 or dose.size == 0:
        raise InvalidInput(f"dose slice {plane}: dose_gy must be a non-empty 2D list")
    masks: dict[str, NDArray[np.bool_]] = {}
    for sid, rows in dose_slice.masks.items():
        mask = np.asarray(rows, dtype=bool)
        if mask.shape != dose.shape:
            raise InvalidInput(
                f"dose slice {plane}: mask {sid!r} has shape {mask.shape}, dose has {dose.shape}"
            )
        if mask.any():
            masks[sid] = mask
    content = dose > 0.0
    for mask in masks.values():
        content |= mask
    r0, c0, r1, c1 = 0, 0, dose.shape[0], dose.shape[1]
    if content.any():
        rows_used, cols_used = (
            np.flatnonzero(content.any(axis=1)),
            np.flatnonzero(content.any(axis=0)),
        )
        r0, r1 = max(0, int(rows_used[0]) - 1), min(dose.shape[0], int(rows_used[-1]) + 2)
        c0, c1 = max(0, int(cols_used[0]) - 1), min(dose.shape[1], int(cols_used[-1]) + 2)
    crop = (slice(r0, r1), slice(c0, c1))
    sr, sc = dose_slice.spacing_mm
    return EncodedSlice(
        plane=dose_slice.plane,
        index=dose_slice.index,
        position_mm=dose_slice.position_mm,
        row_axis=dose_slice.row_axis,
        col_axis=dose_slice.col_axis,
        spacing_mm=dose_slice.spacing_mm,
        origin_mm=(dose_slice.origin_mm[0] + r0 * sr, dose_slice.origin_mm[1] + c0 * sc),
        shape=(r1 - r0, c1 - c0),
        dose_gy=dose[crop].tolist(),
        masks_rle={sid: encode_mask(mask[crop]) for sid, mask in masks.items()},
    )


def decode_slice(encoded: EncodedSlice) -> DoseSlice:
    """The :class:`DoseSlice` of an :class:`EncodedSlice` (absent structures have no mask)."""
    return DoseSlice.model_validate(
        {
            "plane": encoded.plane,
            "index": encoded.index,
            "position_mm": encoded.position_mm,
            "row_axis": encoded.row_axis,
            "col_axis": encoded.col_axis,
            "spacing_mm": encoded.spacing_mm,
            "origin_mm": encoded.origin_mm,
            "dose_gy": encoded.dose_gy,
            "masks": {
                sid: decode_mask(runs, encoded.shape).tolist()
                for sid, runs in encoded.masks_rle.items()
            },
        }
    )


# ----------------------------------------------------------------- file I/O
def save_plan_snapshot(
    session: TpsSession, session_dir: Path, label: str, structure_ids: Sequence[str]
) -> None:
    """Save the DVHs of ``structure_ids`` and the dose planes of the current plan.

    Parameters
    ----------
    session
        The TPS session holding a calculated (and normalized) dose.
    session_dir
        The session directory; ``dvh_<label>.json`` and ``slices_<label>.json`` are
        (re)written there atomically.
    label
        ``"initial"``, ``"final"`` or another short name (letters, digits, ``_``, ``-``).
    structure_ids
        Plan structure ids whose DVH to save. A structure the TPS cannot give a
        DVH for (:class:`~esapi_bridge.errors.EmptyStructure`, ...) is recorded as
        missing with the reason; other errors propagate.

    Notes
    -----
    Dose planes are optional: when the TPS raises
    :class:`~esapi_bridge.errors.CapabilityUnavailable`, the slices file records
    that they are unavailable and why.
    """
    session_dir = Path(session_dir)
    dvh_file, slices_file = dvh_path(session_dir, label), slices_path(session_dir, label)
    curves: list[DvhCurve] = []
    missing: dict[str, str] = {}
    for sid in dict.fromkeys(structure_ids):  # de-duplicated, order kept
        try:
            curves.append(thin_dvh(session.get_dvh(sid)))
        except (EmptyStructure, UnknownStructure) as exc:
            missing[sid] = str(exc)
    slices = SliceSnapshot(label=label)
    try:
        slices.slices = [encode_slice(session.dose_slice(plane)) for plane in SNAPSHOT_PLANES]
    except CapabilityUnavailable as exc:
        slices.unavailable = str(exc) or "the TPS offers no dose planes"
    dvh_text = DvhSnapshot(label=label, curves=curves, missing=missing).model_dump_json()
    write_text_atomic(dvh_file, dvh_text)
    write_text_atomic(slices_file, slices.model_dump_json())


def load_plan_snapshot(session_dir: Path, label: str) -> PlanSnapshot | None:
    """Read the snapshot ``label`` back, or ``None`` if it has no DVH file.

    A missing slices file gives ``slices_missing=True``.

    Raises
    ------
    SnapshotError
        If a file exists but is not a valid snapshot (the message names the file).
    """
    dvh_file, slices_file = (
        dvh_path(Path(session_dir), label),
        slices_path(Path(session_dir), label),
    )
    if not dvh_file.exists():
        return None
    dvh_snap = _read_model(dvh_file, DvhSnapshot)
    snapshot = PlanSnapshot(
        label=label,
        dvhs={c.structure_id: c for c in dvh_snap.curves},
        dvh_missing=dict(dvh_snap.missing),
    )
    if not slices_file.exists():
        snapshot.slices_missing = True
        return snapshot
    slice_snap = _read_model(slices_file, SliceSnapshot)
    snapshot.slices_unavailable = slice_snap.unavailable
    try:
        snapshot.slices = {s.plane: decode_slice(s) for s in slice_snap.slices}
    except (ValueError, ValidationError) as exc:
        raise SnapshotError(f"snapshot {str(slices_file)!r}: bad slice: {exc}") from exc
    return snapshot


def _read_model(path: Path, model: type[_M]) -> _M:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"cannot read snapshot {str(path)!r}: {exc}") from exc
    try:
        obj = model.model_validate_json(text)
    except ValidationError as exc:
        first = str(exc).splitlines()[0]
        raise SnapshotError(f"snapshot {str(path)!r} is not valid: {first}") from exc
    version = getattr(obj, "schema_version", SNAPSHOT_SCHEMA_VERSION)
    if version != SNAPSHOT_SCHEMA_VERSION:
        raise SnapshotError(
            f"snapshot {str(path)!r}: schema_version {version} is not supported "
            f"(expected {SNAPSHOT_SCHEMA_VERSION})"
        )
    return obj
