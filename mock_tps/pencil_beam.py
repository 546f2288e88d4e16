"""Dose-influence entries of one beam: the primary (narrow) part of the kernel of
:mod:`mock_tps.kernel`; the broad parts are in :mod:`mock_tps.scatter`.

Steps: (1) pre-select the body voxels within reach of the beam's beamlets (bounding box, then a
distance transform of the beamlet region against an upper bound of each voxel's reach);
(2) radiological depth; (3) depth dose, inverse square and lateral sigma per voxel; (4) every
beamlet's maximum (over the voxels it is nearest to) bounds, per voxel and axis, the window of
beamlets whose entries can exceed the cutoff; (5) voxels grouped by window shape: separable lateral
factors (square aperture convolved with a Gaussian: difference of erf at the beamlet edges), the
window renormalized to the full kernel (partition of unity), entries below the cutoff fraction of
their beamlet's maximum dropped and their dose given back to the kept entries of the same voxel
(so that an open field keeps its dose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, special

from mock_tps.beams import BeamletGrid
from mock_tps.engine_params import EngineParams
from mock_tps.grid import Grid
from mock_tps.kernel import (
    horn,
    lateral_scale,
    normalization,
    primary_amplitude,
    primary_sigma_mm,
)
from mock_tps.radiological_depth import depth_and_density

F32 = NDArray[np.float32]
I32 = NDArray[np.int32]

_SQRT2 = math.sqrt(2.0)

#: Largest factor by which the entries of a voxel are scaled up to make up for dropped entries.
MAX_RENORMALIZATION = 1.5


@dataclass
class CaseArrays:
    """What every beam of a case needs, computed once per case."""

    grid: Grid
    xyz_mm: F32  # (3, n) body voxel centres
    density: F32  # on the grid, zero outside the body
    density_max: float
    min_spacing_mm: float
    inside: F32  # 1 in the body, 0 outside, on the grid
    lateral_scale_max: float  # the largest 1 / density the lateral spread may get


@dataclass
class BeamEntries:
    """Entries of one beam, voxel by voxel.

    ``rows[k]`` (body-row index) has ``counts[k]`` consecutive entries in ``cols``/``vals``,
    with beamlet columns (local to the beam; uint16 when they fit, to save memory) ascending;
    every row appears once.
    """

    rows: I32
    counts: I32
    cols: NDArray[np.integer]
    vals: F32

    @classmethod
    def empty(cls) -> BeamEntries:
        """No entry."""
        z = np.zeros(0, dtype=np.int32)
        return cls(z, z.copy(), z.copy(), np.zeros(0, dtype=np.float32))


def erf32(x: F32) -> F32:
    """erf of a float32 array (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7; 3x scipy's speed)."""
    ax = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.3275911) * ax)
    y = np.float32(1.061405429) * t
    for coef in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        y += np.float32(coef)
        y *= t
    ax *= ax
    np.negative(ax, out=ax)
    np.exp(ax, out=ax)
    y *= ax
    np.subtract(np.float32(1.0), y, out=y)
    return np.copysign(y, x, out=y)


def reach_mm(sigma_mm: NDArray[np.floating], size_mm: float, cutoff: float) -> NDArray[np.float64]:
    """Distance beyond a beamlet edge where its 1D profile falls to ``cutoff`` of its peak."""
    sig = np.maximum(np.asarray(sigma_mm, dtype=np.float64), 1e-3)
    peak = special.erf(size_mm / (2.0 * _SQRT2 * sig))
    frac = np.clip(2.0 * max(cutoff, 1e-7) * peak, 1e-12, 1.0)
    return np.asarray(_SQRT2 * sig * special.erfcinv(frac), dtype=np.float64)


def _reach_interp_mm(sigma_mm: F32, size_mm: float, cutoff: float) -> F32:
    """:func:`reach_mm` interpolated in a table (an over-estimate: reach is convex in sigma)."""
    lo, hi = float(sigma_mm.min()), float(sigma_mm.max())
    table_sigma = np.linspace(lo, max(hi, lo + 1e-3), 65)
    table_reach = reach_mm(table_sigma, size_mm, cutoff)
    return np.interp(sigma_mm, table_sigma, table_reach).astype(np.float32)


