"""Deterministic row sampling of the dose-influence matrix for the fluence optimizer.

Every body row gets a random key from the seed; a structure's sample is its rows with
the smallest keys, so overlapping structures share rows and a smaller sample is a subset
of a larger one. Targets keep every row. Normal tissue (body outside the target) is
sampled in two strata, near the target and far from it, with weights that keep the
average unbiased. Non-target samples shrink together to meet a budget of non-zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from esapi_bridge.errors import EmptyStructure
from mock_tps.dose_influence import DoseInfluence

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: A structure with at least this share of its voxels inside the target keeps every voxel.
TARGET_OVERLAP_SHARE = 0.5


@dataclass(frozen=True)
class SamplingBudget:
    """How many rows the optimizer may use outside the targets."""

    max_rows_per_structure: int
    min_rows_per_structure: int
    max_nto_rows: int
    min_nto_rows: int
    max_sampled_nonzeros: int


@dataclass(frozen=True, eq=False)
class NtoStrata:
    """Normal-tissue rows with their distance to the target (``inf`` if not yet known)."""

    rows: IntArray
    distance_mm: FloatArray
    near: BoolArray
    ijk: NDArray[np.int64]
    target_points_mm: FloatArray
    spacing_mm: tuple[float, float, float]


@dataclass(frozen=True, eq=False)
class NtoSample:
    """Sampled normal-tissue rows, their distance to the target and averaging weights."""

    rows: IntArray
    distance_mm: FloatArray
    weights: FloatArray


def random_keys(n_rows: int, seed: int) -> FloatArray:
    """One uniform random key per matrix row (deterministic for a seed)."""
    return np.random.default_rng([seed, 0x5EED]).random(n_rows)


def take_lowest(rows: IntArray, keys: FloatArray, m: int) -> IntArray:
    """The ``m`` of ``rows`` with the smallest keys (all if ``m >= len(rows)``), sorted."""
    if m >= rows.size:
        return rows
    pick = np.argpartition(keys[rows], m)[:m]
    return np.sort(rows[pick])


def nto_strata(
    dij: DoseInfluence,
    target_mask: BoolArray,
    target_rows: IntArray,
    spacing_mm: tuple[float, float, float],
    near_mm: float,
) -> NtoStrata:
    """Body rows outside the target, split at ``near_mm`` from it.

    Distances are exact Euclidean distances (mm) between voxel centres and the nearest
    target voxel centre: from a distance transform on a box around the target (margin
    ``near_mm``); rows outside the box are far, their distance is found when sampled.
    """
    outside = np.ones(dij.voxel_indices.size, dtype=bool)
    outside[target_rows] = False
    rows = np.flatnonzero(outside)
    if rows.size == 0:
        raise EmptyStructure(
            "the normal tissue objective has no voxel: the whole body lies inside the target"
        )
    ijk = np.stack(np.unravel_index(dij.voxel_indices[rows], dij.grid_shape), axis=1)
    target_ijk = np.argwhere(target_mask)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    margin = np.ceil(near_mm / spacing).astype(np.int64) + 1
    lo = np.maximum(target_ijk.min(axis=0) - margin, 0)
    hi = np.minimum(target_ijk.max(axis=0) + margin + 1, np.asarray(dij.grid_shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    edt = ndimage.distance_transform_edt(~target_mask[box], sampling=spacing_mm)
    in_box = np.all((ijk >= lo) & (ijk < hi), axis=1)
    dist = np.full(rows.size, np.inf)
    local = ijk[in_box] - lo
    dist[in_box] = edt[local[:, 0], local[:, 1], local[:, 2]]
    return NtoStrata(
        rows,
        dist,
        dist <= near_mm,
        ijk,
        target_ijk * spacing,
        (spacing_mm[0], spacing_mm[1], spacing_mm[2]),
    )


def select_nto(strata: NtoStrata, keys: FloatArray, n_rows: int) -> NtoSample:
    """About half of ``n_rows`` near the target and half far (more where one is short)."""
    near, far = np.flatnonzero(strata.near), np.flatnonzero(~strata.near)
    n_near = min(near.size, max(n_rows // 2, n_rows - far.size))
    n_far = min(far.size, n_rows - n_near)
    own_keys = keys[strata.rows]
    picked, weights = [], []
    for stratum, m in ((near, n_near), (far, n_far)):
        if m > 0:
            picked.append(take_lowest(stratum, own_keys, m))
            weights.append(np.full(m, stratum.size / (strata.rows.size * m)))
    sel = np.concatenate(picked)
    order = np.argsort(sel)
    sel, w = sel[order], np.concatenate(weights)[order]
    dist = strata.distance_mm[sel].copy()
    unknown = ~np.isfinite(dist)
    if unknown.any():  # outside the box: nearest target voxel by a k-d tree
        tree = cKDTree(strata.target_points_mm)
        dist[unknown] = tree.query(strata.ijk[sel[unknown]] * np.asarray(strata.spacing_mm))[0]
    return NtoSample(strata.rows[sel], dist, w)


def sample_rows(
    rows: Mapping[str, IntArray],
    target_rows: IntArray,
    keys: FloatArray,
    nnz_per_row: NDArray[np.int64],
    budget: SamplingBudget,
    strata: NtoStrata | None,
) -> tuple[dict[str, IntArray], NtoSample | None]:
    """Sampled rows of every structure (targets whole) and of the normal tissue.

    Non-target samples shrink by a common factor (to their floors at least) when their
    non-zeros outside the target rows exceed ``budget.max_sampled_nonzeros``.
    """
    in_target = np.zeros(keys.size, dtype=bool)
    in_target[target_rows] = True
    whole = {sid: r for sid, r in rows.items() if in_target[r].mean() >= TARGET_OVERLAP_SHARE}
    fixed = np.unique(np.concatenate([target_rows, *whole.values()]))
    in_fixed = np.zeros(keys.size, dtype=bool)
    in_fixed[fixed] = True

    def sample(factor: float) -> tuple[dict[str, IntArray], NtoSample | None, int]:
        out = dict(whole)
        for sid, r in rows.items():
            if sid not in whole:
                m = min(r.size, budget.max_rows_per_structure)
                out[sid] = take_lowest(
                    r, keys, max(min(budget.min_rows_per_structure, m), math.ceil(factor * m))
                )
        nto = None
        if strata is not None:
            m = max(budget.min_nto_rows, math.ceil(factor * budget.max_nto_rows))
            nto = select_nto(strata, keys, min(m, budget.max_nto_rows))
        parts = [r for sid, r in out.items() if sid not in whole] + ([nto.rows] if nto else [])
        free = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        free = free[~in_fixed[free]]
        return out, nto, int(nnz_per_row[free].sum())

    sampled, nto, free_nnz = sample(1.0)
    if free_nnz > budget.max_sampled_nonzeros:
        sampled, nto, _ = sample(budget.max_sampled_nonzeros / free_nnz)
    return sampled, nto


def neighbour_pairs(dij: DoseInfluence) -> tuple[IntArray, IntArray]:
    """Pairs of beamlets of one beam that are neighbours in the beamlet grid."""
    ij = np.asarray(dij.beamlet_ij, dtype=np.int64)
    beam = np.asarray(dij.beamlet_beam, dtype=np.int64)
    if ij.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ij = ij - ij.min(axis=0)
    ni, nj = int(ij[:, 0].max()) + 2, int(ij[:, 1].max()) + 2
    code = (beam * ni + ij[:, 0]) * nj + ij[:, 1]
    order = np.argsort(code)
    sorted_code = code[order]
    firsts, seconds = [], []
    for step in (nj, 1):  # (i + 1, j) and (i, j + 1)
        pos = np.minimum(np.searchsorted(sorted_code, code + step), code.size - 1)
        hit = sorted_code[pos] == code + step
        firsts.append(np.flatnonzero(hit))
        seconds.append(order[pos[hit]])
    return np.concatenate(firsts), np.concatenate(seconds)
