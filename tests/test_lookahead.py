"""Look-ahead trials offered by the loop (issue #10 item 4) and model-call stats in the
journal and summary: trials are guarded, journaled before they run, counted as inner
optimizations, and the committed plan does not depend on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import ORIGINAL_OBJECTIVES as ORIGINAL
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.policies.base import PolicyContext
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.model_calls import FormatErrorKind, ModelCallStats
from agent.session.records import Proposal, SessionConfig, StopReason
from esapi_bridge.dto import objective_key

TEMPLATE = frozen_prostate_template()


def _rectum_down(ctx: PolicyContext, step_gy: float) -> list[Any]:
    return [
        o.model_copy(update={"dose_gy": o.dose_gy - step_gy})
        if objective_key(o).startswith("Rectum") and hasattr(o, "dose_gy")
        else o
        for o in ctx.objectives
    ]


class TryingPolicy:
    """Tries two candidate sets (one the guardrails reject), commits the better one."""

    name = "trying"

    def __init__(self) -> None:
        self.outcomes: list[Any] = []
        self.contexts: list[PolicyContext] = []

    def propose(self, ctx: PolicyContext) -> Proposal:
        self.contexts.append(ctx)
        if ctx.iteration > 1:
            return Proposal(objectives=list(ctx.objectives), done=True, rationale="enough")
        assert ctx.trial is not None
        small = _rectum_down(ctx, 1.0)
        bad = [o.model_copy(update={"priority": 1e9}) for o in ctx.objectives]
        self.outcomes = [ctx.trial(small), ctx.trial(bad), ctx.trial(small)]
        stats = ModelCallStats(calls=3, format_errors={FormatErrorKind.INVALID_JSON: 1}, repaired=1)
        return Proposal(objectives=small, rationale="tried", model_calls=stats)


class Looker:
    """Looks at the first context and is done."""

    name = "looker"

    def __init__(self) -> None:
        self.seen: list[PolicyContext] = []

    def propose(self, ctx: PolicyContext) -> Proposal:
        self.seen.append(ctx)
        return Proposal(objectives=list(ctx.objectives), done=True, rationale="nothing")


def _run(tmp_path: Path, policy: Any, trials: int) -> tuple[Any, FakeTpsSession]:
    fake = FakeTpsSession(initial_objectives=list(ORIGINAL))
    config = SessionConfig(template="prostate-basic", lookahead_trials=trials, max_iterations=3)
    loop = PlanningLoop(fake, TEMPLATE, policy, config, tmp_path / "s", save_snapshots=False)
    return loop.run(), fake


def test_trials_are_guarded_journaled_counted_and_limited(tmp_path: Path) -> None:
    policy = TryingPolicy()
    summary, _ = _run(tmp_path, policy, trials=2)
    ok, rejected, over = policy.outcomes
    assert ok.evaluation is not None and ok.verdict.accepted
    assert rejected.evaluation is None and not rejected.verdict.accepted  # never reached the TPS
    assert over.evaluation is None and "no look-ahead trials left" in over.verdict.reasons[0]
    assert policy.contexts[0].trials_left == 2
    log = read_journal(tmp_path / "s")
    first = log.iterations[1]
    assert [t.score is not None for t in first.trials] == [True, False]
    assert first.inner_optimizations == 2  # one trial ran, then the commit
    lines = [json.loads(x) for x in (tmp_path / "s" / "journal.jsonl").read_text().splitlines()]
    kinds = [(x["entry"], x.get("purpose") or x.get("kind")) for x in lines]
    trial_intent = kinds.index(("intent", "trial"))
    assert kinds[trial_intent + 1] == ("event", "trial")  # journaled before it ran, then noted
    assert ("event", "trial_rejected") in kinds
    assert summary.inner_optimizations == sum(r.inner_optimizations for r in log.iterations)


def test_a_trial_does_not_change_the_committed_plan(tmp_path: Path) -> None:
    """The commit restarts from scratch: the same plan with or without the trials."""
    with_trials, _ = _run(tmp_path / "a", TryingPolicy(), trials=2)

    class Direct(TryingPolicy):
        def propose(self, ctx: PolicyContext) -> Proposal:
            if ctx.iteration > 1:
                return Proposal(objectives=list(ctx.objectives), done=True, rationale="enough")
            return Proposal(objectives=_rectum_down(ctx, 1.0), rationale="direct")

    without, _ = _run(tmp_path / "b", Direct(), trials=0)
    assert with_trials.final_evaluation is not None and without.final_evaluation is not None
    assert with_trials.final_evaluation.score == without.final_evaluation.score


def test_no_trial_callback_when_the_session_allows_none(tmp_path: Path) -> None:
    looker = Looker()
    summary, _ = _run(tmp_path, looker, trials=0)
    assert looker.seen[0].trial is None and looker.seen[0].trials_left == 0
    assert summary.stop_reason is not StopReason.ERROR


def test_model_call_stats_reach_the_summary_including_the_final_done_proposal(
    tmp_path: Path,
) -> None:
    summary, _ = _run(tmp_path, TryingPolicy(), trials=2)
    # iteration 1's proposal (3 calls) + nothing for the done proposal (no stats on it)
    assert summary.model_calls is not None and summary.model_calls.calls == 3
    assert summary.model_calls.format_errors == {FormatErrorKind.INVALID_JSON: 1}

    class DoneWithCalls(TryingPolicy):
        def propose(self, ctx: PolicyContext) -> Proposal:
            return Proposal(
                objectives=list(ctx.objectives),
                done=True,
                rationale="done",
                model_calls=ModelCallStats(calls=2, input_tokens=100),
            )

    summary2, _ = _run(tmp_path / "2", DoneWithCalls(), trials=0)
    assert summary2.model_calls is not None and summary2.model_calls.calls == 2
    log = read_journal(tmp_path / "2" / "s")
    assert [e.model_calls.calls for e in log.events if e.model_calls is not None] == [2]


def test_plan_identifiers_reach_the_context_never_canonical_names(tmp_path: Path) -> None:
    looker = Looker()
    _run(tmp_path, looker, trials=0)
    ids = looker.seen[0].identifiers
    plan_id = FakeTpsSession(initial_objectives=list(ORIGINAL)).plan_info().plan_id
    assert plan_id in ids
    assert not ids & set(looker.seen[0].structure_map)  # template names are not identifiers


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_the_journal_refuses_a_line_it_could_not_read_back(tmp_path: Path) -> None:
    """A record built with model_copy (no validation) is refused, not written unreadable."""
    from agent.session.journal import Journal, JournalError
    from agent.session.records import SessionEvent

    journal = Journal(tmp_path / "journal.jsonl")
    bad = SessionEvent(kind="note").model_copy(update={"iteration": "not a number"})
    with pytest.raises(JournalError, match="refusing to journal an invalid SessionEvent"):
        journal.write(bad)
    assert journal.entries_written == 0
