"""Tests of beam geometry (IEC 61217 angles, projection) and beamlet selection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.typing import NDArray
from water_phantoms import grid_covering, water_case

from esapi_bridge.dto import Technique
from esapi_bridge.errors import InvalidInput
from mock_tps.beams import (
    HD120,
    MILLENNIUM_120,
    BeamletGrid,
    MlcModel,
    beam_geometry,
    beamlet_grid,
    rotation_matrix,
)
from mock_tps.case import Beam, BeamSet, Case
from mock_tps.phantoms import make_case

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


@pytest.mark.parametrize("mlc", [HD120, MILLENNIUM_120], ids=lambda m: m.name)
def test_mlc_models_have_60_leaf_pairs(mlc: MlcModel) -> None:
    # Varian data: HD120 32 x 2.5 mm + 28 x 5 mm (22 cm); Millennium 120 40 x 5 mm + 20 x 10 mm
    central = 2.0 * mlc.central_half_width_mm / mlc.central_leaf_width_mm
    outer = 2.0 * (mlc.half_field_mm - mlc.central_half_width_mm) / mlc.outer_leaf_width_mm
    assert (central, outer) == ((32.0, 28.0) if mlc is HD120 else (40.0, 20.0))


def test_hd120_leaf_width_across_the_bank() -> None:
    v = np.array([0.0, -39.9, 40.1, -109.0, 111.0])
    np.testing.assert_array_equal(HD120.leaf_width_mm(v)[:4], [2.5, 2.5, 5.0, 5.0])
    assert np.isnan(HD120.leaf_width_mm(v)[4])  # beyond the 22 cm bank


def _column_of_beamlets(size_mm: float, n: int) -> BeamletGrid:
    geometry = beam_geometry(BeamSet(Technique.IMRT, (Beam(0.0),), ISO), 0)
    ij = np.stack([np.zeros(n), np.arange(n)], axis=1).astype(np.int32)
    return BeamletGrid(geometry=geometry, beamlet_size_mm=size_mm, ij=ij)


def test_coarse_leaf_share_counts_beamlets_finer_than_their_leaf() -> None:
    column = _column_of_beamlets(2.5, 21)  # v = 0, 2.5, ..., 50 mm
    assert HD120.coarse_leaf_share(column) == pytest.approx(4 / 21)  # 42.5, 45, 47.5, 50
    assert MILLENNIUM_120.coarse_leaf_share(column) == 1.0  # 5 mm leaves everywhere
    assert MILLENNIUM_120.coarse_leaf_share(_column_of_beamlets(5.0, 21)) == 0.0


def test_hd120_beamlets_fit_a_small_target_closer() -> None:
    # 10 x 10 mm target (voxel centres -4.375..4.375 at 1.25 mm, projected |a|, |b| <= 4.42 mm),
    # no margin: 2.5 mm beamlets -2..2 (5 x 5, 156 mm2), 5 mm beamlets -1..1 (3 x 3, 225 mm2)
    grid = grid_covering(((-30.0, 30.0),) * 3, (1.25, 1.25, 1.25))
    areas = {}
    for size in (2.5, 5.0):
        case = water_case(grid, ((-30.0, 30.0),) * 3, ((-5.0, 5.0),) * 3, beamlet_mm=size)
        grid_b = beamlet_grid(case, 0)
        areas[size] = grid_b.n_beamlets * size**2
        assert HD120.coarse_leaf_share(grid_b) == 0.0
    assert areas == {2.5: 25 * 6.25, 5.0: 9 * 25.0}


def test_brain_srs_beamlets_and_the_hd120_fine_bank() -> None:
    # seed 0: one metastasis at the isocenter, inside the 2.5 mm leaves of every field; seed 2:
    # three metastases, some beamlets lie where an HD120 has 5 mm leaves (the documented limit)
    shares = {}
    for seed in (0, 2):
        case = make_case("brain-srs", seed, spacing_mm=2.0)
        grids = [beamlet_grid(case, k) for k in range(len(case.beams.beams))]
        assert {g.beamlet_size_mm for g in grids} == {2.5}
        shares[seed] = [HD120.coarse_leaf_share(g) for g in grids]
    assert max(shares[0]) == 0.0
    assert 0.0 < max(shares[2]) < 0.5
