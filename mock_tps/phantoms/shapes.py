"""Voxelized geometric primitives and mask operations for the parametric phantoms.

Every shape is given in patient coordinates (mm, see :mod:`mock_tps.grid`) and returns a
boolean mask on a :class:`~mock_tps.grid.Grid`. Shapes are evaluated only inside their
bounding box, so building a phantom of many small organs stays fast. Margins and rings use
Euclidean distance transforms between voxel centres, computed on a cropped box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from esapi_bridge.errors import InvalidInput
from mock_tps.grid import Grid

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
Vec3 = tuple[float, float, float]
_Slices = tuple[slice, slice, slice]
_Local = tuple[_Slices, FloatArray, FloatArray, FloatArray]


def rotation_matrix(rx_deg: float = 0.0, ry_deg: float = 0.0, rz_deg: float = 0.0) -> FloatArray:
    """Rotation ``Rz @ Ry @ Rx`` (degrees, right-handed, about the patient x, y, z axes)."""
    ax, ay, az = (math.radians(a) for a in (rx_deg, ry_deg, rz_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx, dtype=np.float64)


def _floats(values: ArrayLike, n: int) -> list[float]:
    """The first ``n`` entries of ``values`` as floats."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size < n:
        raise InvalidInput(f"expected {n} coordinates, got {flat.size}")
    return [float(v) for v in flat[:n]]


def empty(grid: Grid) -> BoolArray:
    """An all-false mask on ``grid``."""
    return np.zeros(grid.shape, dtype=bool)


def _local(grid: Grid, lo_mm: ArrayLike, hi_mm: ArrayLike) -> _Local | None:
    """Slices of the voxels whose centres lie in the box ``[lo, hi]`` and their coordinates.

    Coordinates are returned as broadcastable arrays of shapes (n,1,1), (1,n,1), (1,1,n).
    """
    lo = np.asarray(lo_mm, dtype=np.float64)
    hi = np.asarray(hi_mm, dtype=np.float64)
    slices: list[slice] = []
    coords: list[FloatArray] = []
    for axis in range(3):
        s = grid.spacing_mm[axis]
        o = grid.origin_mm[axis]
        i0 = max(0, math.ceil((lo[axis] - o) / s - 1e-9))
        i1 = min(grid.shape[axis], math.floor((hi[axis] - o) / s + 1e-9) + 1)
        if i1 <= i0:
            return None
        slices.append(slice(i0, i1))
        shape = [1, 1, 1]
        shape[axis] = i1 - i0
        coords.append((o + s * np.arange(i0, i1, dtype=np.float64)).reshape(shape))
    return (slices[0], slices[1], slices[2]), coords[0], coords[1], coords[2]


def ellipsoid(
    grid: Grid,
    centre_mm: ArrayLike,
    semi_axes_mm: ArrayLike,
    rotation: FloatArray | None = None,
) -> BoolArray:
    """Solid ellipsoid; ``rotation`` maps the ellipsoid's own axes to patient axes."""
    c = np.asarray(centre_mm, dtype=np.float64)
    a = np.asarray(semi_axes_mm, dtype=np.float64)
    reach = a if rotation is None else np.full(3, a.max())
    out = empty(grid)
    loc = _local(grid, c - reach, c + reach)
    if loc is None:
        return out
    sl, x, y, z = loc
    d = [x - c[0], y - c[1], z - c[2]]
    if rotation is not None:  # coordinates in the ellipsoid frame: R^T (p - c)
        r = np.asarray(rotation, dtype=np.float64)
        d = [r[0, k] * d[0] + r[1, k] * d[1] + r[2, k] * d[2] for k in range(3)]
    out[sl] = (d[0] / a[0]) ** 2 + (d[1] / a[1]) ** 2 + (d[2] / a[2]) ** 2 <= 1.0
    return out


def elliptic_cylinder(
    grid: Grid,
    centre_mm: ArrayLike,
    semi_axes_xy_mm: ArrayLike,
    z_range_mm: tuple[float, float],
) -> BoolArray:
    """Cylinder along z with an elliptical cross-section, between ``z_range_mm`` (inclusive)."""
    cx, cy = _floats(centre_mm, 2)
    ax, ay = _floats(semi_axes_xy_mm, 2)
    out = empty(grid)
    loc = _local(grid, (cx - ax, cy - ay, z_range_mm[0]), (cx + ax, cy + ay, z_range_mm[1]))
    if loc is None:
        return out
    sl, x, y, z = loc
    inside = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0
    out[sl] = np.broadcast_to(inside, (x.shape[0], y.shape[1], z.shape[2]))
    return out


