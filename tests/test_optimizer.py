"""Fluence optimizer of the simulated TPS on small, hand-made dose-influence matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import ndimage

from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
    objective_key,
)
from esapi_bridge.errors import EmptyStructure, InvalidInput, InvalidObjective, UnknownStructure
from mock_tps.dose_influence import DoseInfluence
from mock_tps.optimizer import (
    FluenceProblem,
    OptimizerSettings,
    build_problem,
    delivery_measures,
    evaluate_fluence,
    optimize_fluence,
)

UP, LO = ObjectiveOperator.UPPER, ObjectiveOperator.LOWER
#: Settings that run to (near) convergence, for comparisons with analytic optima.
CONVERGE = OptimizerSettings(max_iterations=2000, tolerance=0.0, gtol=1e-12)


def identity_dij(n: int) -> DoseInfluence:
    """Beamlet k gives 1 Gy per unit weight to voxel k only (grid n x 1 x 1): dose = weights."""
    ij = np.stack([np.zeros(n), np.arange(n)], axis=1).astype(np.int32)
    matrix = sp.identity(n, dtype=np.float32, format="csr")
    return DoseInfluence(matrix, np.arange(n, dtype=np.int64), (n, 1, 1), np.zeros(n, np.int32), ij)


def point(
    sid: str, op: ObjectiveOperator, dose: float, vol: float, prio: float = 100.0
) -> PointObjective:
    return PointObjective(
        structure_id=sid, operator=op, dose_gy=dose, volume_pct=vol, priority=prio
    )


def line_problem(
    n: int, objectives: list[Objective], rx: float = 60.0, **kw: object
) -> FluenceProblem:
    """Identity problem where every structure (PTV, OAR) covers all n voxels."""
    mask = np.ones((n, 1, 1), dtype=bool)
    return build_problem(
        identity_dij(n),
        {"PTV": mask, "OAR": mask},
        mask,
        objectives,
        rx,
        (3.0, 3.0, 3.0),
        **kw,  # type: ignore[arg-type]
    )


GRID = (16, 16, 8)
SPACING = (3.0, 3.0, 2.5)


@pytest.fixture(scope="module")
def phantom() -> tuple[DoseInfluence, dict[str, np.ndarray], np.ndarray]:
    """A 16 x 16 x 8 box: body = everything but a corner, a cubic target, an OAR beside it.

    Two beams of 4 x 5 beamlets; each beamlet doses a random 15 % of the body voxels,
    more strongly in the target (a crude stand-in for a dose engine).
    """
    rng = np.random.default_rng(3)
    body = np.ones(GRID, dtype=bool)
    body[:2, :2, :] = False
    target = np.zeros(GRID, dtype=bool)
    target[6:10, 6:10, 2:6] = True
    oar = np.zeros(GRID, dtype=bool)
    oar[10:14, 6:10, 1:7] = True
    rows = np.flatnonzero(body)
    n_beamlets = 40
    dense = (rng.random((rows.size, n_beamlets)) < 0.15) * rng.uniform(
        0.2, 1.0, (rows.size, n_beamlets)
    )
    dense[target.ravel()[rows]] += rng.uniform(0.5, 1.5, (int(target.sum()), n_beamlets))
    ij = np.array([(i, j) for _ in range(2) for i in range(4) for j in range(5)], dtype=np.int32)
    dij = DoseInfluence(
        sp.csr_matrix(dense.astype(np.float32)),
        rows.astype(np.int64),
        GRID,
        np.repeat(np.arange(2), 20).astype(np.int32),
        ij,
    )
    masks = {"BODY": body, "PTV": target, "OAR": oar, "EMPTY": np.zeros(GRID, dtype=bool)}
    return dij, masks, target


def phantom_objectives() -> list[Objective]:
    return [
        point("PTV", LO, 60.0, 95.0, 150.0),
        point("PTV", UP, 64.0, 2.0, 100.0),
        point("OAR", UP, 30.0, 20.0, 80.0),
        MeanDoseObjective(structure_id="OAR", dose_gy=20.0, priority=40.0),
        EudObjective(
            structure_id="BODY", operator=UP, dose_gy=15.0, parameter_a=2.0, priority=10.0
        ),
        NormalTissueObjective(
            priority=60,
            distance_from_target_border_mm=3,
            start_dose_pct=100,
            end_dose_pct=40,
            fall_off=0.1,
        ),
    ]


def build(phantom: tuple, objectives: list[Objective], **kw: object) -> FluenceProblem:
    dij, masks, target = phantom
    return build_problem(dij, masks, target, objectives, 60.0, SPACING, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ analytic optima


def test_competing_point_objectives_reach_the_analytic_optimum() -> None:
    # PTV lower (60 Gy, 100 %) vs OAR upper (20 Gy, 20 %) on the same 50 voxels, equal priorities:
    # 10 voxels (20 %) are spared by the upper objective and reach 60 Gy; the other 40 settle
    # midway, at 40 Gy (minimum of (60 - d)^2 + (d - 20)^2). Tolerance 0.05 Gy.
    problem = line_problem(50, [point("PTV", LO, 60.0, 100.0), point("OAR", UP, 20.0, 20.0)])
    result = optimize_fluence(problem, settings=CONVERGE)
    d = np.sort(result.weights)
    np.testing.assert_allclose(d[:40], 40.0, atol=0.05)
    np.testing.assert_allclose(d[40:], 60.0, atol=0.05)
    # hand-computed value: each objective 100 * 40 * (20 / 60)^2 / 50
    assert result.total_value == pytest.approx(2 * 100 * 40 * (1 / 9) / 50, rel=1e-3)


@pytest.mark.parametrize(("volume_pct", "n_above"), [(20.0, 20), (0.0, 0)])
def test_upper_point_objective_dvh_semantics(volume_pct: float, n_above: int) -> None:
    # From doses 35..60 Gy (all above 30): (30 Gy, 20 %) lowers only the coolest 80 % to <= 30 Gy
    # and leaves the hottest 20 % untouched; (30 Gy, 0 %) brings every voxel down to <= 30 Gy
    # (any dose below the goal is optimal: no penalty there).
    problem = line_problem(100, [point("OAR", UP, 30.0, volume_pct)])
    x0 = np.linspace(35.0, 60.0, 100)
    result = optimize_fluence(problem, x0=x0, settings=CONVERGE)
    assert int(np.sum(result.weights > 30.01)) == n_above
    assert np.all(result.weights <= np.maximum(x0, 30.0) + 1e-6)
    assert np.all(result.weights[np.argsort(x0)[: 100 - n_above]] <= 30.01)
    np.testing.assert_allclose(result.weights[np.argsort(x0)[100 - n_above :]], x0[100 - n_above :])


@pytest.mark.parametrize(("p_lower", "p_mean"), [(100.0, 100.0), (100.0, 300.0), (300.0, 100.0)])
def test_priorities_trade_off_as_expected(p_lower: float, p_mean: float) -> None:
    # Lower (60 Gy, 100 %) vs upper mean 30 Gy on the same voxels: by symmetry and convexity the
    # optimum is uniform, d = (60 p_lower + 30 p_mean) / (p_lower + p_mean) (analytic). 0.05 Gy.
    objectives: list[Objective] = [
        point("PTV", LO, 60.0, 100.0, p_lower),
        MeanDoseObjective(structure_id="OAR", dose_gy=30.0, priority=p_mean),
    ]
    result = optimize_fluence(line_problem(20, objectives), settings=CONVERGE)
    expected = (60.0 * p_lower + 30.0 * p_mean) / (p_lower + p_mean)
    np.testing.assert_allclose(result.weights, expected, atol=0.05)


def test_geud_with_a_one_acts_as_the_mean() -> None:
    # gEUD(a = 1) is the mean, so the optimum matches the mean objective's: 45 Gy (analytic)
    objectives: list[Objective] = [
        point("PTV", LO, 60.0, 100.0),
        EudObjective(
            structure_id="OAR", operator=UP, dose_gy=30.0, parameter_a=1.0, priority=100.0
        ),
    ]
    result = optimize_fluence(line_problem(20, objectives), settings=CONVERGE)
    np.testing.assert_allclose(result.weights, 45.0, atol=0.05)


# ------------------------------------------------------------------ gradients and warm start


def test_total_gradient_matches_finite_differences(phantom: tuple) -> None:
    # float32 dose: central differences with a 1e-3 relative step; tolerance 2 % of the largest
    # component (float32 rounding of the dose, ~1e-7 relative, dominates the difference quotient).
    problem = build(phantom, phantom_objectives())
    rng = np.random.default_rng(0)
    w = problem.weight_scale * rng.uniform(0.5, 1.5, problem.n_beamlets)
    value, grad = evaluate_fluence(problem, w, smoothness_weight=0.5)
    assert value > 0.0
    h = 1e-3 * problem.weight_scale
    fd = np.array(
        [
            (
                evaluate_fluence(problem, w + h * np.eye(w.size)[k], 0.5)[0]
                - evaluate_fluence(problem, w - h * np.eye(w.size)[k], 0.5)[0]
            )
            / (2 * h)
            for k in range(w.size)
        ]
    )
    np.testing.assert_allclose(grad, fd, rtol=0, atol=0.02 * np.abs(fd).max())


def test_warm_start_converges_in_fewer_iterations_than_cold(phantom: tuple) -> None:
    settings = OptimizerSettings(tolerance=1e-3, max_iterations=500)
    objectives = phantom_objectives()
    first = optimize_fluence(build(phantom, objectives, settings=settings))
    changed = list(objectives)
    changed[2] = point("OAR", UP, 30.0, 20.0, 96.0)  # priority + 20 %
    problem = build(phantom, objectives, settings=settings).with_objectives(changed)
    warm = optimize_fluence(problem, x0=first.weights)
    cold = optimize_fluence(problem)
    assert warm.iterations < cold.iterations
    assert warm.total_value <= cold.total_value * 1.05  # as good, within 5 %


def test_result_reports_values_by_objective_and_structure(phantom: tuple) -> None:
    objectives = phantom_objectives()
    result = optimize_fluence(build(phantom, objectives), max_iterations=30)
    assert result.success
    assert 1 <= result.iterations <= 30
    assert set(result.objective_values) == {objective_key(o) for o in objectives}
    assert set(result.structure_values) == {"PTV", "OAR", "BODY", "NTO"}
    assert result.structure_values["OAR"] == pytest.approx(
        result.objective_values["OAR:point:upper:20"] + result.objective_values["OAR:mean:upper"]
    )
    assert result.total_value == pytest.approx(sum(result.objective_values.values()))
    assert result.total_objective_value == result.total_value
    assert np.all(result.weights >= 0.0) and result.weights.shape == (40,)
    assert result.wall_time_s > 0.0 and result.message


def test_work_limit_caps_iterations(phantom: tuple) -> None:
    problem = build(phantom, phantom_objectives())
    nnz = problem.matrix.nnz
    settings = OptimizerSettings(max_work_nonzeros=max(1e6, 2 * nnz * 3), tolerance=0.0)
    result = optimize_fluence(problem, settings=settings)
    assert result.iterations == max(1, int(settings.max_work_nonzeros // (2 * nnz)))
    assert "work limit" in result.message


# ------------------------------------------------------------------ delivery measures, smoothness


def test_open_fields_have_unit_mu_proxy_and_no_modulation(phantom: tuple) -> None:
    # uniform weights are open fields: MU proxy 1 and modulation 0 by definition (analytic)
    problem = build(phantom, phantom_objectives())
    mu, modulation = delivery_measures(problem, np.full(problem.n_beamlets, 2.0))
    assert mu == pytest.approx(1.0, rel=1e-6)
    assert modulation == 0.0
    # beamlet (0, 2) of beam 0 doubled: that leaf pair needs 1 + 1 = 2 units, the other rows and
    # beam 1 need 1 -> 3 units, against 2 c for open fields of the same mean target dose, where
    # c = mean target dose of w / that of unit weights (hand-derived)
    w = np.ones(problem.n_beamlets)
    w[2] = 2.0
    mu_peak, modulation_peak = delivery_measures(problem, w)
    a_t = problem.matrix[problem.target_rows]
    c = float((a_t @ w).mean() / (a_t @ np.ones_like(w)).mean())
    assert mu_peak == pytest.approx(3.0 / (2.0 * c), rel=1e-5)
    # modulation: 3 of the 62 neighbour pairs (31 per 4 x 5 beam) differ by 1; mean weight 41 / 40
    assert modulation_peak == pytest.approx((3 / 62) / (41 / 40), rel=1e-9)


def test_smoothness_term_reduces_modulation(phantom: tuple) -> None:
    problem = build(phantom, phantom_objectives())
    plain = optimize_fluence(problem, settings=CONVERGE)
    smooth = optimize_fluence(
        problem, settings=OptimizerSettings(smoothness_weight=50.0, tolerance=0.0)
    )
    assert smooth.modulation_index < plain.modulation_index
    assert smooth.smoothness_value > 0.0 and plain.smoothness_value == 0.0


# ------------------------------------------------------------------ problem building and sampling


def test_sampling_keeps_targets_whole_and_is_deterministic(phantom: tuple) -> None:
    dij, masks, target = phantom
    p1 = build(phantom, phantom_objectives(), max_rows_per_structure=50)
    p2 = build(phantom, phantom_objectives(), max_rows_per_structure=50)
    assert p1.structure_rows["PTV"].size == int(target.sum())
    assert p1.structure_rows["OAR"].size == 50 and p1.structure_voxels["OAR"] == int(
        masks["OAR"].sum()
    )
    np.testing.assert_array_equal(p1.rows, p2.rows)
    # sampled rows really are OAR voxels
    oar_rows = dij.rows_of(masks["OAR"])
    assert np.isin(p1.rows[p1.structure_rows["OAR"]], oar_rows).all()
    other_seed = build(phantom, phantom_objectives(), max_rows_per_structure=50, seed=5)
    assert not np.array_equal(p1.structure_rows["OAR"], other_seed.structure_rows["OAR"])


def test_nto_sample_distances_and_weights(phantom: tuple) -> None:
    # distances against a distance transform of the whole grid (scipy.ndimage.edt), for voxels
    # both inside the cropped box and outside it (k-d tree); weights average the whole stratum
    dij, _masks, target = phantom
    settings = OptimizerSettings(max_nto_rows=300, min_nto_rows=300, nto_near_mm=5.0)
    problem = build(phantom, phantom_objectives(), settings=settings)
    assert problem.nto_rows is not None and problem.nto_distance_mm is not None
    assert problem.nto_weights is not None
    assert problem.nto_rows.size == 300
    assert problem.nto_weights.sum() == pytest.approx(1.0, rel=1e-12)
    edt = ndimage.distance_transform_edt(~target, sampling=SPACING).ravel()
    flat = dij.voxel_indices[problem.rows[problem.nto_rows]]
    assert not target.ravel()[flat].any()
    np.testing.assert_allclose(problem.nto_distance_mm, edt[flat], rtol=1e-9)
    assert (problem.nto_distance_mm > 5.0).any() and (problem.nto_distance_mm <= 5.0).any()


def test_with_objectives_reuses_the_matrix_until_structures_change(phantom: tuple) -> None:
    objectives = phantom_objectives()
    problem = build(phantom, objectives[:3])
    tighter = [point("PTV", LO, 61.0, 95.0, 200.0), *objectives[1:3]]
    assert problem.can_reuse_for(tighter)
    same = problem.with_objectives(tighter)
    assert same.matrix is problem.matrix and same.objectives[0].dose_gy == 61.0
    assert problem.objectives[0].dose_gy == 60.0  # the original is untouched
    assert not problem.can_reuse_for(objectives)  # BODY and the NTO are new
    grown = problem.with_objectives(objectives)
    assert "BODY" in grown.structure_rows and grown.nto_rows is not None
    # dicts are accepted and validated like the DTOs
    as_dicts = problem.with_objectives([o.model_dump() for o in tighter])
    assert as_dicts.objectives == same.objectives


def test_cold_start_gives_the_target_a_mean_of_the_prescription(phantom: tuple) -> None:
    problem = build(phantom, phantom_objectives())
    dose = problem.matrix @ np.full(problem.n_beamlets, problem.weight_scale, dtype=np.float32)
    assert float(dose[problem.target_rows].mean()) == pytest.approx(60.0, rel=1e-5)


# ------------------------------------------------------------------ bad input


def test_unknown_structures_are_listed(phantom: tuple) -> None:
    with pytest.raises(
        UnknownStructure, match=r"'Rectum'.*the plan has: BODY, EMPTY, OAR, PTV"
    ) as err:
        build(phantom, [point("Rectum", UP, 30.0, 10.0)])
    assert err.value.structure_id == "Rectum" and "PTV" in err.value.available
    with pytest.raises(UnknownStructure, match="'Rectum', 'Bladder'"):
        build(phantom, [point("Rectum", UP, 30.0, 10.0), point("Bladder", UP, 30.0, 10.0)])


def test_empty_structure_is_rejected(phantom: tuple) -> None:
    with pytest.raises(EmptyStructure, match="EMPTY"):
        build(phantom, [point("PTV", LO, 60.0, 95.0), point("EMPTY", UP, 30.0, 10.0)])


@pytest.mark.parametrize(
    ("objectives", "match"),
    [
        ([], "no objectives"),
        (
            [
                NormalTissueObjective(
                    priority=1,
                    distance_from_target_border_mm=1,
                    start_dose_pct=100,
                    end_dose_pct=50,
                    fall_off=0.1,
                )
            ]
            * 2,
            "at most one",
        ),
        ([{"kind": "point", "structure_id": "PTV", "operator": "upper"}], "malformed"),
        (["PTV upper 30"], "not an objective"),
    ],
)
def test_bad_objectives_are_rejected(phantom: tuple, objectives: list, match: str) -> None:
    with pytest.raises(InvalidObjective, match=match):
        build(phantom, objectives)


def test_nto_needs_a_target(phantom: tuple) -> None:
    dij, masks, _target = phantom
    nto = phantom_objectives()[-1]
    with pytest.raises(InvalidObjective, match="target"):
        build_problem(dij, masks, np.zeros(GRID, bool), [nto], 60.0, SPACING)


def test_failed_with_objectives_leaves_the_problem_unchanged(phantom: tuple) -> None:
    problem = build(phantom, phantom_objectives()[:2])
    with pytest.raises(UnknownStructure):
        problem.with_objectives([point("PTV", LO, 61.0, 95.0), point("Nope", UP, 1.0, 1.0)])
    assert problem.objectives == tuple(phantom_objectives()[:2])


def test_bad_numbers_are_rejected(phantom: tuple) -> None:
    dij, masks, target = phantom
    objs = phantom_objectives()[:1]
    with pytest.raises(InvalidInput, match="mask shape"):
        build_problem(dij, {"PTV": np.ones((2, 2, 2), bool)}, target, objs, 60.0, SPACING)
    with pytest.raises(InvalidInput, match="prescription_gy"):
        build_problem(dij, masks, target, objs, 0.0, SPACING)
    problem = build(phantom, objs)
    with pytest.raises(InvalidInput, match="x0"):
        optimize_fluence(problem, x0=np.ones(3))
    with pytest.raises(InvalidInput, match=">= 0"):
        optimize_fluence(problem, x0=-np.ones(problem.n_beamlets))
    with pytest.raises(InvalidInput, match="max_iterations"):
        optimize_fluence(problem, max_iterations=0)
    with pytest.raises(InvalidInput, match="tolerance"):
        OptimizerSettings(tolerance=-1.0)
