"""The Bayesian-optimization baseline (``--policy bo``): search space, score, fair-budget
session settings, journaled trials, and the step-bound setting of the guardrails."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeTpsSession
from template_fixtures import DATA_DIR, frozen_prostate_template

from agent.policies import make_policy
from agent.policies.bo import BayesianPolicy, BoSettings, TppSpace, bo_objective, pqm_score
from agent.session.guardrails import GuardLimits, Guardrails
from agent.session.journal_read import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import Proposal, SessionConfig, VerdictStatus
from agent.session.stopping import better
from agent.templates import match_structures
from esapi_bridge.dto import objective_key

RX = 79.2
TEMPLATE = frozen_prostate_template()


def _run(tmp_path: Path, budget: int = 12, seed: int = 0):
    policy = BayesianPolicy(budget=budget, seed=seed, n_startup_trials=4)
    config = SessionConfig(
        template="prostate-basic", scenario="fake", seed=0, policy="bo", **policy.session_settings
    )
    records = []
    loop = PlanningLoop(
        FakeTpsSession(), TEMPLATE, policy, config, tmp_path / "s",
        save_snapshots=False, on_iteration=records.append,
    )  # fmt: skip
    return loop.run(), records, policy


def test_space_covers_every_ranged_tpp_and_round_trips() -> None:
    structures = FakeTpsSession().structures()
    smap = match_structures(TEMPLATE, structures)
    objectives = TEMPLATE.initial_objectives(smap, RX)
    ranges = TEMPLATE.tpp_ranges_for(smap, RX)
    space = TppSpace.build(objectives, ranges)
    expected = sum(
        1
        for o in objectives
        if (r := ranges.get(objective_key(o))) is not None
        for b in r.model_dump().values()
        if b is not None and b[1] > b[0]
    )
    assert len(space.dims) == expected > 0
    start = space.point(objectives)
    assert start is not None  # the template's own objectives lie inside its ranges
    assert space.objectives(start) == objectives
    corner = {d.name: d.hi for d in space.dims}
    moved = space.objectives(corner)
    for d in space.dims:
        assert getattr(moved[d.index], d.field) == pytest.approx(d.hi, abs=1e-12)


def test_fair_session_settings_disable_stall_stop_and_step_bounds() -> None:
    settings = BayesianPolicy(budget=150).session_settings
    assert settings == {
        "max_iterations": 150, "patience": 151, "stall_limit": 151, "step_bounds": False
    }  # fmt: skip
    assert BoSettings().budget >= 100  # the default budget of the issue


def test_without_step_bounds_accepts_any_step_but_keeps_range_checks() -> None:
    structures = FakeTpsSession().structures()
    smap = match_structures(TEMPLATE, structures)
    objs = TEMPLATE.initial_objectives(smap, RX)
    free = Guardrails(TEMPLATE, smap, structures, RX, GuardLimits().without_step_bounds())
    bounded = Guardrails(TEMPLATE, smap, structures, RX)
    ranges = TEMPLATE.tpp_ranges_for(smap, RX)
    i, rng = next(
        (i, ranges[objective_key(o)])
        for i, o in enumerate(objs)
        if objective_key(o) in ranges and ranges[objective_key(o)].priority is not None
    )
    assert rng.priority is not None
    far = [*objs]
    far[i] = objs[i].model_copy(update={"priority": rng.priority[1]})
    jump = abs(rng.priority[1] - objs[i].priority)
    proposal = Proposal(objectives=far, rationale="t", policy="bo")
    verdict, applied = free.check(proposal, objs)
    assert verdict.status is VerdictStatus.ACCEPTED and applied == far
    if jump > max(150.0, objs[i].priority):  # beyond the default step bound
        assert bounded.check(proposal, objs)[0].status is VerdictStatus.CLIPPED
    outside = [*objs]
    outside[i] = objs[i].model_copy(update={"priority": rng.priority[1] + 1.0})
    verdict, applied = free.check(Proposal(objectives=outside, rationale="t"), objs)
    assert verdict.status is VerdictStatus.REJECTED and applied is None
    assert any("outside the template range" in r for r in verdict.reasons)


def test_bo_session_spends_its_budget_journals_every_trial_and_keeps_the_best(
    tmp_path: Path,
) -> None:
    summary, records, policy = _run(tmp_path, budget=12)
    log = read_journal(tmp_path / "s" / "journal.jsonl")
    assert log.header.config.step_bounds is False
    assert log.header.policy is not None and log.header.policy.settings["budget"] == 12
    trials = [r for r in records if r.proposal.policy == "bo"]
    # no stall stop: every trial of the budget runs unless the maximum score was reached
    reached = summary.final_evaluation is not None and summary.final_evaluation.score == 9
    assert len(trials) == 12 or reached
    assert all(r.verdict.status is VerdictStatus.ACCEPTED for r in trials)
    intents = [e for e in log.intents if e.purpose == "apply"]
    assert len(intents) >= len(records)  # an intent before each change
    best = records[0]
    for r in records[1:]:
        if r.evaluation is not None and better(r.evaluation, best.evaluation):
            best = r
    assert summary.final_evaluation is not None
    assert summary.final_evaluation.score == pytest.approx(best.evaluation.score, abs=1e-9)
    assert policy.study is not None
    told = [t for t in policy.study.trials if t.value is not None]
    assert len(told) == len(trials)  # the template plan (warm start) + every trial but the last
    assert told[0].value == pytest.approx(bo_objective(records[0].evaluation), abs=1e-12)


def test_bo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    _, first, _ = _run(tmp_path / "a", budget=6, seed=3)
    _, again, _ = _run(tmp_path / "b", budget=6, seed=3)
    assert [r.applied_objectives for r in first] == [r.applied_objectives for r in again]
    _, other, _ = _run(tmp_path / "c", budget=6, seed=4)
    assert [r.applied_objectives for r in other][1:] != [r.applied_objectives for r in first][1:]


def test_clipped_trial_is_refused_with_the_setting_to_use(tmp_path: Path) -> None:
    policy = make_policy("bo", budget=5, n_startup_trials=2)
    config = SessionConfig(template="prostate-basic", scenario="fake", seed=0, max_iterations=5)
    tight = GuardLimits(max_priority_step_abs=0.0, max_priority_step_factor=0.0,
                        max_dose_step_rx=0.0, max_volume_step_pct=0.0)  # fmt: skip
    loop = PlanningLoop(
        FakeTpsSession(), TEMPLATE, policy, config, tmp_path / "s",
        save_snapshots=False, guard_limits=tight,
    )  # fmt: skip
    summary = loop.run()
    assert summary.stop_reason.value == "error"
    assert "step_bounds=False" in summary.message


def test_pqm_score_weights_goals_by_priority() -> None:
    fake = FakeTpsSession()
    structures = fake.structures()
    from agent.evaluation import evaluate_session

    smap = match_structures(TEMPLATE, structures)
    fake.set_objectives(TEMPLATE.initial_objectives(smap, RX))
    from esapi_bridge.dto import OptimizeRequest

    fake.optimize(OptimizeRequest())
    ev = evaluate_session(fake, TEMPLATE, smap)
    score = pqm_score(ev)
    assert 0.0 <= score <= 1.0
    all_met = ev.model_copy(
        update={"goals": [g.model_copy(update={"margin": 1.0}) for g in ev.goals]}
    )
    assert pqm_score(all_met) == pytest.approx(1.0, abs=1e-12)
    assert bo_objective(ev.model_copy(update={"score": None})) == pytest.approx(score)


def test_resumed_bo_rebuilds_its_study_from_the_journal(tmp_path: Path) -> None:
    from agent.session.resume import resume_session

    policy = BayesianPolicy(budget=6, seed=1, n_startup_trials=2)
    config = SessionConfig(
        template="prostate-basic", scenario="fake", seed=0, policy="bo", **policy.session_settings
    )
    loop = PlanningLoop(
        FakeTpsSession(faults={4: KeyboardInterrupt()}), TEMPLATE, policy, config,
        tmp_path / "s", save_snapshots=False,
    )  # fmt: skip
    assert loop.run().stop_reason.value == "interrupted"
    done = read_journal(tmp_path / "s").iterations
    resumed: list[BayesianPolicy] = []

    def policy_for(log, session_dir):  # type: ignore[no-untyped-def]
        assert log.header.policy is not None
        resumed.append(BayesianPolicy(BoSettings.model_validate(log.header.policy.settings)))
        return resumed[0]

    summary = resume_session(
        tmp_path / "s", lambda cfg: FakeTpsSession(), policy_for=policy_for,
        template_file=DATA_DIR / "prostate-basic-frozen.yaml",
    )  # fmt: skip
    assert summary.stop_reason.value != "error", summary.message
    study = resumed[0].study
    assert study is not None
    values = [t.value for t in study.trials if t.value is not None]
    # every journaled plan before the interrupt is a told trial of the rebuilt study
    assert len(values) >= len(done)
    assert values[: len(done)] == pytest.approx([bo_objective(r.evaluation) for r in done])