def capsule(
    grid: Grid,
    p0_mm: ArrayLike,
    p1_mm: ArrayLike,
    radius0_mm: float,
    radius1_mm: float | None = None,
) -> BoolArray:
    """Voxels within a radius of the segment p0-p1 (radius linear from p0 to p1)."""
    p0 = np.asarray(p0_mm, dtype=np.float64)
    p1 = np.asarray(p1_mm, dtype=np.float64)
    r0 = float(radius0_mm)
    r1 = r0 if radius1_mm is None else float(radius1_mm)
    out = empty(grid)
    rmax = max(r0, r1)
    loc = _local(grid, np.minimum(p0, p1) - rmax, np.maximum(p0, p1) + rmax)
    if loc is None:
        return out
    sl, x, y, z = loc
    v = p1 - p0
    vv = float(v @ v)
    dx, dy, dz = x - p0[0], y - p0[1], z - p0[2]
    t = np.zeros(1) if vv == 0.0 else np.clip((dx * v[0] + dy * v[1] + dz * v[2]) / vv, 0.0, 1.0)
    d2 = (dx - t * v[0]) ** 2 + (dy - t * v[1]) ** 2 + (dz - t * v[2]) ** 2
    out[sl] = d2 <= (r0 + t * (r1 - r0)) ** 2
    return out


