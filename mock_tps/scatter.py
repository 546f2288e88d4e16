"""The broad part of the kernel (phantom scatter, head scatter, contamination) on a coarse grid.

The broad components of :mod:`mock_tps.kernel` are 13 mm wide or more (sigma in the isocenter
plane; the narrowest Gaussian of the far scatter, 0.06 lambda = 5-10 mm and a tenth of it, is
smoothed by the grid), so their dose is smooth: it is computed at the nodes of a coarse grid
(about ``broad_grid_mm``, an integer multiple of the dose grid) for every broad column, and
interpolated (trilinear) to the dose voxels. The operator is ``B = I @ V @ G``:

- ``G`` maps beamlets to broad columns: a column is a square of ``f x f`` beamlets
  (``f = round(broad_column_mm / beamlet size)``, at least 1), the beamlet's weight spread over
  it (its broad dose moves by at most ``(f - 1) / 2`` beamlets: 2.5 mm for 5 mm beamlets, against
  widths of 13 mm and more; ``bench/broad_columns.py`` measures what it does to DVHs), and
  control points of an arc within ``arc_group_deg`` of each other share the columns of their
  middle control point (the scatter of a beamlet moves by less than ``r * angle / 2`` at ``r``
  from the isocenter); their weights are summed;
- ``V`` (nodes x columns, dense float32, allocated once) the broad dose of each column at each
  node inside the body (radiological depth along the node's ray, the column's horn);
- ``I`` (voxels x nodes, CSR, at most 8 entries per row) trilinear weights over the corner nodes
  that lie inside the body, renormalized (voxels with none use the nearest node inside).

Cost of a product: ``nodes x columns`` multiply-adds plus 8 per voxel, whatever the tail length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy import ndimage

from mock_tps.beams import BeamGeometry, BeamletGrid
from mock_tps.engine_params import EngineParams
from mock_tps.grid import Grid
from mock_tps.kernel import (
    N_BROAD,
    box_factor,
    broad_components,
    horn,
    normalization,
)
from mock_tps.radiological_depth import radiological_depth_mm

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class CoarseGrid:
    """Nodes of the coarse grid inside the body and the interpolation to the body voxels."""

    factor: tuple[int, int, int]
    node_ijk: NDArray[np.int64]  # (n, 3) fine-grid indices of the nodes inside the body
    node_mm: NDArray[np.float32]  # (3, n) their centres
    interp: sp.csr_matrix  # (body voxels, nodes)


def coarse_grid(grid: Grid, body: NDArray[np.bool_], p: EngineParams) -> CoarseGrid:
    """Nodes every ``factor`` voxels over the body's bounding box and the interpolation matrix."""
    factor = tuple(max(1, round(p.broad_grid_mm / s)) for s in grid.spacing_mm)
    f = np.asarray(factor, dtype=np.int64)
    body_ijk = np.argwhere(body)
    lo = body_ijk.min(axis=0)
    hi = body_ijk.max(axis=0)
    n_nodes = (hi - lo) // f + 2  # the last node lies at or beyond hi
    node_fine = [lo[a] + f[a] * np.arange(n_nodes[a]) for a in range(3)]
    shape = np.asarray(grid.shape)
    sub = [np.minimum(node_fine[a], shape[a] - 1) for a in range(3)]
    in_grid = [node_fine[a] < shape[a] for a in range(3)]
    active = body[np.ix_(sub[0], sub[1], sub[2])]
    active &= in_grid[0][:, None, None] & in_grid[1][None, :, None] & in_grid[2][None, None, :]
    node_id = np.full(active.shape, -1, dtype=np.int64)
    node_id[active] = np.arange(int(active.sum()))
    coarse = np.argwhere(active)
    node_ijk = lo + coarse * f
    # corners and trilinear weights of every body voxel
    t = (body_ijk - lo) / f
    base = np.minimum(np.floor(t).astype(np.int64), n_nodes - 2)
    frac = t - base
    rows, cols, vals = [], [], []
    n_vox = body_ijk.shape[0]
    vox = np.arange(n_vox)
    total = np.zeros(n_vox)
    for corner in range(8):
        off = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = base + off
        w = np.prod(np.where(off == 1, frac, 1.0 - frac), axis=1)
        nid = node_id[idx[:, 0], idx[:, 1], idx[:, 2]]
        ok = (nid >= 0) & (w > 0.0)
        rows.append(vox[ok])
        cols.append(nid[ok])
        vals.append(w[ok])
        total += np.bincount(vox[ok], weights=w[ok], minlength=n_vox)
    lonely = np.flatnonzero(total <= 1e-9)
    if lonely.size:  # no corner inside the body: nearest node inside
        _, nearest = ndimage.distance_transform_edt(~active, return_indices=True)
        c = np.rint(t[lonely]).astype(np.int64)
        c = np.clip(c, 0, n_nodes - 1)
        near = nearest[:, c[:, 0], c[:, 1], c[:, 2]].T
        rows.append(lonely)
        cols.append(node_id[near[:, 0], near[:, 1], near[:, 2]])
        vals.append(np.ones(lonely.size))
        total[lonely] = 1.0
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    v = v / total[r]
    interp = sp.csr_matrix(
        (v.astype(np.float32), (r, c)), shape=(n_vox, int(active.sum())), dtype=np.float32
    )
    interp.sum_duplicates()
    centres = grid.centres_mm(
        np.ravel_multi_index(tuple(np.minimum(node_ijk, shape - 1).T), grid.shape)
    )
    # nodes beyond the grid edge are never active, so the clipped centres are the true ones
    return CoarseGrid(
        factor=(int(f[0]), int(f[1]), int(f[2])),
        node_ijk=node_ijk,
        node_mm=np.ascontiguousarray(centres.T, dtype=np.float32),
        interp=interp,
    )


