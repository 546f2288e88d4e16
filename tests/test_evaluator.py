"""Evaluation of hand-built DVHs against site templates: goals, statuses, margins, score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dvh_shapes import constant, ramp

from agent.evaluation import (
    EvaluationError,
    GoalStatus,
    criterion_points,
    evaluate,
    evaluate_session,
    goal_status,
    metric_value,
    needed_structures,
)
from agent.evaluation.text import evaluation_table
from agent.templates import CriterionSpec, SiteTemplate, load_template, parse_metric
from esapi_bridge import dvh_metrics
from esapi_bridge.dto import DvhCurve
from mock_tps.dvh import dvh_from_doses


def dvh_with_value(sid: str, criterion: CriterionSpec, value: float, rx: float) -> DvhCurve:
    """A DVH on which ``criterion.metric`` equals ``value`` (analytic, see ``ramp``)."""
    m = criterion.metric
    if m.dose is not None:  # V metric: ramp from 0 with V(level) = value %
        level = m.dose_level_gy(rx)
        return ramp(sid, 0.0, level / (1.0 - value / 100.0))
    return constant(sid, value)


def cold_plan(template: SiteTemplate) -> dict[str, DvhCurve]:
    """Zero dose everywhere except a uniform Rx in the targets: every criterion at full points."""
    rx = template.prescription.dose_gy
    return {
        s.id: constant(s.id, rx) if s.is_target else constant(s.id, 0.0)
        for s in template.structures
    }


def identity(template: SiteTemplate) -> dict[str, str]:
    return {s.id: s.id for s in template.structures}


CRITERIA = [
    (name, i)
    for name, n in (("prostate-basic", 9), ("prostate-complex", 15), ("liver", 4))
    for i in range(n)
]


@pytest.mark.parametrize(("name", "index"), CRITERIA)
def test_each_criterion_at_beyond_and_between_thresholds(name: str, index: int) -> None:
    t = load_template(name)
    assert t.score is not None
    rx = t.prescription.dose_gy
    c = t.score.criteria[index]
    full = c.full.resolve(c.metric.unit, rx)
    zero = c.zero.resolve(c.metric.unit, rx)
    step = zero - full
    # value -> expected points (linear between thresholds; hand-computed fractions)
    cases = {
        full - 0.5 * step: 1.0,  # better than full
        full: 1.0,
        full + 0.25 * step: 0.75,
        full + 0.5 * step: 0.5,
        zero: 0.0,
        zero + 0.5 * step: 0.0,  # worse than zero
    }
    for value, points in cases.items():
        dvhs = cold_plan(t)
        dvhs[c.structure] = dvh_with_value(c.structure, c, value, rx)
        ev = evaluate(dvhs, t, identity(t))
        result = next(r for r in ev.criteria if r.criterion_id == c.id)
        # the DVH is built analytically: metric value exact to 1e-4 (curve interpolation)
        assert result.value == pytest.approx(value, abs=1e-4)
        assert result.points == pytest.approx(points, abs=1e-4), (value, result)
        # criteria of other structures keep their full point; the score is the sum
        assert all(r.points == r.max_points for r in ev.criteria if r.structure_id != c.structure)
        assert ev.score == pytest.approx(sum(r.points for r in ev.criteria), abs=1e-12)
        assert ev.max_score == t.score.total_weight


def test_criterion_points_directions() -> None:
    # lower is better: full 15, zero 20; value 17 -> (20 - 17) / 5 = 0.6 (hand-computed)
    assert criterion_points(17.0, "<=", 15.0, 20.0, 1.0) == pytest.approx(0.6)
    # higher is better: full 0.9, zero 0.7; value 0.85 -> 0.75 of weight 2 = 1.5
    assert criterion_points(0.85, ">=", 0.9, 0.7, 2.0) == pytest.approx(1.5)
    assert criterion_points(0.95, ">=", 0.9, 0.7, 2.0) == 2.0
    assert criterion_points(0.6, ">=", 0.9, 0.7, 2.0) == 0.0


@pytest.mark.parametrize(
    ("value", "comparator", "limit", "variation", "status", "margin"),
    [
        (39.0, "<=", 40.0, 0.0, GoalStatus.MET, 1.0),
        (40.0, "<=", 40.0, 0.0, GoalStatus.MET, 0.0),
        (40.005, "<=", 40.0, 0.0, GoalStatus.MET, -0.005),  # within the 0.01 Gy DVH resolution
        (41.0, "<=", 40.0, 0.0, GoalStatus.FAILED, -1.0),
        (41.0, "<=", 40.0, 2.0, GoalStatus.WITHIN_VARIATION, -1.0),
        (42.0, "<=", 40.0, 2.0, GoalStatus.WITHIN_VARIATION, -2.0),
        (42.5, "<=", 40.0, 2.0, GoalStatus.FAILED, -2.5),
        (39.0, "<", 40.0, 0.0, GoalStatus.MET, 1.0),
        (96.0, ">=", 95.0, 2.0, GoalStatus.MET, 1.0),
        (94.0, ">=", 95.0, 2.0, GoalStatus.WITHIN_VARIATION, -1.0),
        (92.0, ">", 95.0, 2.0, GoalStatus.FAILED, -3.0),
    ],
)
def test_goal_status_and_margin(
    value: float, comparator: str, limit: float, variation: float, status: GoalStatus, margin: float
) -> None:
    got_status, got_margin = goal_status(value, comparator, limit, variation, "Gy")
    assert got_status is status
    assert got_margin == pytest.approx(margin, abs=1e-12)


def test_goals_of_the_liver_template() -> None:
    t = load_template("liver")
    dvhs = cold_plan(t)
    dvhs["SpinalCord"] = constant("SpinalCord", 41.0)  # limit 0.8 x 50 = 40 Gy, no variation
    dvhs["Stomach"] = constant("Stomach", 37.0)  # limit 35 Gy, variation 3 Gy
    dvhs["Liver-PTV"] = ramp("Liver-PTV", 0.0, 50.0)  # mean 25 Gy: limit 23, variation 2
    ev = evaluate(dvhs, t, identity(t))
    cord, stomach, liver = ev.goal("cord_max"), ev.goal("stomach_max"), ev.goal("liver_mean")
    assert (cord.status, cord.limit, cord.unit) == (GoalStatus.FAILED, 40.0, "Gy")
    assert cord.margin == pytest.approx(-1.0, abs=1e-5)
    assert stomach.status is GoalStatus.WITHIN_VARIATION
    assert stomach.margin == pytest.approx(-2.0, abs=1e-5)
    assert liver.status is GoalStatus.WITHIN_VARIATION and liver.value == pytest.approx(25.0)
    # V60%Rx = V30Gy on the 0..50 Gy ramp = 40 % (limit 28 %, variation 5): failed by 12 %
    v30 = ev.goal("liver_v30")
    assert (v30.status, v30.unit) == (GoalStatus.FAILED, "%")
    assert v30.value == pytest.approx(40.0, abs=1e-9)
    assert not ev.all_priority1_met and not ev.all_priority1_acceptable
    assert {g.goal_id for g in ev.failed_goals(max_priority=1)} == {"cord_max", "liver_mean"}


def test_prescription_override_scales_relative_levels() -> None:
    t = load_template("liver")
    dvhs = cold_plan(t)
    dvhs["SpinalCord"] = constant("SpinalCord", 33.0)
    ev = evaluate(dvhs, t, identity(t), prescription_gy=40.0)
    assert ev.prescription_gy == 40.0
    # 0.8 Rx at Rx 40 Gy = 32 Gy: 33 Gy fails by 1 Gy
    assert ev.goal("cord_max").limit == pytest.approx(32.0)
    assert ev.goal("cord_max").status is GoalStatus.FAILED
    # criterion thresholds scale too: cord full 0.5 x 40 = 20 Gy, zero 24 Gy
    cord = next(c for c in ev.criteria if c.criterion_id == "cord_max")
    assert (cord.full, cord.zero, cord.points) == (pytest.approx(20.0), pytest.approx(24.0), 0.0)


def test_indices_use_the_structure_dose_level_and_the_body() -> None:
    t = load_template("head-and-neck")
    body = ramp("BODY", 0.0, 100.0, volume_cm3=1000.0)  # V(56 Gy) = 44 % = 440 cm3
    ptv56 = constant("PTV56", 57.0, volume_cm3=200.0)
    level = t.prescription.level_gy("PTV56")
    assert level == 56.0
    ci = metric_value(
        parse_metric("CI_rtog"), ptv56, prescription_gy=70.0, level_gy=level, body=body
    )
    assert ci == pytest.approx(440.0 / 200.0, abs=1e-9)  # RTOG CI = PIV / TV, hand-computed
    # Paddick: TV_PIV = 200 cm3 (all of PTV56 >= 56 Gy): 200^2 / (200 x 440)
    pad = metric_value(
        parse_metric("CI_paddick"), ptv56, prescription_gy=70.0, level_gy=level, body=body
    )
    assert pad == pytest.approx(200.0 / 440.0, abs=1e-9)
    # GI at 70 Gy: V(35) / V(70) = 65 % / 30 % (hand-computed on the ramp)
    gi = metric_value(parse_metric("GI"), ptv56, prescription_gy=70.0, level_gy=70.0, body=body)
    assert gi == pytest.approx(65.0 / 30.0, abs=1e-9)
    with pytest.raises(EvaluationError, match="needs the body DVH"):
        metric_value(parse_metric("GI"), ptv56, prescription_gy=70.0, level_gy=70.0)


def test_an_undefined_gradient_index_is_an_evaluation_error_not_infinity() -> None:
    """Nothing reaches the level: GI = PIV50 / 0 is undefined; an infinite value would be
    refused by the strict result models (and could not be journaled)."""
    body = ramp("BODY", 0.0, 50.0, volume_cm3=1000.0)  # max 50 Gy < 70 Gy
    ptv = constant("PTV", 45.0, volume_cm3=20.0)
    with pytest.raises(EvaluationError, match=r"undefined: no voxel of 'BODY' receives 70\.00 Gy"):
        metric_value(parse_metric("GI"), ptv, prescription_gy=70.0, level_gy=70.0, body=body)


def test_metrics_on_voxel_dvhs_match_the_dvh_methods() -> None:
    rng = np.random.default_rng(7)
    doses = rng.normal(80.0, 2.0, 4000)
    dvh = dvh_from_doses("PTV", doses, voxel_volume_cm3=0.027)
    kw = {"prescription_gy": 79.2, "level_gy": 79.2}
    assert metric_value(parse_metric("D0.03cc"), dvh, **kw) == dvh.dose_at_volume_cm3(0.03)
    assert metric_value(parse_metric("D95%"), dvh, **kw) == dvh.dose_at_volume_pct(95.0)
    assert metric_value(parse_metric("V95%Rx"), dvh, **kw) == dvh.volume_pct_at_dose(0.95 * 79.2)
    assert metric_value(parse_metric("V80Gy[cc]"), dvh, **kw) == dvh.volume_cm3_at_dose(80.0)
    assert metric_value(parse_metric("HI"), dvh, **kw) == dvh_metrics.homogeneity_index(dvh)
    assert metric_value(parse_metric("Max"), dvh, **kw) == pytest.approx(doses.max())
    assert metric_value(parse_metric("Mean"), dvh, **kw) == pytest.approx(doses.mean())


def test_missing_dvhs_and_structures() -> None:
    t = load_template("prostate-basic")
    dvhs = cold_plan(t)
    del dvhs["Rectum"]
    with pytest.raises(EvaluationError, match="no DVH for 'Rectum'"):
        evaluate(dvhs, t, identity(t))
    m = identity(t)
    del m["Bladder"]
    with pytest.raises(EvaluationError, match="required structure 'Bladder'"):
        evaluate(cold_plan(t), t, m)
    # optional femoral heads absent: their goals are skipped, not failed
    m = identity(t)
    del m["Femur_Head_L"], m["Femur_Head_R"]
    ev = evaluate(cold_plan(t), t, m)
    assert ev.skipped_goals == ["femur_l_v50", "femur_r_v50"]
    assert ev.score == 9.0 and ev.all_priority1_met


def test_dvhs_keyed_by_plan_ids() -> None:
    t = load_template("tg119-easy")
    plan_map = {"OuterTarget": "PTV_C", "Core": "core", "BODY": "External"}
    dvhs = {
        "PTV_C": ramp("PTV_C", 49.0, 54.0),  # D95 = 54 - 0.95 x 5 = 49.25 Gy
        "core": ramp("core", 0.0, 30.0),  # D10 = 27 Gy: limit 25, variation 2 -> failed by 2
        "External": ramp("External", 0.0, 54.0, volume_cm3=5000.0),
    }
    ev = evaluate(dvhs, t, plan_map)
    d95 = ev.goal("target_d95")
    assert d95.plan_structure_id == "PTV_C" and d95.value == pytest.approx(49.25, abs=1e-9)
    assert d95.status is GoalStatus.WITHIN_VARIATION  # 0.75 Gy short, variation 1 Gy
    core = ev.goal("core_d10")
    assert core.value == pytest.approx(27.0, abs=1e-9)
    assert core.status is GoalStatus.WITHIN_VARIATION and core.margin == pytest.approx(-2.0)
    assert ev.score is None and ev.criteria == []


class _CountingSession:
    def __init__(self, dvhs: dict[str, DvhCurve]) -> None:
        self.dvhs = dvhs
        self.calls: list[str] = []

    def get_dvh(self, structure_id: str) -> DvhCurve:
        self.calls.append(structure_id)
        return self.dvhs[structure_id]


def test_evaluate_session_fetches_exactly_what_it_needs() -> None:
    t = load_template("liver")
    session = _CountingSession(cold_plan(t))
    ev = evaluate_session(session, t, identity(t))  # type: ignore[arg-type]
    # no Liver, no BODY
    assert session.calls == ["PTV", "Liver-PTV", "SpinalCord", "Stomach", "BODY-PTV"]
    assert ev.score == 4.0
    hn = load_template("head-and-neck")
    assert "BODY" in needed_structures(hn, identity(hn))  # the CIs need the body


def test_text_table_and_json() -> None:
    t = load_template("prostate-basic")
    dvhs = cold_plan(t)
    dvhs["Rectum"] = ramp("Rectum", 0.0, 100.0)
    ev = evaluate(dvhs, t, identity(t))
    text = evaluation_table(ev)
    lines = text.splitlines()
    assert lines[0].startswith("prostate-basic  Rx 79.20 Gy  score ")
    assert "P1 goals met 2/3" in lines[0]
    assert any(line.startswith("rectum_v75") and "FAILED" in line for line in lines)
    assert any(line.startswith("ptv_d95") and " met" in line for line in lines)
    assert len(text) < 3000  # compact enough for a prompt
    data = json.loads(json.dumps(ev.model_dump(mode="json")))
    assert data["template"] == "prostate-basic" and data["max_score"] == 9.0
    assert data["goals"][0]["status"] in ("met", "within_variation", "failed")
    assert set(data["criteria"][0]) >= {"criterion_id", "value", "full", "zero", "points"}
