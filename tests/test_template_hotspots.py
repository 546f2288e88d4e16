"""No dose region of a shipped template is left without an upper limit (issue #8, item 11).

Every target has a hot-spot goal (a near-maximum: ``Max``, ``D<=2%`` or ``D<=2cc``, on the
target or on the whole body), and the tissue outside the targets has one too (on the body,
or on a structure derived from it by subtracting the targets). The head-and-neck template
carries the RTOG-style limit outside all PTVs and the nodal PTV's own hot-spot limits.
"""

from __future__ import annotations

import numpy as np
import pytest
from dvh_shapes import ramp

from agent.evaluation import GoalStatus, evaluate
from agent.templates import GoalSpec, MetricKind, SiteTemplate, list_templates, load_template
from mock_tps.phantoms import make_case
from mock_tps.phantoms.shapes import expand

TEMPLATES = list_templates()


def _near_max(g: GoalSpec) -> bool:
    m = g.metric
    if g.comparator not in ("<=", "<"):
        return False
    if m.kind is MetricKind.MAX:
        return True
    if m.kind is not MetricKind.DOSE_AT_VOLUME or m.volume is None:
        return False
    return m.volume <= 2.0  # % or cm3


def _outside_structures(t: SiteTemplate) -> set[str]:
    """The body, and structures made by subtracting every target from it."""
    targets = {s.id for s in t.structures if s.is_target and s.required}
    out = {t.body_id}
    for s in t.structures:
        d = s.derive
        if d and d.op == "subtract" and d.source == t.body_id and targets <= set(d.others):
            out.add(s.id)
    return out


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_target_has_a_hot_spot_goal(name: str) -> None:
    t = load_template(name)
    hot = {g.structure for g in t.goals if _near_max(g)}
    for s in t.structures:
        if s.is_target:
            assert s.id in hot or t.body_id in hot, f"{name}: no hot-spot goal on {s.id}"


@pytest.mark.parametrize("name", TEMPLATES)
def test_the_tissue_outside_the_targets_has_a_dose_limit(name: str) -> None:
    t = load_template(name)
    outside = _outside_structures(t)
    assert any(_near_max(g) and g.structure in outside for g in t.goals), name


def test_head_and_neck_hot_spot_goals_and_their_structures() -> None:
    t = load_template("head-and-neck")
    rx = t.prescription.dose_gy
    goals = {g.id: g for g in t.goals}
    outside, far, whole = goals["outside_ptvs_d1cc"], goals["ptv56_far_max"], goals["ptv56_max"]
    assert (outside.structure, outside.metric.text, outside.comparator) == (
        "BODY-PTV",
        "D1cc",
        "<=",
    )
    assert outside.limit.resolve("Gy", rx) == pytest.approx(77.0)  # 1.10 x 70 Gy
    assert far.limit.resolve("Gy", rx) == pytest.approx(1.10 * t.prescription.level_gy("PTV56"))
    assert whole.limit.resolve("Gy", rx) == pytest.approx(77.0)
    assert {outside.priority, far.priority, whole.priority} == {2}
    body_ptv = t.structure("BODY-PTV").derive
    assert body_ptv is not None and (body_ptv.source, set(body_ptv.others)) == (
        "BODY",
        {"PTV70", "PTV56"},
    )
    ptv56_far = t.structure(far.structure).derive
    assert ptv56_far is not None
    assert (ptv56_far.op, ptv56_far.source, ptv56_far.others, ptv56_far.margin_mm) == (
        "subtract",
        "PTV56",
        ["PTV70"],
        10.0,
    )
    # the policy has an objective to push for the nodal PTV's own level
    assert any(o.structure == far.structure and o.operator == "upper" for o in t.objectives)
    assert any("RTOG 0920" in r for r in t.references)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_phantoms_build_the_derived_structures_as_the_templates_say(seed: int) -> None:
    hn = make_case("head-and-neck", seed)
    ptv70, ptv56, body = hn.mask("PTV70"), hn.mask("PTV56"), hn.body_mask
    far = ptv56 & ~expand(ptv70, hn.grid, 10.0)
    assert np.array_equal(hn.mask("PTV56-PTV70+10mm"), far)
    assert 0 < far.sum() < ptv56.sum()
    assert np.array_equal(hn.mask("BODY-PTV"), body & ~(ptv70 | ptv56))
    liver = make_case("liver", seed)
    assert np.array_equal(liver.mask("BODY-PTV"), liver.body_mask & ~liver.mask("PTV"))


def test_88_gy_in_the_nodal_ptv_is_a_failing_goal() -> None:
    """The issue's plan: 88 Gy (126 % of Rx) in PTV56 while every other goal was met."""
    t = load_template("head-and-neck")
    ids = {s.id: s.id for s in t.structures}
    dvhs = {s.id: ramp(s.id, 0.0, 1.0) for s in t.structures}
    dvhs["PTV70"] = ramp("PTV70", 70.0, 70.5)
    dvhs["BODY"] = ramp("BODY", 0.0, 88.0, volume_cm3=5000.0)
    for sid in ("PTV56", "PTV56-PTV70+10mm"):
        dvhs[sid] = ramp(sid, 56.5, 88.0)
    ev = evaluate(dvhs, t, ids)
    failed = {g.goal_id for g in ev.failed_goals(max_priority=2)}
    assert {"ptv56_max", "ptv56_far_max"} <= failed
    assert ev.goal("ptv56_far_max").status is GoalStatus.FAILED
    assert ev.goal("outside_ptvs_d1cc").status is GoalStatus.MET