def beam_groups(
    gantry_deg: Sequence[float], couch_deg: Sequence[float], span_deg: float
) -> list[list[int]]:
    """Consecutive beams of one arc (same couch, gantry steps <= ``span_deg``) within ``span_deg``
    of the group's first (0: every beam alone)."""
    groups: list[list[int]] = []
    for k in range(len(gantry_deg)):
        if groups and span_deg > 0.0:
            g = groups[-1]
            prev = g[-1]
            step = abs((gantry_deg[k] - gantry_deg[prev] + 180.0) % 360.0 - 180.0)
            span = abs((gantry_deg[k] - gantry_deg[g[0]] + 180.0) % 360.0 - 180.0)
            if couch_deg[k] == couch_deg[prev] and step <= span_deg and span <= span_deg:
                g.append(k)
                continue
        groups.append([k])
    return groups


def node_depths(
    nodes_mm: F32, density: F32, grid: Grid, geometry: BeamGeometry, p: EngineParams
) -> tuple[F32, F32, F32, F32]:
    """Projection (a, b, dist) and radiological depth of the nodes in one beam."""
    min_spacing = float(min(grid.spacing_mm))
    a, b, dist = geometry.project_columns(nodes_mm)
    step = p.ray_step_fraction * min_spacing
    start = float(dist.min()) - min_spacing
    pitch = max(min_spacing, 0.5 * p.broad_grid_mm)
    depth = radiological_depth_mm(density, grid, geometry, a, b, dist, start, step, pitch)
    return a, b, dist, depth


def column_factor(beamlet_mm: float, p: EngineParams) -> int:
    """Beamlets per broad column along each axis: ``round(broad_column_mm / beamlet_mm)``, >= 1."""
    return max(1, round(p.broad_column_mm / beamlet_mm))