def _candidates(
    arrays: CaseArrays, grid_b: BeamletGrid, a: F32, b: F32, dist: F32, p: EngineParams
) -> tuple[NDArray[np.intp], float]:
    """Body rows that a beamlet can reach above the cutoff, and where the rays must start."""
    sad = grid_b.geometry.source_axis_distance_mm
    size = grid_b.beamlet_size_mm
    cutoff = p.dose_cutoff_fraction
    ij = grid_b.ij
    i_lo, j_lo = (int(v) for v in ij.min(axis=0))
    i_hi, j_hi = (int(v) for v in ij.max(axis=0))
    # generous bounding box: the deepest possible radiological depth, the nearest distance
    span = float(dist.max() - dist.min()) + 2.0 * arrays.min_spacing_mm
    scale = arrays.lateral_scale_max
    deep = arrays.density_max * span * 1.05
    sigma_big = float(
        primary_sigma_mm(p, np.array([deep]), np.array([float(dist.min())]), scale)[0]
    )
    reach_big = float(reach_mm(np.array([sigma_big]), size, cutoff)[0]) + size
    box = (
        (a >= (i_lo - 0.5) * size - reach_big)
        & (a <= (i_hi + 0.5) * size + reach_big)
        & (b >= (j_lo - 0.5) * size - reach_big)
        & (b <= (j_hi + 0.5) * size + reach_big)
    )
    idx = np.flatnonzero(box)
    a_c, b_c, d_c = a[idx], b[idx], dist[idx]
    start = float(d_c.min()) - arrays.min_spacing_mm
    # per voxel: radiological depth <= density_max * geometric path; compare the reach this allows
    # with the distance to the nearest beamlet (distance transform on a 1/5-beamlet raster)
    path_max = math.sqrt(1.0 + float(np.max(a_c**2 + b_c**2)) / sad**2)
    depth_up = (d_c - np.float32(start)) * np.float32(arrays.density_max * path_max)
    sigma_up = primary_sigma_mm(p, depth_up, d_c, scale).astype(np.float32)
    reach_up = _reach_interp_mm(sigma_up, size, cutoff)
    sub = 5
    pitch = size / sub
    pad = math.ceil(reach_big / pitch) + sub
    active = np.zeros((i_hi - i_lo + 1, j_hi - j_lo + 1), dtype=bool)
    active[ij[:, 0] - i_lo, ij[:, 1] - j_lo] = True
    raster = np.pad(np.repeat(np.repeat(active, sub, axis=0), sub, axis=1), pad)
    to_field = ndimage.distance_transform_edt(~raster) * pitch
    ri = ((a_c - ((i_lo - 0.5) * size - pad * pitch)) / pitch).astype(np.int64)
    rj = ((b_c - ((j_lo - 0.5) * size - pad * pitch)) / pitch).astype(np.int64)
    ri = np.clip(ri, 0, raster.shape[0] - 1)
    rj = np.clip(rj, 0, raster.shape[1] - 1)
    near = to_field[ri, rj] <= reach_up + 1.5 * pitch
    return idx[near], start


