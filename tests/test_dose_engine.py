"""Tests of the 6 MV pencil-beam dose engine on water boxes."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from water_phantoms import grid_covering, water_case

from esapi_bridge.errors import InvalidInput
from mock_tps.case import Beam, Case
from mock_tps.dose_engine import EngineParams, compute_dose_influence
from mock_tps.dose_influence import DoseInfluence

SAD_MM = 1000.0

# BJR Supplement 25 (1996), "Central axis depth dose data for use in radiotherapy", 6 MV x-rays,
# 10 x 10 cm2 field, SSD 100 cm: percentage depth dose (normalized at dmax = 1.5 cm) at
# 5, 10, 15, 20, 25 and 30 cm depth. The values were entered from memory of the published
# table, not copied from the printed supplement: check them there before trusting the decimal
# (they agree with the usual 6 MV figures: %dd(10) = 67 %, %dd(20) = 39 %).
BJR25_6MV_PDD = {50.0: 86.7, 100.0: 67.5, 150.0: 51.6, 200.0: 38.9, 250.0: 29.3, 300.0: 22.1}


def _field_case() -> Case:
    """10 x 10 cm field (20 x 20 beamlets of 5 mm, edges at +-50 mm) on water at SSD 100 cm.

    Voxel centres lie on multiples of 5 mm in x and z (x = 0, z = 0 is the field centre); the
    isocenter (2.5, 0, 2.5) is on the water surface y = 0 and on a beamlet corner.
    """
    grid = grid_covering(((-112.5, 112.5), (0.0, 330.0), (-112.5, 112.5)), (5.0, 5.0, 5.0))
    return water_case(
        grid,
        body=((-200.0, 200.0), (0.0, 400.0), (-200.0, 200.0)),
        target=((-50.0, 50.0), (0.0, 5.0), (-50.0, 50.0)),
        isocenter_mm=(2.5, 0.0, 2.5),
    )


def _open_field_dose(dij: DoseInfluence) -> NDArray[np.float32]:
    return dij.dose_grid(np.ones(dij.n_beamlets, dtype=np.float32))


def _peak(depth_mm: NDArray[np.float64], dose: NDArray[np.float64]) -> tuple[float, float]:
    """Depth and value of the maximum (parabola through the highest sample and its neighbours)."""
    k = int(np.argmax(dose))
    y0, y1, y2 = dose[k - 1], dose[k], dose[k + 1]
    h = depth_mm[1] - depth_mm[0]
    shift = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return float(depth_mm[k] + shift * h), float(y1 - 0.25 * (y0 - y2) * shift)


@pytest.fixture(scope="module")
def field_dij() -> tuple[Case, DoseInfluence]:
    case = _field_case()
    return case, compute_dose_influence(case)


def test_field_has_the_beamlets_of_a_10x10_field(field_dij: tuple[Case, DoseInfluence]) -> None:
    case, dij = field_dij
    assert dij.n_beamlets == 400
    i, j = dij.beamlet_ij[:, 0], dij.beamlet_ij[:, 1]
    assert (i.min(), i.max(), j.min(), j.max()) == (-10, 9, -10, 9)
    assert dij.matrix.shape == (int(case.body_mask.sum()), 400)


def test_central_axis_depth_dose_matches_bjr25(field_dij: tuple[Case, DoseInfluence]) -> None:
    case, dij = field_dij
    dose = _open_field_dose(dij)
    depth = case.grid.axis_mm(1)  # water surface at y = 0
    ix = int(np.argmin(np.abs(case.grid.axis_mm(0))))
    iz = int(np.argmin(np.abs(case.grid.axis_mm(2))))
    cax = dose[ix, :, iz].astype(np.float64)
    dmax_mm, dose_max = _peak(depth, cax)
    # dmax of 6 MV: 15 mm (BJR 25); tolerance +-5 mm
    assert 10.0 <= dmax_mm <= 20.0
    # calibration: 1 Gy per unit weight at dmax at the isocenter distance, so (1000/1015)^2 at
    # SSD 100 cm; 1 % tolerance
    assert dose_max == pytest.approx((SAD_MM / (SAD_MM + 15.0)) ** 2, rel=0.01)
    for depth_mm, pdd_ref in BJR25_6MV_PDD.items():
        pdd = 100.0 * float(np.interp(depth_mm, depth, cax)) / dose_max
        # 2 % of the local value beyond dmax
        assert pdd == pytest.approx(pdd_ref, rel=0.02), f"PDD at {depth_mm} mm"


def test_entries_below_cutoff_are_dropped(field_dij: tuple[Case, DoseInfluence]) -> None:
    _, dij = field_dij
    m = dij.matrix.tocsc()
    col_max = np.maximum.reduceat(m.data, m.indptr[:-1])
    col_min = np.minimum.reduceat(m.data, m.indptr[:-1])
    assert np.all(np.diff(m.indptr) > 0)
    # dropped below 1e-3 of the beamlet maximum (kept entries may be scaled up by <= 1.5x
    # when dose of dropped neighbours is given back, and the maximum is estimated within 0.2 %)
    assert np.all(col_min >= 0.99e-3 * col_max)
    assert np.all(col_min < 3e-3 * col_max)


def test_matrix_layout(field_dij: tuple[Case, DoseInfluence]) -> None:
    case, dij = field_dij
    m = dij.matrix
    assert m.format == "csr" and m.dtype == np.float32
    assert m.indices.dtype == np.int32 and m.indptr.dtype == np.int32
    assert m.has_sorted_indices
    np.testing.assert_array_equal(dij.voxel_indices, np.flatnonzero(case.body_mask))
    assert dij.grid_shape == case.grid.shape
    assert np.all(m.data > 0)


def test_penumbra_80_20_at_10_cm_depth() -> None:
    grid = grid_covering(((-81.0, 81.0), (0.0, 125.0), (-82.5, 82.5)), (2.0, 5.0, 5.0))
    case = water_case(
        grid,
        body=((-100.0, 100.0), (0.0, 200.0), (-100.0, 100.0)),
        target=((-50.0, 50.0), (0.0, 5.0), (-50.0, 50.0)),
    )
    dose = _open_field_dose(compute_dose_influence(case))
    iy = int(np.argmin(np.abs(grid.axis_mm(1) - 102.5)))  # 10.25 cm depth
    iz = int(np.argmin(np.abs(grid.axis_mm(2))))
    x = grid.axis_mm(0)
    profile = dose[:, iy, iz] / dose[int(np.argmin(np.abs(x))), iy, iz]
    edge = x >= 30.0  # the falling edge on the +x side (field edge at 52.5 mm * 1.1)
    xs, ps = x[edge][::-1], profile[edge][::-1]  # dose increasing, as np.interp needs
    assert np.all(np.diff(ps) >= 0)
    width = float(np.interp(0.2, ps, xs) - np.interp(0.8, ps, xs))
    # measured 6 MV 80-20 % penumbra at 10 cm depth: 3.7 mm for MLC edges (J Appl Clin Med Phys
    # 12(3):142, 2011, table 2) to about 6-7 mm for jaw-defined 10 x 10 cm fields; the model
    # gives 1.68 sigma = 5.1 mm. Accepted range 3.5-7 mm.
    assert 3.5 <= width <= 7.0


def test_inverse_square_with_the_phantom_moved_away() -> None:
    grid = grid_covering(((-82.5, 82.5), (0.0, 360.0), (-82.5, 82.5)), (5.0, 5.0, 5.0))
    target = ((-50.0, 50.0), (0.0, 5.0), (-50.0, 50.0))
    near = water_case(grid, body=((-90.0, 90.0), (0.0, 150.0), (-90.0, 90.0)), target=target)
    far = water_case(grid, body=((-90.0, 90.0), (200.0, 350.0), (-90.0, 90.0)), target=target)
    dij_near, dij_far = compute_dose_influence(near), compute_dose_influence(far)
    assert dij_near.n_beamlets == dij_far.n_beamlets  # the same field
    ix = iz = int(np.argmin(np.abs(grid.axis_mm(0))))
    iy_near = int(np.argmin(np.abs(grid.axis_mm(1) - 102.5)))
    iy_far = int(np.argmin(np.abs(grid.axis_mm(1) - 302.5)))
    d_near = _open_field_dose(dij_near)[ix, iy_near, iz]
    d_far = _open_field_dose(dij_far)[ix, iy_far, iz]
    # same depth (102.5 mm), SSD 100 vs 120 cm: analytic inverse-square ratio, 1 % tolerance
    expected = ((SAD_MM + 102.5) / (SAD_MM + 200.0 + 102.5)) ** 2
    assert d_far / d_near == pytest.approx(expected, rel=0.01)


def test_low_density_slab_increases_dose_behind_it() -> None:
    def with_slab(
        x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return np.where((y > 50.0) & (y < 100.0), 0.25, 1.0) + 0.0 * x * z

    grid = grid_covering(((-82.5, 82.5), (0.0, 200.0), (-82.5, 82.5)), (5.0, 5.0, 5.0))
    body = ((-90.0, 90.0), (0.0, 200.0), (-90.0, 90.0))
    target = ((-50.0, 50.0), (0.0, 5.0), (-50.0, 50.0))
    water = _open_field_dose(compute_dose_influence(water_case(grid, body, target)))
    lung = _open_field_dose(
        compute_dose_influence(water_case(grid, body, target, density=with_slab))
    )
    ix = iz = int(np.argmin(np.abs(grid.axis_mm(0))))
    iy = int(np.argmin(np.abs(grid.axis_mm(1) - 152.5)))
    ratio = float(lung[ix, iy, iz] / water[ix, iy, iz])
    # the slab saves 50 mm * (1 - 0.25) = 37.5 mm of water: the ratio is the depth-dose ratio
    # T(152.5 - 37.5) / T(152.5) (same inverse square and lateral factors); 1 % tolerance
    p = EngineParams()
    expected = float(p.depth_dose(152.5 - 37.5) / p.depth_dose(152.5))
    assert ratio > 1.1
    assert ratio == pytest.approx(expected, rel=0.01)
    # in front of the slab nothing changes
    iy_front = int(np.argmin(np.abs(grid.axis_mm(1) - 32.5)))
    assert lung[ix, iy_front, iz] == pytest.approx(water[ix, iy_front, iz], rel=1e-4)


def test_lateral_and_non_coplanar_beams_enter_where_iec_says() -> None:
    grid = grid_covering(((-62.5, 62.5), (-62.5, 62.5), (-100.0, 100.0)), (5.0, 5.0, 5.0))
    case = water_case(
        grid,
        body=((-70.0, 70.0), (-70.0, 70.0), (-110.0, 110.0)),
        target=((-10.0, 10.0), (-10.0, 10.0), (-10.0, 10.0)),
        beams=(Beam(90.0), Beam(90.0, couch_deg=90.0)),
        margin_mm=5.0,
    )
    dij = compute_dose_influence(case)
    centre = [int(np.argmin(np.abs(grid.axis_mm(a)))) for a in range(3)]
    for beam, axis, entrance_mm, sign in ((0, 0, 62.5, -1.0), (1, 2, -100.0, 1.0)):
        dose = dij.dose_grid((dij.beamlet_beam == beam).astype(np.float32))
        index: list[int | slice] = list(centre)
        index[axis] = slice(None)
        line = dose[tuple(index)].astype(np.float64)
        depth = sign * (grid.axis_mm(axis) - entrance_mm)
        order = np.argsort(depth)
        dmax_mm, _ = _peak(depth[order], line[order])
        # gantry 90: source at +x (patient left); couch 90 + gantry 90: source at -z
        assert 10.0 <= dmax_mm <= 20.0, f"beam {beam}"
        deeper = line[order][depth[order] > 30.0]
        assert np.all(np.diff(deeper) < 0)


def test_a_beam_missing_the_body_raises_naming_it() -> None:
    grid = grid_covering(((-120.0, 80.0), (-60.0, 60.0), (-40.0, 40.0)), (10.0, 10.0, 10.0))
    case = water_case(
        grid,
        body=((-100.0, -50.0), (-50.0, 50.0), (-30.0, 30.0)),
        target=((40.0, 60.0), (-10.0, 10.0), (-10.0, 10.0)),
        beams=(Beam(90.0), Beam(0.0)),
        isocenter_mm=(50.0, 0.0, 0.0),
    )
    with pytest.raises(InvalidInput, match=r"beam 1 \(gantry 0 deg, couch 0 deg\)"):
        compute_dose_influence(case)


def test_columns_follow_the_beams_in_order() -> None:
    grid = grid_covering(((-80.0, 80.0), (-80.0, 80.0), (-40.0, 40.0)), (5.0, 5.0, 5.0))
    case = water_case(
        grid,
        body=((-75.0, 75.0), (-75.0, 75.0), (-40.0, 40.0)),
        target=((-15.0, 15.0), (-15.0, 15.0), (-15.0, 15.0)),
        beams=(Beam(0.0), Beam(90.0), Beam(180.0), Beam(270.0)),
        margin_mm=5.0,
    )
    dij = compute_dose_influence(case)
    assert np.all(np.diff(dij.beamlet_beam) >= 0)
    assert set(dij.beamlet_beam.tolist()) == {0, 1, 2, 3}
    for k in range(4):
        ij = dij.beamlet_ij[dij.beamlet_beam == k]
        keys = ij[:, 0].astype(np.int64) * 10_000 + ij[:, 1]
        assert np.all(np.diff(keys) > 0)  # sorted by i then j, no duplicate
    # a cube in a square box seen from four sides: the same beamlets and the same total dose
    # (symmetry; 0.1 % tolerance for float32 sums)
    counts = np.bincount(dij.beamlet_beam)
    assert np.all(counts == counts[0])
    totals = [float(dij.matrix[:, dij.beamlet_beam == k].sum()) for k in range(4)]
    assert max(totals) / min(totals) == pytest.approx(1.0, abs=1e-3)


def test_engine_params_validation() -> None:
    with pytest.raises(InvalidInput, match="sigma_at_surface_mm"):
        EngineParams(sigma_at_surface_mm=-1.0)
    with pytest.raises(InvalidInput, match="dose_cutoff_fraction"):
        EngineParams(dose_cutoff_fraction=float("nan"))
    p = EngineParams()
    # depth dose normalized to 1 at its maximum; sigma grows with depth
    d = np.linspace(0.0, 300.0, 3001)
    assert float(p.depth_dose(d).max()) == pytest.approx(1.0, abs=1e-5)
    assert float(p.sigma_mm(100.0)) > float(p.sigma_mm(0.0))
    assert "sigma_at_surface_mm=1.6" in repr(p)


def test_negative_density_is_rejected() -> None:
    grid = grid_covering(((-40.0, 40.0), (-40.0, 40.0), (-40.0, 40.0)), (10.0, 10.0, 10.0))
    case = water_case(
        grid,
        body=((-40.0, 40.0), (-40.0, 40.0), (-40.0, 40.0)),
        target=((-10.0, 10.0), (-10.0, 10.0), (-10.0, 10.0)),
        density=lambda x, y, z: -1.0 + 0.0 * x,
    )
    with pytest.raises(InvalidInput, match="density"):
        compute_dose_influence(case)