def broad_block(
    a: F32,
    b: F32,
    dist: F32,
    depth: F32,
    sad_mm: float,
    blocks: NDArray[np.int32],
    beamlet_mm: float,
    factor: int,
    p: EngineParams,
) -> F32:
    """Broad dose (Gy per unit weight of one beamlet) of the broad columns ``blocks`` at points
    (a, b, dist, depth): (n, m).

    Column ``(m, n)`` is the square of ``factor x factor`` beamlets ``i // factor = m``,
    ``j // factor = n``; a beamlet's weight on it is spread over that square (hence the
    ``1 / factor^2``), which moves its broad dose by at most ``(factor - 1) / 2`` beamlets.
    """
    amp, su, sv, soft = broad_components(p, depth, dist)
    soft *= 1e-4
    amp *= normalization(p) * (sad_mm / dist.astype(np.float64)) ** 2 / factor**2
    iu, inv_u = np.unique(blocks[:, 0], return_inverse=True)
    jv, inv_v = np.unique(blocks[:, 1], return_inverse=True)
    pitch = factor * beamlet_mm
    shift = 0.5 * (factor - 1) * beamlet_mm
    cu, cv = iu * pitch + shift, jv * pitch + shift
    half = 0.5 * pitch
    out = np.zeros((a.size, blocks.shape[0]), dtype=np.float32)
    for c in range(N_BROAD):
        fu = box_factor(a[:, None] - cu[None, :], half, su[c][:, None])
        fv = box_factor(b[:, None] - cv[None, :], half, sv[c][:, None])
        fu *= amp[c][:, None] * np.exp(-soft[c][:, None] * (cu**2)[None, :])
        fv *= np.exp(-soft[c][:, None] * (cv**2)[None, :])
        out += (fu[:, inv_u] * fv[:, inv_v]).astype(np.float32)
    out *= horn(p, cu[inv_u], cv[inv_v]).astype(np.float32)[None, :]
    return out


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def _group_columns(
    grids: Sequence[BeamletGrid], groups: list[list[int]], factor: int
) -> tuple[list[NDArray[np.int32]], NDArray[np.int32]]:
    """The broad columns (beamlet squares, see :func:`broad_block`) of every group and the broad
    column of every beamlet."""
    offsets = np.cumsum([0] + [g.n_beamlets for g in grids])
    column_of = np.empty(int(offsets[-1]), dtype=np.int32)
    group_blocks: list[NDArray[np.int32]] = []
    n_cols = 0
    for members in groups:
        blocks = np.unique(np.concatenate([grids[k].ij // factor for k in members]), axis=0)
        code = {(int(i), int(j)): n for n, (i, j) in enumerate(blocks)}
        for k in members:
            ids = [code[(int(i), int(j))] for i, j in grids[k].ij // factor]
            column_of[offsets[k] : offsets[k + 1]] = n_cols + np.asarray(ids, dtype=np.int32)
        group_blocks.append(blocks.astype(np.int32))
        n_cols += blocks.shape[0]
    return group_blocks, column_of


def broad_operator(
    coarse: CoarseGrid,
    density: F32,
    grid: Grid,
    grids: Sequence[BeamletGrid],
    p: EngineParams,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[F32, NDArray[np.int32]]:
    """``V`` (nodes x broad columns) and the broad column of every beamlet (``G``).

    ``V`` is allocated once and filled group by group (no copy); ``progress(done, total)`` is
    called after each group of control points.
    """
    groups = beam_groups(
        [g.geometry.gantry_deg for g in grids],
        [g.geometry.couch_deg for g in grids],
        p.arc_group_deg,
    )
    sizes = {g.beamlet_size_mm for g in grids}
    if len(sizes) > 1:
        raise ValueError(f"beams of one beam set must share the beamlet size, got {sorted(sizes)}")
    factor = column_factor(grids[0].beamlet_size_mm, p) if grids else 1
    group_ij, column_of = _group_columns(grids, groups, factor)
    n_nodes = int(coarse.node_mm.shape[1])
    values = np.empty((n_nodes, sum(ij.shape[0] for ij in group_ij)), dtype=np.float32)
    c0 = 0
    for n, (members, ij_all) in enumerate(zip(groups, group_ij, strict=True)):
        ref = grids[members[len(members) // 2]]
        a, b, dist, depth = node_depths(coarse.node_mm, density, grid, ref.geometry, p)
        sad = ref.geometry.source_axis_distance_mm
        c1 = c0 + ij_all.shape[0]
        per = max(1, 2_000_000 // max(1, ij_all.shape[0]))
        for sl in _chunks(a.size, per):
            values[sl, c0:c1] = broad_block(
                a[sl], b[sl], dist[sl], depth[sl], sad, ij_all, ref.beamlet_size_mm, factor, p
            )
        c0 = c1
        if progress is not None:
            progress(n + 1, len(groups))
    return values, column_of