def tube(grid: Grid, points_mm: ArrayLike, radius_mm: ArrayLike) -> BoolArray:
    """A tube along a polyline (union of capsules).

    ``radius_mm`` is a scalar or a sequence of radii spread evenly along the points
    (linearly interpolated when it has fewer entries than there are points).
    """
    pts = np.asarray(points_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise InvalidInput(f"tube points_mm must be an (n >= 2, 3) array, got shape {pts.shape}")
    r = np.atleast_1d(np.asarray(radius_mm, dtype=np.float64))
    radii = np.interp(np.linspace(0.0, 1.0, len(pts)), np.linspace(0.0, 1.0, len(r)), r)
    out = empty(grid)
    for i in range(len(pts) - 1):
        out |= capsule(grid, pts[i], pts[i + 1], float(radii[i]), float(radii[i + 1]))
    return out


def spline(control_mm: ArrayLike, n: int = 24) -> FloatArray:
    """``n`` points on a smooth curve through the control points (Catmull-Rom)."""
    c = np.asarray(control_mm, dtype=np.float64)
    if len(c) < 2:
        raise InvalidInput(f"spline needs >= 2 control points, got {len(c)}")
    p = np.vstack([2 * c[0] - c[1], c, 2 * c[-1] - c[-2]])
    seg = len(c) - 1
    u = np.linspace(0.0, seg, n)
    k = np.minimum(u.astype(int), seg - 1)
    t = (u - k)[:, None]
    p0, p1, p2, p3 = p[k], p[k + 1], p[k + 2], p[k + 3]
    return np.asarray(
        0.5
        * (
            2 * p1
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
        ),
        dtype=np.float64,
    )


def arc(
    centre_mm: ArrayLike,
    semi_axes_xy_mm: ArrayLike,
    start_deg: float,
    stop_deg: float,
    n: int = 16,
) -> FloatArray:
    """``n`` points on an axial elliptical arc at ``z = centre[2]``; angle 0 = +x, 90 = +y."""
    ang = np.radians(np.linspace(start_deg, stop_deg, n))
    cx, cy, cz = _floats(centre_mm, 3)
    ax, ay = _floats(semi_axes_xy_mm, 2)
    return np.stack(
        [
            cx + ax * np.cos(ang),
            cy + ay * np.sin(ang),
            np.full(n, cz),
        ],
        axis=1,
    )


def c_shape(
    grid: Grid,
    centre_mm: ArrayLike,
    inner_semi_axes_mm: ArrayLike,
    outer_semi_axes_mm: ArrayLike,
    z_range_mm: tuple[float, float],
    opening_dir_deg: float,
    opening_half_angle_deg: float,
) -> BoolArray:
    """An elliptical annulus extruded along z with an angular gap (a 'C' in axial slices).

    The gap is centred on ``opening_dir_deg`` (0 = +x, 90 = +y = posterior) and spans
    ``2 * opening_half_angle_deg``.
    """
    cx, cy = _floats(centre_mm, 2)
    ai, bi = _floats(inner_semi_axes_mm, 2)
    ao, bo = _floats(outer_semi_axes_mm, 2)
    out = empty(grid)
    loc = _local(grid, (cx - ao, cy - bo, z_range_mm[0]), (cx + ao, cy + bo, z_range_mm[1]))
    if loc is None:
        return out
    sl, x, y, z = loc
    dx, dy = x - cx, y - cy
    ring = ((dx / ao) ** 2 + (dy / bo) ** 2 <= 1.0) & ((dx / ai) ** 2 + (dy / bi) ** 2 > 1.0)
    ang = np.degrees(np.arctan2(dy, dx))
    off = np.abs((ang - opening_dir_deg + 180.0) % 360.0 - 180.0)
    inside = ring & (off > opening_half_angle_deg)
    out[sl] = np.broadcast_to(inside, (x.shape[0], y.shape[1], z.shape[2]))
    return out


def half_space(grid: Grid, point_mm: ArrayLike, normal: ArrayLike) -> BoolArray:
    """Voxels on the side of the plane through ``point_mm`` that ``normal`` points to."""
    p = _floats(point_mm, 3)
    x, y, z = (grid.axis_mm(a) - p[a] for a in range(3))
    n = _floats(normal, 3)
    side = x[:, None, None] * n[0] + y[None, :, None] * n[1] + z[None, None, :] * n[2]
    return np.asarray(side >= 0.0)


def shift_mask(mask: BoolArray, grid: Grid, offset_mm: ArrayLike) -> BoolArray:
    """The mask moved by ``offset_mm`` (rounded to whole voxels); voxels leaving the grid are lost."""
    out = np.zeros_like(mask)
    src: list[slice] = []
    dst: list[slice] = []
    offset = _floats(offset_mm, 3)
    for axis in range(3):
        k = round(offset[axis] / grid.spacing_mm[axis])
        n = mask.shape[axis]
        if abs(k) >= n:
            return out
        src.append(slice(max(0, -k), n - max(0, k)))
        dst.append(slice(max(0, k), n - max(0, -k)))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def _box(mask: BoolArray, pad: Sequence[int]) -> _Slices | None:
    """Bounding box of ``mask`` padded by ``pad`` voxels per axis, clipped to the array."""
    if not mask.any():
        return None
    sl: list[slice] = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        sl.append(slice(max(0, idx[0] - pad[axis]), min(mask.shape[axis], idx[-1] + 1 + pad[axis])))
    return sl[0], sl[1], sl[2]


def distance_mm(mask: BoolArray, grid: Grid, max_distance_mm: float) -> FloatArray:
    """Distance (mm) from each voxel centre to the nearest voxel centre of ``mask``.

    Exact Euclidean distance up to ``max_distance_mm``; voxels farther away get ``inf``
    (0 inside the mask). An empty mask gives ``inf`` everywhere.
    """
    out = np.full(grid.shape, np.inf)
    pad = [math.ceil(max_distance_mm / s) + 1 for s in grid.spacing_mm]
    box = _box(mask, pad)
    if box is None:
        return out
    d = ndimage.distance_transform_edt(~mask[box], sampling=grid.spacing_mm)
    d = np.asarray(d, dtype=np.float64)
    d[d > max_distance_mm] = np.inf
    out[box] = d
    return out


def expand(mask: BoolArray, grid: Grid, margin_mm: float) -> BoolArray:
    """Isotropic margin: voxels within ``margin_mm`` of the mask (the mask included)."""
    if margin_mm < 0:
        raise InvalidInput(f"margin_mm must be >= 0, got {margin_mm}")
    return np.asarray(distance_mm(mask, grid, margin_mm) <= margin_mm + 1e-6)


def inner_distance_mm(mask: BoolArray, grid: Grid) -> FloatArray:
    """Distance (mm) from each voxel centre of ``mask`` to the nearest voxel centre outside it.

    0 outside the mask; outside the grid counts as outside the mask.
    """
    out = np.zeros(grid.shape)
    box = _box(mask, (0, 0, 0))
    if box is None:
        return out
    sub = np.pad(mask[box], 1, constant_values=False)
    d = np.asarray(ndimage.distance_transform_edt(sub, sampling=grid.spacing_mm), dtype=np.float64)
    out[box] = d[1:-1, 1:-1, 1:-1]
    return out


def shrink(mask: BoolArray, grid: Grid, margin_mm: float) -> BoolArray:
    """Voxels of the mask farther than ``margin_mm`` from every voxel outside it.

    Outside the grid counts as outside the mask.
    """
    if margin_mm < 0:
        raise InvalidInput(f"margin_mm must be >= 0, got {margin_mm}")
    return np.asarray(inner_distance_mm(mask, grid) > margin_mm + 1e-6)


def ring(
    mask: BoolArray,
    grid: Grid,
    inner_mm: float,
    outer_mm: float,
    distance: FloatArray | None = None,
) -> BoolArray:
    """Voxels whose distance from the mask (as :func:`distance_mm`) is in ``(inner_mm, outer_mm]``.

    ``distance`` may pass a distance map already computed with a reach >= ``outer_mm``.
    """
    if not 0 <= inner_mm < outer_mm:
        raise InvalidInput(f"ring needs 0 <= inner_mm < outer_mm, got {inner_mm}, {outer_mm}")
    d = distance_mm(mask, grid, outer_mm) if distance is None else distance
    return np.asarray((d > inner_mm) & (d <= outer_mm))


def centroid_mm(mask: BoolArray, grid: Grid) -> Vec3:
    """Centroid (mm) of the voxel centres of ``mask``."""
    idx = np.argwhere(mask)
    if len(idx) == 0:
        raise InvalidInput("centroid of an empty mask")
    c = np.asarray(grid.origin_mm) + idx.mean(axis=0) * np.asarray(grid.spacing_mm)
    return float(c[0]), float(c[1]), float(c[2])
