"""Geometric primitives and mask operations of mock_tps.phantoms.shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from esapi_bridge.errors import InvalidInput
from mock_tps.grid import Grid
from mock_tps.phantoms.common import grid_from_bounds
from mock_tps.phantoms.shapes import (
    c_shape,
    capsule,
    centroid_mm,
    distance_mm,
    ellipsoid,
    elliptic_cylinder,
    expand,
    half_space,
    ring,
    rotation_matrix,
    shift_mask,
    shrink,
    spline,
    tube,
)


@pytest.fixture(scope="module")
def grid() -> Grid:
    return grid_from_bounds((-40.0, -40.0, -40.0), (40.0, 40.0, 40.0), 1.0)


def _centres(grid: Grid, mask: np.ndarray) -> np.ndarray:
    return grid.centres_mm(np.flatnonzero(mask))


def test_ellipsoid_volume_matches_the_analytic_one(grid: Grid) -> None:
    # Analytic 4/3 pi abc; a 1 mm grid voxelizes a 20x15x10 mm ellipsoid within 2 %.
    m = ellipsoid(grid, (3.0, -2.0, 1.0), (20.0, 15.0, 10.0))
    assert m.sum() * 1e-3 == pytest.approx(4 / 3 * math.pi * 20 * 15 * 10 * 1e-3, rel=0.02)
    assert centroid_mm(m, grid) == pytest.approx((3.0, -2.0, 1.0), abs=0.05)


def test_rotation_turns_the_long_axis(grid: Grid) -> None:
    # A 30 mm semi-axis along x, rotated 90 deg about z, lies along y.
    m = ellipsoid(grid, (0, 0, 0), (30.0, 5.0, 5.0), rotation_matrix(rz_deg=90.0))
    xs, ys, _ = _centres(grid, m).T
    assert np.ptp(ys) == pytest.approx(60.0, abs=2.0)
    assert np.ptp(xs) <= 10.0
    assert np.allclose(rotation_matrix(10, 20, 30) @ rotation_matrix(10, 20, 30).T, np.eye(3))


def test_capsule_and_tube_volumes(grid: Grid) -> None:
    # Capsule = cylinder pi r^2 L + sphere 4/3 pi r^3 (analytic), within 3 % at 1 mm.
    r, length = 6.0, 30.0
    m = capsule(grid, (0, 0, -15.0), (0, 0, 15.0), r)
    expected = math.pi * r**2 * length + 4 / 3 * math.pi * r**3
    assert m.sum() == pytest.approx(expected, rel=0.03)
    # A tube through collinear points is the same capsule.
    t = tube(grid, [(0, 0, -15.0), (0, 0, 0.0), (0, 0, 15.0)], r)
    assert np.array_equal(m, t)
    with pytest.raises(InvalidInput, match="points_mm"):
        tube(grid, [(0, 0, 0)], 3.0)


def test_spline_passes_through_its_control_points() -> None:
    ctrl = np.array([(0, 0, 0), (10, 5, 0), (20, 0, 5)], dtype=float)
    pts = spline(ctrl, 21)
    assert np.allclose(pts[0], ctrl[0]) and np.allclose(pts[10], ctrl[1])
    assert np.allclose(pts[-1], ctrl[-1])


def test_cylinder_and_c_shape(grid: Grid) -> None:
    cyl = elliptic_cylinder(grid, (0.0, 0.0), (20.0, 10.0), (-10.0, 10.0))
    # pi a b h = pi * 20 * 10 * 21 slices of 1 mm (voxel centres at -10..10 inclusive).
    assert cyl.sum() == pytest.approx(math.pi * 20 * 10 * 21, rel=0.02)
    c = c_shape(grid, (0.0, 0.0), (15.0, 15.0), (25.0, 25.0), (-5.0, 5.0), 90.0, 45.0)
    pts = _centres(grid, c)
    ang = np.degrees(np.arctan2(pts[:, 1], pts[:, 0]))
    assert not np.any(np.abs(ang - 90.0) < 44.0)  # the opening faces +y
    assert np.any(np.abs(ang + 90.0) < 5.0)  # the closed side faces -y
    r = np.hypot(pts[:, 0], pts[:, 1])
    assert r.min() > 15.0 and r.max() <= 25.0


def test_half_space_and_shift(grid: Grid) -> None:
    hs = half_space(grid, (0.0, 0.0, 5.0), (0.0, 0.0, 1.0))
    assert np.all(_centres(grid, hs)[:, 2] >= 5.0)
    m = ellipsoid(grid, (0, 0, 0), (5.0, 5.0, 5.0))
    moved = shift_mask(m, grid, (3.0, -2.0, 0.0))
    assert moved.sum() == m.sum()
    assert centroid_mm(moved, grid) == pytest.approx((3.0, -2.0, 0.0), abs=1e-9)


def test_margins_and_rings_match_brute_force_distances(grid: Grid) -> None:
    # Reference: exact nearest-neighbour distances between voxel centres (KD-tree).
    m = ellipsoid(grid, (0, 0, 0), (10.0, 7.0, 5.0), rotation_matrix(15, 0, 30))
    tree = cKDTree(_centres(grid, m))
    d_ref, _ = tree.query(grid.centres_mm(np.arange(grid.n_voxels)))
    d_ref = np.asarray(d_ref).reshape(grid.shape)
    d = distance_mm(m, grid, 12.0)
    near = d_ref <= 12.0
    assert np.allclose(d[near], d_ref[near], atol=1e-9)
    assert np.all(np.isinf(d[~near]))
    assert np.array_equal(expand(m, grid, 4.0), d_ref <= 4.0 + 1e-6)
    assert np.array_equal(ring(m, grid, 3.0, 9.0), (d_ref > 3.0) & (d_ref <= 9.0))
    # Shrinking is the dual of expanding the complement.
    assert np.array_equal(shrink(m, grid, 2.0), m & ~expand(~m, grid, 2.0))
    with pytest.raises(InvalidInput, match="inner_mm"):
        ring(m, grid, 5.0, 5.0)
    with pytest.raises(InvalidInput, match="margin_mm"):
        expand(m, grid, -1.0)


def test_shapes_outside_the_grid_are_empty(grid: Grid) -> None:
    assert not ellipsoid(grid, (500.0, 0, 0), (5.0, 5.0, 5.0)).any()
    assert not capsule(grid, (500.0, 0, 0), (600.0, 0, 0), 3.0).any()
    assert np.isinf(distance_mm(np.zeros(grid.shape, dtype=bool), grid, 5.0)).all()
