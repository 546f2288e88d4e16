"""Tests of beam geometry (IEC 61217 angles, projection) and beamlet selection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.typing import NDArray
from water_phantoms import grid_covering, water_case

from esapi_bridge.dto import Technique
from esapi_bridge.errors import InvalidInput
from mock_tps.beams import beam_geometry, beamlet_grid, rotation_matrix
from mock_tps.case import Beam, BeamSet, Case

ISO = (10.0, -20.0, 30.0)


def _source_direction(gantry: float, couch: float) -> NDArray[np.float64]:
    bs = BeamSet(Technique.IMRT, (Beam(gantry, couch),), ISO)
    g = beam_geometry(bs, 0)
    return np.asarray((g.source_mm - np.asarray(ISO)) / bs.source_axis_distance_mm)


@pytest.mark.parametrize(
    ("gantry", "couch", "expected"),
    [
        (0.0, 0.0, (0.0, -1.0, 0.0)),  # source anterior
        (90.0, 0.0, (1.0, 0.0, 0.0)),  # source at the patient's left (+x)
        (180.0, 0.0, (0.0, 1.0, 0.0)),  # source posterior
        (270.0, 0.0, (-1.0, 0.0, 0.0)),  # source at the patient's right
        (90.0, 90.0, (0.0, 0.0, -1.0)),  # couch 90: rotated about the vertical axis
        (0.0, 90.0, (0.0, -1.0, 0.0)),  # couch rotation leaves a vertical beam vertical
    ],
)
def test_source_position_follows_iec_61217(
    gantry: float, couch: float, expected: tuple[float, float, float]
) -> None:
    # exact directions from the rotation R_couch(c) R_gantry(g) (0, -1, 0); 1e-12 tolerance
    np.testing.assert_allclose(_source_direction(gantry, couch), expected, atol=1e-12)


def test_axes_are_orthonormal_and_beam_points_at_isocenter() -> None:
    for gantry, couch in itertools.product((0.0, 37.0, 200.0), (0.0, -45.0, 80.0)):
        bs = BeamSet(Technique.IMRT, (Beam(gantry, couch),), ISO)
        g = beam_geometry(bs, 0)
        m = np.stack([g.u_axis, g.v_axis, g.w_axis])
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(g.source_mm + 1000.0 * g.w_axis, ISO, atol=1e-9)
        np.testing.assert_allclose(rotation_matrix(gantry, couch) @ [0.0, 1.0, 0.0], g.w_axis)


def test_divergent_projection() -> None:
    bs = BeamSet(Technique.IMRT, (Beam(30.0, 10.0),), ISO)
    g = beam_geometry(bs, 0)
    iso = np.asarray(ISO)
    pts = np.stack(
        [
            iso,
            iso + 10.0 * g.u_axis,
            iso + 500.0 * g.w_axis + 30.0 * g.v_axis,  # 1.5 x SAD from the source
            iso - 500.0 * g.w_axis - 8.0 * g.u_axis,  # 0.5 x SAD from the source
        ]
    )
    a, b, dist = g.project(pts)
    # hand-computed: (a, b) = SAD / dist * lateral offset
    np.testing.assert_allclose(dist, [1000.0, 1000.0, 1500.0, 500.0], atol=1e-3)
    np.testing.assert_allclose(a, [0.0, 10.0, 0.0, -16.0], atol=1e-3)
    np.testing.assert_allclose(b, [0.0, 0.0, 20.0, 0.0], atol=1e-3)


def test_point_behind_the_source_is_rejected() -> None:
    bs = BeamSet(Technique.IMRT, (Beam(0.0),), (0.0, 0.0, 0.0))
    g = beam_geometry(bs, 0)
    with pytest.raises(InvalidInput, match="beam 0"):
        g.project(np.array([[0.0, -1200.0, 0.0]]))
    with pytest.raises(InvalidInput, match="beam_index"):
        beam_geometry(bs, 3)


def _cube_case(margin_mm: float, gantry: float = 0.0, couch: float = 0.0) -> Case:
    grid = grid_covering(((-62.5, 62.5), (-62.5, 62.5), (-62.5, 62.5)), (5.0, 5.0, 5.0))
    return water_case(
        grid,
        body=((-62.5, 62.5), (-62.5, 62.5), (-62.5, 62.5)),
        target=((-12.5, 12.5), (-12.5, 12.5), (-12.5, 12.5)),  # centres -10..10 mm
        beams=(Beam(gantry, couch),),
        margin_mm=margin_mm,
    )


@pytest.mark.parametrize(("margin_mm", "n_side"), [(0.0, 5), (5.0, 7)])
def test_beamlets_cover_the_target_projection_plus_margin(margin_mm: float, n_side: int) -> None:
    # target voxel centres at x, z in -10..10 project to |a| <= 10 * 1000/990 = 10.1 mm: beamlets
    # -2..2 (5 mm, centred on multiples of 5 mm) hold them; a 5 mm margin adds one ring (the
    # corner beamlets are 3.4 mm from the corner points). Hand-counted: 5 x 5 and 7 x 7.
    grid_b = beamlet_grid(_cube_case(margin_mm), 0)
    ij = grid_b.ij
    half = n_side // 2
    assert grid_b.n_beamlets == n_side * n_side
    assert ij.min() == -half and ij.max() == half
    np.testing.assert_allclose(grid_b.centres_mm, ij * 5.0)


def test_beamlet_selection_matches_brute_force() -> None:
    case = _cube_case(7.0, gantry=40.0, couch=20.0)
    grid_b = beamlet_grid(case, 0)
    g = grid_b.geometry
    a, b, _ = g.project(case.grid.centres_mm(np.flatnonzero(case.target_mask)))
    size, margin = 5.0, 7.0
    expected = set()
    for i, j in itertools.product(range(-12, 13), repeat=2):
        dx = np.maximum(np.abs(a - i * size) - size / 2, 0.0)
        dy = np.maximum(np.abs(b - j * size) - size / 2, 0.0)
        if np.any(np.hypot(dx, dy) <= margin + 1e-4):
            expected.add((i, j))
    assert {(int(i), int(j)) for i, j in grid_b.ij} == expected


def test_beamlets_outside_the_body_are_left_out() -> None:
    # target half outside a thin body slab seen from the side: only the rows over the body stay
    grid = grid_covering(((-40.0, 40.0), (-40.0, 40.0), (-40.0, 40.0)), (5.0, 5.0, 5.0))
    case = water_case(
        grid,
        body=((-40.0, 40.0), (-40.0, 40.0), (-40.0, 0.0)),  # z <= 0 only
        target=((-10.0, 10.0), (-10.0, 10.0), (-20.0, 20.0)),
    )
    grid_b = beamlet_grid(case, 0)
    # v (beamlet j) is +z at gantry 0. Body voxel centres reach z = -2.5 mm, which projects
    # into beamlet j = 0 (|v| <= 2.5 mm); j = 1 (2.5..7.5 mm) is beyond the 2.5 mm probe radius.
    # The target reaches z = -17.5 mm, -18.2 mm once projected from y = -37.5: j = -4.
    assert grid_b.ij[:, 1].max() == 0
    assert grid_b.ij[:, 1].min() == -4
    assert grid_b.ij[:, 0].min() == -2 and grid_b.ij[:, 0].max() == 2
