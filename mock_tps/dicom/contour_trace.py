"""Contours of a voxel mask traced along voxel edges, so that even-odd filling recovers it.

Each axial slice of a mask becomes closed polygons whose vertices are voxel corners: every
edge between a voxel inside and one outside is used exactly once, oriented with the inside
on its left, and the edges are linked into loops (outer boundaries counter-clockwise,
holes clockwise, each hole a contour of its own). Any point that is a voxel centre is then
inside an odd number of loops exactly when its voxel is in the mask, whatever the shape
(thin, one voxel wide, with holes or islands), so the structure keeps its volume through
a rasterizer that fills contours even-odd at voxel centres. Collinear corners are dropped.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mock_tps.grid import Grid

#: Outgoing-edge preference at a corner shared by two diagonal voxels: turn left first,
#: then straight, then right (keeps the two voxels' loops apart).
_TURNS = ((0, 1), (1, 0), (0, -1))  # (left, straight, right) as rotations of (dx, dy)

Corner = tuple[int, int]


def _edges(mask2d: NDArray[np.bool_]) -> list[tuple[Corner, Corner]]:
    """Boundary edges ``(start, end)`` between voxel corners, the inside on the left.

    Corner ``(i, j)`` is the lower-left corner of voxel ``(i, j)`` (at index ``i - 0.5,
    j - 0.5``); ``x`` is the first index, ``y`` the second.
    """
    m = np.pad(mask2d.astype(bool), 1)
    inside = m[1:-1, 1:-1]
    out: list[tuple[Corner, Corner]] = []
    # bottom (y-) neighbour outside: edge along +x
    for i, j in np.argwhere(inside & ~m[1:-1, :-2]):
        out.append(((int(i), int(j)), (int(i) + 1, int(j))))
    # right (x+) neighbour outside: edge along +y
    for i, j in np.argwhere(inside & ~m[2:, 1:-1]):
        out.append(((int(i) + 1, int(j)), (int(i) + 1, int(j) + 1)))
    # top (y+) neighbour outside: edge along -x
    for i, j in np.argwhere(inside & ~m[1:-1, 2:]):
        out.append(((int(i) + 1, int(j) + 1), (int(i), int(j) + 1)))
    # left (x-) neighbour outside: edge along -y
    for i, j in np.argwhere(inside & ~m[:-2, 1:-1]):
        out.append(((int(i), int(j) + 1), (int(i), int(j))))
    return out


def _turn(direction: Corner, turn: Corner) -> Corner:
    """``direction`` rotated: ``turn`` = (0, 1) left, (1, 0) straight, (0, -1) right."""
    dx, dy = direction
    c, s = turn
    return (c * dx - s * dy, s * dx + c * dy)


def trace_slice(mask2d: NDArray[np.bool_]) -> list[NDArray[np.int64]]:
    """Closed loops (each an ``(n, 2)`` array of corner indices, not repeating the first)
    of a 2D mask ``[ix, iy]``; an empty mask gives none."""
    outgoing: dict[Corner, list[Corner]] = {}
    for start, end in _edges(mask2d):
        outgoing.setdefault(start, []).append(end)
    loops: list[NDArray[np.int64]] = []
    while outgoing:
        first = next(iter(outgoing))
        points = [first]
        current = first
        direction: Corner | None = None
        while True:
            ends = outgoing[current]
            if direction is None or len(ends) == 1:
                nxt = ends[0]
            else:
                wanted = [
                    (current[0] + d[0], current[1] + d[1])
                    for d in (_turn(direction, t) for t in _TURNS)
                ]
                nxt = next(p for p in wanted if p in ends)
            ends.remove(nxt)
            if not ends:
                del outgoing[current]
            direction = (nxt[0] - current[0], nxt[1] - current[1])
            current = nxt
            if current == first:  # in- and out-degrees are equal: the walk closes here
                break
            points.append(current)
        loops.append(_drop_collinear(np.asarray(points, dtype=np.int64)))
    return loops


def _drop_collinear(points: NDArray[np.int64]) -> NDArray[np.int64]:
    """The corners where the loop turns."""
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    turns = np.any(before != after, axis=1)
    return points[turns]


def trace_mask(mask: NDArray[np.bool_], grid: Grid) -> list[tuple[int, NDArray[np.float64]]]:
    """Every axial slice's loops of a 3D mask ``[ix, iy, iz]`` in patient coordinates (mm).

    Returns ``(iz, points)`` pairs; ``points`` is ``(n, 3)``: ``x, y`` at voxel corners,
    ``z`` the slice's centre.
    """
    origin = np.asarray(grid.origin_mm)
    spacing = np.asarray(grid.spacing_mm)
    out: list[tuple[int, NDArray[np.float64]]] = []
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        z = origin[2] + spacing[2] * int(k)
        for loop in trace_slice(mask[:, :, int(k)]):
            xy = origin[:2] + (loop.astype(np.float64) - 0.5) * spacing[:2]
            pts = np.column_stack([xy, np.full(len(xy), z)])
            out.append((int(k), pts))
    return out


def fill_even_odd(loops: list[NDArray[np.int64]], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """The mask whose voxel centres lie inside an odd number of ``loops`` (corner indices):
    the inverse of :func:`trace_slice`, for tests and checks."""
    from matplotlib.path import Path as MplPath

    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    centres = np.column_stack([ii.ravel() + 0.5, jj.ravel() + 0.5])  # corner units
    out = np.zeros(shape[0] * shape[1], dtype=bool)
    for loop in loops:
        out ^= MplPath(loop.astype(np.float64)).contains_points(centres)
    return out.reshape(shape)
