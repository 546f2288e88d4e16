"""Closed planar contours to a voxel mask on a case grid.

Conventions:

- in-plane, a voxel belongs to the structure when its centre lies inside the contours of its
  plane by the even-odd rule: inside an odd number of them (so an inner contour is a hole,
  an island inside a hole is filled again, and separate contours are separate parts);
- end caps: each contour plane stands for a slab of ``slab_mm`` (the CT slice spacing, on
  whose slices the contours are drawn) centred on it, ``[z - slab/2, z + slab/2)``; a grid
  slice takes the plane whose slab holds its centre (the nearest when several do). A
  structure contoured on ``n`` consecutive CT slices is ``n`` slice thicknesses long; a
  slice without a contour leaves a gap;
- contours beyond the grid are clipped (:attr:`Raster.clipped` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as PolygonPath
from numpy.typing import NDArray

from mock_tps.grid import Grid

#: Contours whose z differ by less than this (mm) lie in one plane.
PLANE_TOLERANCE_MM = 0.05


@dataclass(frozen=True)
class Raster:
    """A rasterized structure: its mask and whether any part fell outside the grid."""

    mask: NDArray[np.bool_]
    clipped: bool


def planes(
    contours: Sequence[NDArray[np.float64]],
) -> list[tuple[float, list[NDArray[np.float64]]]]:
    """Contours grouped by plane: ``(z_mm, [xy (n, 2) arrays])`` in increasing ``z``."""
    out: list[tuple[float, list[NDArray[np.float64]]]] = []
    for c in sorted(contours, key=lambda c: float(c[0, 2])):
        z = float(np.mean(c[:, 2]))
        if out and z - out[-1][0] < PLANE_TOLERANCE_MM:
            out[-1][1].append(c[:, :2])
        else:
            out.append((z, [c[:, :2]]))
    return out


def fill_plane(polygons: Sequence[NDArray[np.float64]], grid: Grid) -> NDArray[np.bool_]:
    """The ``[ix, iy]`` mask of voxel centres inside an odd number of ``polygons``."""
    xs, ys = grid.axis_mm(0), grid.axis_mm(1)
    out = np.zeros(grid.shape[:2], dtype=bool)
    for xy in polygons:
        i0, i1 = np.searchsorted(xs, [xy[:, 0].min(), xy[:, 0].max()], side="left")
        j0, j1 = np.searchsorted(ys, [xy[:, 1].min(), xy[:, 1].max()], side="left")
        i1, j1 = min(int(i1) + 1, len(xs)), min(int(j1) + 1, len(ys))
        if i0 >= i1 or j0 >= j1:
            continue
        gx, gy = np.meshgrid(xs[i0:i1], ys[j0:j1], indexing="ij")
        points = np.column_stack([gx.ravel(), gy.ravel()])
        inside = PolygonPath(xy).contains_points(points).reshape(gx.shape)
        out[i0:i1, j0:j1] ^= inside
    return out


def _outside(polygons: Sequence[NDArray[np.float64]], grid: Grid) -> bool:
    for axis in (0, 1):
        lo = grid.origin_mm[axis] - grid.spacing_mm[axis] / 2
        hi = lo + grid.shape[axis] * grid.spacing_mm[axis]
        if any(xy[:, axis].min() < lo or xy[:, axis].max() > hi for xy in polygons):
            return True
    return False


def rasterize(contours: Sequence[NDArray[np.float64]], grid: Grid, slab_mm: float) -> Raster:
    """The mask of a structure's contours on ``grid`` (conventions in the module docstring).

    Parameters
    ----------
    contours
        Closed axial contours, ``(n, 3)`` patient coordinates (mm) each.
    grid
        The case grid (axes = patient axes, HFS).
    slab_mm
        The thickness each contour plane stands for (the CT slice spacing).
    """
    mask = np.zeros(grid.shape, dtype=bool)
    found = planes(contours)
    if not found:
        return Raster(mask, clipped=False)
    plane_z = np.asarray([z for z, _ in found])
    zs = grid.axis_mm(2)
    half = slab_mm / 2.0
    used: set[int] = set()
    for k, z in enumerate(zs):
        near = int(np.argmin(np.abs(plane_z - z)))
        if plane_z[near] - half <= z < plane_z[near] + half:
            used.add(near)
            mask[:, :, k] = fill_plane(found[near][1], grid)
    z_lo, z_hi = zs[0] - grid.spacing_mm[2] / 2, zs[-1] + grid.spacing_mm[2] / 2
    clipped = bool(np.any((plane_z + half <= z_lo) | (plane_z - half >= z_hi)))
    clipped = clipped or any(_outside(found[i][1], grid) for i in used)
    return Raster(mask, clipped=clipped)
