"""Rule policy: demands, responsible objectives, step halving, ranges, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import FakeTpsSession
from template_fixtures import DATA_DIR, frozen_prostate_template

from agent.evaluation import GoalStatus, evaluate_session
from agent.policies import RulePolicy, make_policy
from agent.policies.base import PolicyContext, PolicyError
from agent.policies.rule.demands import (
    PRIORITY,
    PUSH,
    collect_demands,
    needs_goal_objective,
    responsible_objectives,
)
from agent.policies.rule.history import reversals, sign_flips
from agent.session.guardrails import Guardrails
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.memory import Memory
from agent.session.records import (
    GuardVerdict,
    IterationRecord,
    Proposal,
    SessionConfig,
    StopReason,
    VerdictStatus,
)
from agent.templates import load_template, match_structures
from esapi_bridge.dto import NormalTissueObjective, OptimizeRequest, PointObjective, objective_key

TEMPLATE = frozen_prostate_template()
RX = 79.2


def _context(fake: FakeTpsSession, objectives=None, template=TEMPLATE) -> PolicyContext:
    smap = match_structures(template, fake.structures())
    objs = objectives or template.initial_objectives(smap)
    fake.set_objectives(objs)
    fake.optimize(OptimizeRequest())
    rule = template.normalization_rule(smap)
    assert rule is not None
    fake.normalize(rule)
    ev = evaluate_session(fake, template, smap)
    dvhs = {sid: fake.get_dvh(sid) for sid in smap.values()}
    return PolicyContext(
        iteration=1, max_iterations=20, template=template, structure_map=smap, prescription_gy=RX,
        structures=fake.structures(), objectives=objs, evaluation=ev, optimization=None,
        memory=Memory(), dvhs=dvhs,
    )  # fmt: skip


def _session(tmp_path: Path, name: str = "s"):
    loop = PlanningLoop(
        FakeTpsSession(), TEMPLATE, RulePolicy(), SessionConfig(template="prostate-basic"),
        tmp_path / name, save_snapshots=False,
    )  # fmt: skip
    return loop.run()


def test_demands_of_the_initial_plan() -> None:
    ctx = _context(FakeTpsSession())
    demands = {d.id: d for d in collect_demands(ctx)}
    # the fake's rectum ramp (normalized: rectum V75 18.8 % > 15 %, hand-checked table) fails
    rect = demands["goal:rectum_v75"]
    assert rect.deficit > 0 and rect.upper and not rect.on_target
    assert rect.dose_level_gy == pytest.approx(0.947 * RX)
    assert demands["goal:ptv_hot"].on_target
    # priority-3 goals are reported, not chased
    assert "goal:femur_l_v50" not in demands


def test_responsible_objective_is_the_closest_upper_objective() -> None:
    ctx = _context(FakeTpsSession())
    demands = {d.id: d for d in collect_demands(ctx)}
    # V75.76%Rx <= 50 % (60 Gy at 50 %) -> the 55.4 Gy / 55 % objective, not the 30 % one
    assert list(responsible_objectives(ctx, demands["goal:rectum_v60"])) == [
        "Rectum:point:upper:55"
    ]
    # V94.7%Rx <= 15 % (75 Gy at 15 %): no objective within 10 % volume of the goal point,
    # so none is pushed: a new one at the goal point is due
    assert needs_goal_objective(ctx, demands["goal:rectum_v75"])
    assert responsible_objectives(ctx, demands["goal:rectum_v75"]) == {}
    # a hot spot: push the max-dose objective, raise the coverage objective's priority
    assert responsible_objectives(ctx, demands["goal:ptv_hot"]) == {
        "PTV:point:upper:0": PUSH,
        "PTV:point:lower:100": PRIORITY,
    }
    assert responsible_objectives(ctx, demands["goal:ptv_d95"]) == {"PTV:point:lower:100": PUSH}


def test_first_proposal_adds_an_objective_at_the_goal_point_within_ranges() -> None:
    fake = FakeTpsSession()
    ctx = _context(fake)
    proposal = RulePolicy().propose(ctx)
    assert not proposal.done and "Rectum" in proposal.rationale
    before = {objective_key(o): o for o in ctx.objectives}
    after = {objective_key(o): o for o in proposal.objectives}
    # rectum V94.7%Rx <= 15 %: upper objective at 0.947 Rx - 0.02 Rx = 73.42 Gy, 0.8 x 15 %
    new = after["Rectum:point:upper:12"]
    assert isinstance(new, PointObjective)
    assert new.dose_gy == pytest.approx(0.927 * RX, abs=0.01)
    # the rectum V60 goal (priority 2) fails too, but waits while a priority-1 goal fails
    assert after["Rectum:point:upper:55"] == before["Rectum:point:upper:55"]
    ranges = TEMPLATE.tpp_ranges_for(ctx.structure_map, RX)
    for key, obj in after.items():
        rng = ranges.get(key)
        if rng is None:
            continue
        if rng.dose_gy is not None and not isinstance(obj, NormalTissueObjective):
            assert rng.dose_gy[0] <= obj.dose_gy <= rng.dose_gy[1]
        if rng.priority is not None:
            assert rng.priority[0] <= obj.priority <= rng.priority[1]
    # and the guardrails accept it unchanged
    guard = Guardrails(TEMPLATE, ctx.structure_map, fake.structures(), RX)
    verdict, applied = guard.check(proposal, list(ctx.objectives))
    assert verdict.status is VerdictStatus.ACCEPTED and applied == proposal.objectives


def test_done_when_every_demand_is_met_names_the_goals_left() -> None:
    fake = FakeTpsSession()
    smap = match_structures(TEMPLATE, fake.structures())
    # both rectum objectives at 60 Gy, priority 100: score 9/9 in the fake (checked by hand),
    # every priority-1/2 goal met, but the priority-3 femur goals fail (5.5 % > 5 %)
    tight = [
        o.model_copy(update={"dose_gy": 60.0, "priority": 100.0})
        if objective_key(o).startswith("Rectum:")
        else o
        for o in TEMPLATE.initial_objectives(smap)
    ]
    ctx = _context(fake, tight)
    assert ctx.evaluation.score == pytest.approx(9.0)
    proposal = RulePolicy().propose(ctx)
    assert proposal.done and "every goal is met" not in proposal.rationale
    assert "every priority-1 and priority-2 goal is met" in proposal.rationale
    assert "femur_l_v50 (P3, Femur_Head_L V63.13%Rx) 5.5 %, limit <= 5.0 %" in proposal.rationale


def test_session_improves_and_is_deterministic(tmp_path: Path) -> None:
    a = _session(tmp_path, "a")
    _session(tmp_path, "b")
    assert a.stop_reason is StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT
    assert a.final_evaluation is not None and a.initial_evaluation is not None
    assert a.final_evaluation.score > a.initial_evaluation.score  # type: ignore[operator]
    la, lb = read_journal(tmp_path / "a"), read_journal(tmp_path / "b")
    assert [r.applied_objectives for r in la.iterations] == [
        r.applied_objectives for r in lb.iterations
    ]
    assert [r.proposal.rationale for r in la.iterations] == [
        r.proposal.rationale for r in lb.iterations
    ]


def test_steps_halve_when_a_margin_changes_sign() -> None:
    ctx = _context(FakeTpsSession())
    demand = next(d for d in collect_demands(ctx) if d.id == "goal:rectum_v75")
    ev_fail = ctx.evaluation
    met = ev_fail.model_copy(
        update={
            "goals": [
                g.model_copy(update={"status": GoalStatus.MET}) if g.goal_id == "rectum_v75" else g
                for g in ev_fail.goals
            ]
        }
    )
    assert sign_flips([ev_fail, ev_fail], demand) == 0
    assert sign_flips([ev_fail, met, ev_fail], demand) == 2
    policy = RulePolicy()
    # the step halves right after the margin changed sign, not for older flips
    assert policy.steps.scale(demand, [ev_fail, met, ev_fail]) == 0.5
    assert policy.steps.scale(demand, [ev_fail, met, met]) == 1.0


def test_objective_reversals_count_tighten_relax_switches(tmp_path: Path) -> None:
    ctx = _context(FakeTpsSession())
    key = "Rectum:point:upper:30"
    base = list(ctx.objectives)

    def with_rectum(dose: float, priority: float) -> list:
        return [
            o.model_copy(update={"dose_gy": dose, "priority": priority})
            if objective_key(o) == key
            else o
            for o in base
        ]

    records = [
        IterationRecord(
            iteration=i,
            proposal=Proposal(objectives=objs),
            verdict=GuardVerdict(status="accepted"),
            applied_objectives=objs,
        )
        for i, objs in enumerate(
            [with_rectum(71.28, 40), with_rectum(65, 60), with_rectum(68, 50), with_rectum(66, 55)]
        )
    ]
    # tighten, relax, tighten: two reversals; the bladder objectives never moved
    assert reversals(records, key) == 2
    assert reversals(records, "Bladder:point:upper:30") == 0


def test_registry() -> None:
    assert make_policy("rule").name == "rule"
    with pytest.raises(PolicyError, match="unknown policy 'magic'"):
        make_policy("magic")


def _conformity_template(tmp_path: Path):
    """The frozen template without its NTO and with a Paddick CI goal the fake cannot meet.

    Priority 1, so that it is chased alongside the fake's failing rectum goal (a failing
    priority-1 goal holds priority-2 demands back).
    """
    text = (DATA_DIR / "prostate-basic-frozen.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "kind: nto" in line)
    del lines[start : start + 3]  # the NTO spans three lines
    goals = lines.index("goals:")
    lines.insert(
        goals + 1,
        '  - {id: ptv_ci, structure: PTV, metric: CI_paddick, comparator: ">=", limit: 0.99,'
        " variation: 0.05, priority: 1}",
    )
    path = tmp_path / "conformity.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_template(path)


def test_failing_conformity_without_an_nto_switches_one_on_alone(tmp_path: Path) -> None:
    template = _conformity_template(tmp_path)
    ctx = _context(FakeTpsSession(), template=template)
    objs = list(ctx.objectives)
    assert not any(isinstance(o, NormalTissueObjective) for o in objs)
    ci = next(g for g in ctx.evaluation.goals if g.goal_id == "ptv_ci")
    assert ci.status is not GoalStatus.MET  # the fake's ramps spill well beyond the PTV
    proposal = RulePolicy().propose(ctx)
    ntos = [o for o in proposal.objectives if isinstance(o, NormalTissueObjective)]
    assert len(ntos) == 1
    nto = ntos[0]
    # conformity settings; priority half the highest PTV objective priority (120 -> 60)
    assert (nto.distance_from_target_border_mm, nto.start_dose_pct, nto.end_dose_pct) == (
        5.0,
        100.0,
        60.0,
    )
    assert nto.priority == pytest.approx(60.0)
    assert "add NTO" in proposal.rationale
    # an index is described with three decimals (the goal limit 0.99 reads "0.990")
    assert re.search(r"PTV CI_paddick \d\.\d{3} < 0\.990 \(p1\): add NTO", proposal.rationale)
    # nothing is removed (the rectum goal adds an objective of its own as well)
    assert sum(not isinstance(o, NormalTissueObjective) for o in proposal.objectives) >= len(objs)
    # a second proposal with the NTO in place adds no other NTO
    again = RulePolicy().propose(_context(FakeTpsSession(), proposal.objectives, template))
    assert sum(isinstance(o, NormalTissueObjective) for o in again.objectives) == 1
