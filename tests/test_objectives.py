"""Penalties and gradients of the optimizer's objective kinds (mock_tps.objectives)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    ObjectiveOperator,
    PointObjective,
)
from esapi_bridge.errors import InvalidInput, InvalidObjective
from mock_tps.objectives import (
    geud_and_gradient,
    geud_penalty,
    mean_dose_penalty,
    nto_allowed_dose_gy,
    nto_penalty,
    objective_penalty,
    point_penalty,
    voxels_allowed_above,
    voxels_required_above,
)

UP, LO, EX = ObjectiveOperator.UPPER, ObjectiveOperator.LOWER, ObjectiveOperator.EXACT
RX = 50.0
NTO = NormalTissueObjective(
    priority=80,
    distance_from_target_border_mm=10,
    start_dose_pct=105,
    end_dose_pct=60,
    fall_off=0.05,
)


def assert_gradient_matches_fd(
    fn: Callable[[np.ndarray], tuple[float, np.ndarray]], d: np.ndarray
) -> None:
    """Central differences (step 1e-5 Gy) against the analytic gradient.

    Tolerance: 1e-6 relative to the largest gradient component (float64; the penalties are
    piecewise quadratic, so the truncation error is ~1e-10; doses are kept away from kinks).
    """
    _, grad = fn(d)
    h = 1e-5
    fd = np.empty_like(d)
    for i in range(d.size):
        e = np.zeros_like(d)
        e[i] = h
        fd[i] = (fn(d + e)[0] - fn(d - e)[0]) / (2 * h)
    scale = max(float(np.abs(fd).max()), 1e-12)
    assert np.abs(grad).max() > 0.0, "gradient should not vanish in this check"
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-6 * scale)


@pytest.fixture
def doses() -> np.ndarray:
    # 40 distinct doses spread over 10..70 Gy (no ties, so the penalized set is locally fixed)
    rng = np.random.default_rng(7)
    return np.sort(rng.uniform(10.0, 70.0, 40)) + np.arange(40) * 1e-3


@pytest.mark.parametrize(
    ("op", "goal", "vol"),
    [(UP, 40.0, 20.0), (UP, 40.0, 0.0), (LO, 45.0, 90.0), (LO, 45.0, 100.0), (EX, 40.0, 50.0)],
)
def test_point_gradient_matches_finite_differences(
    doses: np.ndarray, op: ObjectiveOperator, goal: float, vol: float
) -> None:
    assert_gradient_matches_fd(lambda d: point_penalty(d, goal, vol, op, RX, priority=70.0), doses)


def test_mean_gradient_matches_finite_differences(doses: np.ndarray) -> None:
    assert_gradient_matches_fd(lambda d: mean_dose_penalty(d, 20.0, RX, priority=30.0), doses)


@pytest.mark.parametrize("a", [1.0, 2.5, 8.0, 40.0, 0.5, -10.0])
@pytest.mark.parametrize("op", [UP, LO, EX])
def test_geud_gradient_matches_finite_differences(
    doses: np.ndarray, a: float, op: ObjectiveOperator
) -> None:
    eud, _ = geud_and_gradient(doses, a, floor_gy=0.05)
    goal = eud - 3.0 if op is UP else eud + 3.0  # make the objective active
    assert_gradient_matches_fd(lambda d: geud_penalty(d, goal, a, op, RX, priority=50.0), doses)


def test_nto_gradient_matches_finite_differences(doses: np.ndarray) -> None:
    r = np.linspace(0.0, 80.0, doses.size)
    w = np.linspace(1.0, 2.0, doses.size)
    w /= w.sum()
    assert_gradient_matches_fd(lambda d: nto_penalty(d, r, NTO, RX, voxel_weights=w), doses)


def test_upper_point_hand_computed() -> None:
    # N = 5, V = 20 % -> 1 voxel may stay above 25 Gy: 50 is spared, 30 and 40 are penalized:
    # priority 2 * (5^2 + 15^2) / (5 * 50^2) = 0.04
    d = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    value, grad = point_penalty(d, 25.0, 20.0, UP, RX, priority=2.0)
    assert value == pytest.approx(0.04, rel=1e-12)
    np.testing.assert_allclose(grad, [0, 0, 2 * 2 * 5 / 12500, 2 * 2 * 15 / 12500, 0], rtol=1e-12)


def test_upper_point_at_zero_volume_penalizes_everything_above() -> None:
    d = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    value, grad = point_penalty(d, 25.0, 0.0, UP, RX, priority=1.0)
    assert value == pytest.approx((25 + 225 + 625) / 12500, rel=1e-12)  # hand-computed
    assert np.count_nonzero(grad) == 3


def test_lower_point_hand_computed() -> None:
    # V = 60 % of 5 voxels -> 3 must reach 35 Gy; 40 and 50 do, the hottest below (30) is
    # penalized: priority 3 * 5^2 / (5 * 50^2) = 0.006
    d = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    value, grad = point_penalty(d, 35.0, 60.0, LO, RX, priority=3.0)
    assert value == pytest.approx(0.006, rel=1e-12)
    np.testing.assert_allclose(grad, [0, 0, -2 * 3 * 5 / 12500, 0, 0], rtol=1e-12)
    # at 100 % every voxel below 35 Gy counts: (25^2 + 15^2 + 5^2) / 12500
    value_all, _ = point_penalty(d, 35.0, 100.0, LO, RX)
    assert value_all == pytest.approx((625 + 225 + 25) / 12500, rel=1e-12)


def test_exact_point_is_upper_plus_lower() -> None:
    d = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    up = point_penalty(d, 33.0, 50.0, UP, RX)
    lo = point_penalty(d, 33.0, 50.0, LO, RX)
    ex = point_penalty(d, 33.0, 50.0, EX, RX)
    assert ex[0] == pytest.approx(up[0] + lo[0], rel=1e-12)
    np.testing.assert_allclose(ex[1], up[1] + lo[1], rtol=1e-12)


def test_satisfied_point_objectives_cost_nothing() -> None:
    d = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    assert point_penalty(d, 45.0, 20.0, UP, RX)[0] == 0.0  # only 1 voxel (20 %) above 45
    assert point_penalty(d, 30.0, 60.0, LO, RX)[0] == 0.0  # 3 voxels (60 %) reach 30
    assert not np.any(point_penalty(d, 45.0, 20.0, UP, RX)[1])


def test_voxel_counts_round_towards_the_goal() -> None:
    assert voxels_allowed_above(7, 20.0) == 1  # floor(1.4)
    assert voxels_required_above(7, 20.0) == 2  # ceil(1.4)
    assert voxels_allowed_above(10, 30.0) == 3  # exact products are not rounded away
    assert voxels_required_above(10, 30.0) == 3


def test_mean_penalty_hand_computed() -> None:
    # mean 20 Gy, goal 15 Gy: priority 4 * (5 / 50)^2 = 0.04; gradient 2 * 4 * 5 / (2500 * 2)
    value, grad = mean_dose_penalty(np.array([10.0, 30.0]), 15.0, RX, priority=4.0)
    assert value == pytest.approx(0.04, rel=1e-12)
    np.testing.assert_allclose(grad, [0.008, 0.008], rtol=1e-12)
    assert mean_dose_penalty(np.array([10.0, 30.0]), 25.0, RX)[0] == 0.0


def test_geud_with_a_one_is_the_mean(doses: np.ndarray) -> None:
    eud, grad = geud_and_gradient(doses, 1.0)
    assert eud == pytest.approx(doses.mean(), rel=1e-12)  # analytic: gEUD(a=1) = mean
    np.testing.assert_allclose(grad, 1.0 / doses.size, rtol=1e-12)


def test_geud_limits_and_uniform_dose(doses: np.ndarray) -> None:
    # analytic: gEUD -> max for a -> +inf, -> min for a -> -inf; uniform dose for every a
    assert geud_and_gradient(doses, 100.0)[0] == pytest.approx(doses.max(), rel=0.05)
    assert geud_and_gradient(doses, -100.0, floor_gy=1e-6)[0] == pytest.approx(
        doses.min(), rel=0.05
    )
    for a in (-20.0, 0.5, 3.0, 60.0):
        assert geud_and_gradient(np.full(9, 42.0), a, floor_gy=1e-9)[0] == pytest.approx(
            42.0, rel=1e-6
        )


def test_geud_stays_finite_at_zero_dose_with_negative_a() -> None:
    d = np.array([0.0, 0.0, 30.0, 60.0])
    value, grad = geud_penalty(d, 40.0, -10.0, LO, RX, priority=100.0)
    assert math.isfinite(value) and value > 0.0
    assert np.all(np.isfinite(grad))
    assert grad[0] < 0.0  # raising a cold voxel lowers the penalty most
    with pytest.raises(InvalidInput, match="floor_gy"):
        geud_and_gradient(d, -10.0)


def test_geud_penalty_hand_computed() -> None:
    # a = 1: gEUD = mean = 30 Gy; upper goal 20 Gy: priority 10 * (10 / 50)^2 = 0.4
    d = np.array([20.0, 40.0])
    assert geud_penalty(d, 20.0, 1.0, UP, RX, priority=10.0)[0] == pytest.approx(0.4, rel=1e-12)
    assert geud_penalty(d, 20.0, 1.0, LO, RX, priority=10.0)[0] == 0.0
    assert geud_penalty(d, 35.0, 1.0, EX, RX, priority=10.0)[0] == pytest.approx(0.1, rel=1e-12)


def test_nto_allowed_dose_follows_the_formula() -> None:
    r = np.array([0.0, 5.0, 10.0, 30.0, 50.0, 1000.0])
    allowed = nto_allowed_dose_gy(r, NTO, RX)
    # Eclipse-style NTO: start % inside the border distance, then
    # end + (start - end) * exp(-fall_off * (r - distance)) (% of Rx); computed by hand here
    expected = [52.5, 52.5, 52.5, 30 + 22.5 * math.exp(-1.0), 30 + 22.5 * math.exp(-2.0), 30.0]
    np.testing.assert_allclose(allowed, expected, rtol=1e-12, atol=1e-12)


def test_nto_penalty_hand_computed() -> None:
    # allowed at 0 mm: 52.5 Gy; 60 Gy exceeds by 7.5 -> priority 80 * 7.5^2 / 2 / 50^2 = 0.9
    value, grad = nto_penalty(np.array([60.0, 40.0]), np.array([0.0, 0.0]), NTO, RX)
    assert value == pytest.approx(0.9, rel=1e-12)
    assert grad[1] == 0.0 and grad[0] == pytest.approx(2 * 80 * 7.5 / 2 / 2500, rel=1e-12)


def test_objective_penalty_dispatches_every_kind() -> None:
    d = np.array([10.0, 30.0, 50.0, 70.0])
    point = PointObjective(structure_id="A", operator=UP, dose_gy=40, volume_pct=0, priority=5)
    mean = MeanDoseObjective(structure_id="A", dose_gy=20, priority=5)
    eud = EudObjective(structure_id="A", operator=UP, dose_gy=20, parameter_a=4, priority=5)
    assert objective_penalty(point, d, RX)[0] == point_penalty(d, 40, 0, UP, RX, 5)[0]
    assert objective_penalty(mean, d, RX)[0] == mean_dose_penalty(d, 20, RX, 5)[0]
    assert objective_penalty(eud, d, RX)[0] == geud_penalty(d, 20, 4, UP, RX, 5)[0]
    r = np.zeros(4)
    assert objective_penalty(NTO, d, RX, distance_mm=r)[0] == nto_penalty(d, r, NTO, RX)[0]
    zero = point.model_copy(update={"priority": 0.0})
    assert objective_penalty(zero, d, RX)[0] == 0.0
    with pytest.raises(InvalidObjective, match="distance_mm"):
        objective_penalty(NTO, d, RX)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: point_penalty(np.array([]), 1.0, 5.0, UP, RX), "empty"),
        (lambda: point_penalty(np.ones(3), 1.0, 101.0, UP, RX), "volume_pct"),
        (lambda: mean_dose_penalty(np.ones(3), 1.0, 0.0), "prescription_gy"),
        (lambda: nto_penalty(np.ones(3), np.ones(2), NTO, RX), "distance_mm"),
        (lambda: geud_and_gradient(np.ones(3), 0.0), "parameter_a"),
    ],
)
def test_bad_input_is_rejected(call: Callable[[], object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()