def _window(r: F32, q: F32, floor: F32, valid: NDArray[np.bool_], k_half: int) -> tuple[I32, I32]:
    """Offsets [lo, hi] (from the nearest beamlet) of the beamlets whose factor can reach
    ``floor`` along one axis (empty, hi = lo - 1, where not ``valid``).

    ``r``: position relative to the nearest beamlet centre, ``q``: beamlet size / (sqrt2 sigma),
    both in beamlet units. A beamlet whose near edge is ``x`` away gives at most
    ``erfc(x q) / 2``; the window holds every beamlet with ``erfc(x q) / 2 >= floor``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = special.erfcinv(np.clip(2.0 * floor, 1e-30, 2.0)).astype(np.float32) / q
    lo = np.ceil(r - reach - np.float32(0.5))
    hi = np.floor(r + reach + np.float32(0.5))
    lo = np.clip(np.nan_to_num(lo, nan=0.0), -k_half, 0).astype(np.int32)
    hi = np.clip(np.nan_to_num(hi, nan=0.0), 0, k_half).astype(np.int32)
    hi[~valid] = lo[~valid] - 1
    return lo, hi


def _edge_erf(r: F32, q: F32, lo: I32, n: int) -> F32:
    """erf at the n + 1 edges of beamlets lo .. lo + n - 1 (rows: voxels)."""
    # float32 throughout (int32 + float32 would promote to float64)
    edges = lo.astype(np.float32)[:, None] + (np.arange(n + 1, dtype=np.float32) - np.float32(0.5))
    return erf32((r[:, None] - edges) * q[:, None])


def beam_entries(
    arrays: CaseArrays, grid_b: BeamletGrid, a: F32, b: F32, dist: F32, p: EngineParams
) -> BeamEntries:
    """Dose-influence entries of one beam (Gy per unit beamlet weight).

    ``a``, ``b``, ``dist`` are the projections of every body voxel (:meth:`BeamGeometry.project`).
    """
    geom = grid_b.geometry
    sad = np.float32(geom.source_axis_distance_mm)
    size = grid_b.beamlet_size_mm
    cutoff = np.float32(p.dose_cutoff_fraction)
    ij = grid_b.ij
    idx, start = _candidates(arrays, grid_b, a, b, dist, p)
    if idx.size == 0:
        return BeamEntries.empty()
    a_c, b_c, d_c = a[idx], b[idx], dist[idx]

    step = p.ray_step_fraction * arrays.min_spacing_mm
    depth, rho = depth_and_density(
        arrays.density,
        arrays.grid,
        geom,
        a_c,
        b_c,
        d_c,
        start,
        step,
        step,
        p.density_length_mm,
        arrays.inside,
    )
    r2 = (a_c.astype(np.float64) ** 2 + b_c.astype(np.float64) ** 2) * 1e-4
    amp = primary_amplitude(p, depth, r2) * normalization(p)
    dd = (amp * (float(sad) / d_c.astype(np.float64)) ** 2).astype(np.float32)
    # isocenter-plane sigma; 1 / density widens the electron part (lung)
    sigma = primary_sigma_mm(p, depth, d_c, lateral_scale(p, rho)).astype(np.float32)
    q = (np.float32(size / _SQRT2) / sigma).astype(np.float32)
    reach_max = float(reach_mm(np.array([float(sigma.max())]), size, float(cutoff))[0])
    k_half = max(1, math.ceil(reach_max / size + 0.5))

    # nearest beamlet along u and v, position relative to it (beamlet units), its factor
    tu = a_c / np.float32(size)
    tv = b_c / np.float32(size)
    cu, cv = np.rint(tu).astype(np.int32), np.rint(tv).astype(np.int32)
    ru, rv = (tu - cu).astype(np.float32), (tv - cv).astype(np.float32)
    eu, ev = _edge_erf(ru, q, np.zeros_like(cu), 1), _edge_erf(rv, q, np.zeros_like(cv), 1)
    f0_u = np.float32(0.5) * (eu[:, 0] - eu[:, 1])
    f0_v = np.float32(0.5) * (ev[:, 0] - ev[:, 1])

    # beamlet lookup covering every window (-1 = no beamlet)
    i_lo = min(int(ij[:, 0].min()), int(cu.min()) - k_half)
    j_lo = min(int(ij[:, 1].min()), int(cv.min()) - k_half)
    shape = (
        max(int(ij[:, 0].max()), int(cu.max()) + k_half) - i_lo + 1,
        max(int(ij[:, 1].max()), int(cv.max()) + k_half) - j_lo + 1,
    )
    lut = np.full(shape, -1, dtype=np.int32)
    at_i, at_j = ij[:, 0] - i_lo, ij[:, 1] - j_lo
    lut[at_i, at_j] = np.arange(len(ij), dtype=np.int32)
    li, lj = cu - i_lo, cv - j_lo

    # each beamlet's maximum over the voxels it is the nearest beamlet of (the true maximum
    # within 0.2 %); the smallest over each voxel's window bounds the entries worth keeping
    near_col = lut[li, lj]
    has = near_col >= 0
    col_max = np.zeros(len(ij), dtype=np.float32)
    np.maximum.at(col_max, near_col[has], (dd * f0_u * f0_v)[has])
    grid_max = np.full(shape, np.inf, dtype=np.float32)
    grid_max[at_i, at_j] = col_max
    low = ndimage.minimum_filter(grid_max, size=2 * k_half + 1, mode="constant", cval=np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        base = cutoff * low[li, lj] / dd
        floor_u, floor_v = base / f0_v, base / f0_u
    valid = np.isfinite(base) & (f0_u >= floor_u) & (f0_v >= floor_v)
    lo_u, hi_u = _window(ru, q, floor_u, valid, k_half)
    lo_v, hi_v = _window(rv, q, floor_v, valid, k_half)

    threshold = np.append(cutoff * col_max, np.float32(np.inf))  # index -1 -> inf
    nu, nv = hi_u - lo_u + 1, hi_v - lo_v + 1
    key = (nu * (2 * k_half + 2) + nv).astype(np.int32)
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    lut_flat = lut.ravel()
    n_lut_cols = np.int32(shape[1])
    parts: list[tuple[I32, I32, I32, F32]] = []
    for g in np.split(order, bounds):
        gu, gv = int(nu[g[0]]), int(nv[g[0]])
        if gu <= 0 or gv <= 0:
            continue
        e_u = _edge_erf(ru[g], q[g], lo_u[g], gu)
        e_v = _edge_erf(rv[g], q[g], lo_v[g], gv)
        # kernel truncated to the window, renormalized (the full sum is 1: partition of unity)
        inside = np.float32(0.25) * (e_u[:, 0] - e_u[:, -1]) * (e_v[:, 0] - e_v[:, -1])
        with np.errstate(divide="ignore"):
            renorm = np.minimum(np.float32(1.0) / inside, np.float32(MAX_RENORMALIZATION))
        f_u = (e_u[:, :-1] - e_u[:, 1:]) * (np.float32(0.25) * dd[g] * renorm)[:, None]
        f_v = e_v[:, :-1] - e_v[:, 1:]
        row_i = (li[g][:, None] + lo_u[g][:, None] + np.arange(gu, dtype=np.int32)) * n_lut_cols
        col_j = lj[g][:, None] + lo_v[g][:, None] + np.arange(gv, dtype=np.int32)
        where = np.asarray(row_i[:, :, None] + col_j[:, None, :], dtype=np.int32)
        col = np.take(lut_flat, where).reshape(g.size, gu * gv)
        val = (f_u[:, :, None] * f_v[:, None, :]).reshape(g.size, gu * gv)
        total = np.where(col >= 0, val, np.float32(0.0)).sum(axis=1)
        ok = val >= threshold[col]
        kept = np.where(ok, val, np.float32(0.0)).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(kept > 0, total / kept, np.float32(1.0))
        val *= np.minimum(scale, np.float32(MAX_RENORMALIZATION)).astype(np.float32)[:, None]
        counts = ok.sum(axis=1).astype(np.int32)
        parts.append((idx[g].astype(np.int32), counts, col[ok], val[ok]))
    if not parts:
        return BeamEntries.empty()
    col_dtype = np.uint16 if len(ij) <= np.iinfo(np.uint16).max else np.int32
    cols = np.concatenate([x[2].astype(col_dtype) for x in parts])
    vals = np.concatenate([x[3] for x in parts])
    centres = grid_b.centres_mm
    vals *= horn(p, centres[:, 0], centres[:, 1]).astype(np.float32)[cols]  # the beam's horns
    return BeamEntries(
        rows=np.concatenate([x[0] for x in parts]),
        counts=np.concatenate([x[1] for x in parts]),
        cols=cols,
        vals=vals,
    )
