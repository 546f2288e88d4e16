"""Radiological (water-equivalent) depth along divergent rays from a beam's source.

The density is resampled (trilinear) onto a fan-beam lattice: rays from the source through a
regular grid of isocenter-plane positions ``(a, b)``, sampled at regular distances ``dist`` along the
central axis. A cumulative sum along each ray (trapezoid rule, times the ray's path length per unit
of central-axis distance) gives the radiological depth at every lattice node, which is then
interpolated (trilinear) at the query points.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from mock_tps.beams import BeamGeometry
from mock_tps.grid import Grid

F32 = NDArray[np.float32]

#: Lattice nodes resampled per chunk (bounds the memory of the sampling coordinates).
_CHUNK_NODES = 1_000_000


def radiological_depth_mm(
    density: F32,
    grid: Grid,
    geometry: BeamGeometry,
    a_mm: F32,
    b_mm: F32,
    dist_mm: F32,
    start_dist_mm: float,
    step_mm: float,
    lateral_pitch_mm: float,
) -> F32:
    """Water-equivalent depth (mm) of points given in beam coordinates.

    See :func:`depth_and_density` for the parameters.
    """
    return depth_and_density(
        density, grid, geometry, a_mm, b_mm, dist_mm, start_dist_mm, step_mm, lateral_pitch_mm
    )[0]


def depth_and_density(
    density: F32,
    grid: Grid,
    geometry: BeamGeometry,
    a_mm: F32,
    b_mm: F32,
    dist_mm: F32,
    start_dist_mm: float,
    step_mm: float,
    lateral_pitch_mm: float,
    density_length_mm: float = 0.0,
    inside: F32 | None = None,
) -> tuple[F32, F32]:
    """Water-equivalent depth (mm) of points given in beam coordinates, and the mean density
    along the ray over the last ``density_length_mm`` of central-axis distance before each point
    (all ones when ``density_length_mm`` is 0). ``inside`` (1 in the body, 0 outside, on the
    grid) limits that mean to the part of the ray inside the body (no widening at the skin).

    Parameters
    ----------
    density
        Relative electron density on ``grid`` (zero outside the body: depth starts at the skin).
    grid, geometry
        The case grid and the beam.
    a_mm, b_mm, dist_mm
        Query points: isocenter-plane coordinates and central-axis distance from the source
        (as returned by :meth:`BeamGeometry.project`).
    start_dist_mm
        Central-axis distance where the rays start (upstream of every body voxel they cross).
    step_mm
        Sampling step along the rays, in central-axis distance.
    lateral_pitch_mm
        Pitch of the ray lattice in the isocenter plane.
    """
    n = a_mm.size
    if n == 0:
        return np.zeros(0, dtype=np.float32), np.ones(0, dtype=np.float32)
    sad = geometry.source_axis_distance_mm
    pitch = float(lateral_pitch_mm)
    a0 = float(a_mm.min()) - pitch
    b0 = float(b_mm.min()) - pitch
    na = math.ceil((float(a_mm.max()) - a0) / pitch) + 2
    nb = math.ceil((float(b_mm.max()) - b0) / pitch) + 2
    nd = math.ceil((float(dist_mm.max()) - start_dist_mm) / step_mm) + 2
    a_nodes = a0 + pitch * np.arange(na)
    b_nodes = b0 + pitch * np.arange(nb)
    d_nodes = start_dist_mm + step_mm * np.arange(nd)

    origin = np.asarray(grid.origin_mm, dtype=np.float64)
    spacing = np.asarray(grid.spacing_mm, dtype=np.float64)
    src_idx = (geometry.source_mm - origin) / spacing
    u_idx = geometry.u_axis / spacing / sad
    v_idx = geometry.v_axis / spacing / sad
    w_idx = geometry.w_axis / spacing

    depth = np.empty((na, nb, nd), dtype=np.float32)
    want_body = density_length_mm > 0.0 and inside is not None
    body = np.empty((na, nb, nd), dtype=np.float32) if want_body else depth
    rows_per_chunk = max(1, _CHUNK_NODES // (nb * nd))
    for start in range(0, na, rows_per_chunk):
        a_chunk = a_nodes[start : start + rows_per_chunk]
        # direction (in index units per mm of central-axis distance) of each ray: (ca, nb, 3)
        direction = (
            w_idx[None, None, :]
            + a_chunk[:, None, None] * u_idx[None, None, :]
            + b_nodes[None, :, None] * v_idx[None, None, :]
        )
        coords = np.empty((3, a_chunk.size, nb, nd), dtype=np.float32)
        for axis in range(3):
            coords[axis] = src_idx[axis] + direction[:, :, axis, None] * d_nodes[None, None, :]
        path = np.sqrt(1.0 + (a_chunk[:, None] ** 2 + b_nodes[None, :] ** 2) / (sad * sad)).astype(
            np.float32
        )
        for volume, out_lattice in (
            ((density, depth), (inside, body)) if want_body else ((density, depth),)
        ):
            assert volume is not None
            rho = ndimage.map_coordinates(
                volume, coords, order=1, mode="constant", cval=0.0, output=np.float32
            )
            cum = np.cumsum(rho, axis=2, dtype=np.float32)
            cum -= 0.5 * (rho + rho[:, :, :1])
            out_lattice[start : start + a_chunk.size] = cum * (
                path[:, :, None] * np.float32(step_mm)
            )
        del coords

    query = np.empty((3, n), dtype=np.float32)
    query[0] = (a_mm - a0) / pitch
    query[1] = (b_mm - b0) / pitch
    query[2] = (dist_mm - start_dist_mm) / step_mm
    out = ndimage.map_coordinates(depth, query, order=1, mode="nearest", output=np.float32)
    if density_length_mm <= 0.0:
        return np.asarray(out, dtype=np.float32), np.ones(n, dtype=np.float32)
    query[2] -= np.float32(density_length_mm / step_mm)
    before = ndimage.map_coordinates(depth, query, order=1, mode="nearest", output=np.float32)
    if want_body:
        query[2] += np.float32(density_length_mm / step_mm)
        span = ndimage.map_coordinates(body, query, order=1, mode="nearest", output=np.float32)
        query[2] -= np.float32(density_length_mm / step_mm)
        span -= ndimage.map_coordinates(body, query, order=1, mode="nearest", output=np.float32)
    else:
        path = np.sqrt(1.0 + (a_mm**2 + b_mm**2) / np.float32(sad * sad)).astype(np.float32)
        span = np.float32(density_length_mm) * path
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(span > 0.5, (out - before) / span, np.float32(1.0))
    return np.asarray(out, dtype=np.float32), np.asarray(rho, dtype=np.float32)
