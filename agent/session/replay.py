"""Replay a recorded session (``rtplan replay``) and say, without contradiction, how it compares.

Replay reads the journal read-only (no lock; a torn last line is ignored with a notice),
verifies its HMAC chain (a tampered or truncated journal is refused; a version-1 journal
or another installation's is replayed with an UNVERIFIED notice), re-runs it on a freshly
opened plan with :class:`ReplayPolicy` (the objectives each iteration applied) in a new
session directory, and compares the goals, criteria and score of every recorded
iteration with the replayed ones within a stated tolerance.

:meth:`ReplayReport.verdict` is the one sentence to show: MATCH, MISMATCH (which iteration
and metric, the two values and the difference) or INCOMPLETE (how many iterations were
replayed and why the replay stopped early).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import Field

from agent.policies import Policy, ReplayPolicy
from agent.session.errors import ResumeError
from agent.session.journal_read import journal_path, read_journal
from agent.session.loop import IterationCallback, PlanningLoop
from agent.session.recorded_case import check_case, load_recorded_template
from agent.session.records import (
    IterationRecord,
    SessionConfig,
    SessionLog,
    SessionSummary,
    StopReason,
)
from esapi_bridge.port import TpsSession
from rtplan_common.models import StrictModel

SessionFactory = Callable[[SessionConfig], TpsSession]

#: Default replay tolerance: goal and criterion values (Gy, %, cm3 or index units)
#: and scores must agree within this absolute difference.
REPLAY_TOLERANCE = 0.01


class IterationComparison(StrictModel):
    """Recorded vs replayed metrics of one iteration; ``worst`` is the largest difference.

    ``max_abs_difference`` is ``None`` when a metric (or the whole evaluation) is missing on
    one side: not comparable, hence not a match.
    """

    iteration: int
    recorded_score: float | None
    replayed_score: float | None
    max_abs_difference: float | None
    worst: str = ""  # the goal / criterion with the largest difference
    worst_recorded: float | None = None  # its recorded value
    worst_replayed: float | None = None  # its replayed value
    objectives_match: bool = True  # the replayed policy applied the recorded objectives


class ReplayReport(StrictModel):
    """Outcome of a replay.

    ``recorded_iterations`` counts the recorded iteration records (a torn last line
    excluded), ``replayed_iterations`` those of them that the replay reached and compared.
    ``matched`` holds when every recorded iteration was replayed and every comparison is
    within ``tolerance``. ``stopped_early`` says why fewer were replayed; ``notices``
    carry what reading the journal found (torn tail, unverified chain, other engine).
    """

    journal: str
    replay_dir: str
    tolerance: float
    matched: bool
    recorded_iterations: int
    replayed_iterations: int
    comparisons: list[IterationComparison] = Field(default_factory=list)
    summary: SessionSummary
    note: str = ""
    stopped_early: str = ""
    notices: list[str] = Field(default_factory=list)

    @property
    def mismatches(self) -> list[IterationComparison]:
        """The compared iterations that differ by more than the tolerance."""
        tol = self.tolerance
        return [
            c
            for c in self.comparisons
            if c.max_abs_difference is None or c.max_abs_difference > tol or not c.objectives_match
        ]

    def verdict(self) -> str:
        """One sentence: MATCH, MISMATCH (first differing iteration and metric) or INCOMPLETE."""
        n, m, tol = self.recorded_iterations, self.replayed_iterations, self.tolerance
        bad = self.mismatches
        parts: list[str] = []
        if m < n:
            parts.append(
                f"INCOMPLETE: {m} of {n} recorded iterations replayed"
                + (f": {self.stopped_early}" if self.stopped_early else "")
            )
        if bad:
            first = bad[0]
            values = ""
            if first.worst_recorded is not None or first.worst_replayed is not None:
                values = f": recorded {_num(first.worst_recorded)}, replayed {_num(first.worst_replayed)}"
            size = (
                "not comparable"
                if first.max_abs_difference is None
                else f"|difference| {_num(first.max_abs_difference)}"
            )
            parts.append(
                f"MISMATCH: {len(bad)} of {m} replayed iterations differ by more than {tol:g}; "
                f"first at iteration {first.iteration}, {first.worst}{values} ({size})"
            )
        if not parts:
            largest = max(self.comparisons, key=lambda c: c.max_abs_difference or 0.0, default=None)
            detail = ""
            if largest is not None and largest.max_abs_difference:
                detail = (
                    f" (largest difference {largest.max_abs_difference:.2g}: iteration "
                    f"{largest.iteration}, {largest.worst})"
                )
            parts.append(
                f"MATCH: all {n} recorded iterations replayed, every goal, criterion and "
                f"score within {tol:g}{detail}"
            )
        return "; ".join(parts)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _compare(recorded: IterationRecord, replayed: IterationRecord) -> IterationComparison:
    comparison = _compare_metrics(recorded, replayed)
    if recorded.applied_objectives != replayed.applied_objectives:
        comparison = comparison.model_copy(
            update={"objectives_match": False, "worst": "the applied objectives"}
        )
    return comparison


def _compare_metrics(recorded: IterationRecord, replayed: IterationRecord) -> IterationComparison:
    a, b = recorded.evaluation, replayed.evaluation
    if a is None or b is None:
        return IterationComparison(
            iteration=recorded.iteration,
            recorded_score=recorded.score,
            replayed_score=replayed.score,
            max_abs_difference=0.0 if a is b else None,
            worst="evaluation missing",
        )
    pairs: list[tuple[str, float | None, float | None]] = []
    old_goals = {g.goal_id: g.value for g in a.goals}
    pairs += [(f"goal {g.goal_id}", old_goals.get(g.goal_id), g.value) for g in b.goals]
    old_crit = {c.criterion_id: c.value for c in a.criteria}
    pairs += [
        (f"criterion {c.criterion_id}", old_crit.get(c.criterion_id), c.value) for c in b.criteria
    ]
    if a.score is not None or b.score is not None:
        pairs.append(("score", a.score, b.score))
    if len(a.goals) != len(b.goals):
        pairs.append(("number of goals", len(a.goals), len(b.goals)))
    worst: tuple[str, float | None, float | None] = ("", None, None)
    diff: float | None = 0.0
    for name, x, y in pairs:
        if x is None or y is None:  # on one side only: not comparable
            worst, diff = (name, x, y), None
            break
        if abs(x - y) > (diff or 0.0):
            worst, diff = (name, x, y), abs(x - y)
    return IterationComparison(
        iteration=recorded.iteration,
        recorded_score=a.score,
        replayed_score=b.score,
        max_abs_difference=diff,
        worst=worst[0],
        worst_recorded=worst[1],
        worst_replayed=worst[2],
    )


def _why_stopped(summary: SessionSummary, last_replayed: int | None) -> str:
    where = "before iteration 0" if last_replayed is None else f"after iteration {last_replayed}"
    if summary.stop_reason in (StopReason.ERROR, StopReason.INTERRUPTED):
        return f"the replay stopped {where} ({summary.stop_reason.value}: {summary.message})"
    return f"the replay stopped {where} ({summary.stop_reason.value})"


def replay_session(
    journal: str | Path,
    open_session: SessionFactory,
    *,
    out_dir: str | Path | None = None,
    tolerance: float = REPLAY_TOLERANCE,
    on_iteration: IterationCallback | None = None,
    template_file: str | Path | None = None,
    policy_for: Callable[[SessionLog], Policy] | None = None,
) -> ReplayReport:
    """Replay ``journal`` on a freshly opened plan and compare metrics iteration by iteration.

    The replay runs in ``out_dir`` (default: ``replay-<time>`` next to the journal) with the
    recorded config, except the policy (``replay``), no approval, and stop rules that let
    every recorded iteration run. A session that was resumed re-optimized from scratch at
    the resume point, so its replay is expected to match only up to there.

    ``policy_for`` builds the replaying policy from the journal (default:
    :class:`ReplayPolicy`, the objectives each iteration applied). An LLM session is
    replayed through the LLM policy itself on the recorded responses
    (:func:`agent.policies.llm.wiring.replaying_policy`); its config keeps its policy name.

    Raises
    ------
    agent.session.journal.JournalCorrupt, agent.session.journal.JournalTampered
        The journal does not read back or its chain does not match.
    ResumeError
        No completed iteration, changed template, or another case.
    """
    path = journal_path(journal)
    log = read_journal(path)
    notices = list(log.notices)
    template = load_recorded_template(log, template_file=template_file)
    recorded = log.iterations
    if not recorded:
        raise ResumeError(f"journal {str(path)!r} has no completed iteration to replay")
    if policy_for is None:  # replayed objectives: let every recorded iteration run
        policy: Policy = ReplayPolicy(recorded)
        update = {
            "max_iterations": max(0, recorded[-1].iteration),
            "patience": 10_000,
            "stall_limit": 10_000,
        }
    else:  # the policy itself re-runs: the same config, so the same prompts and stops
        policy, update = policy_for(log), {}
    config = log.header.config.model_copy(
        update={"policy": policy.name, "approve": False, **update}
    )
    session = open_session(config)
    notices += check_case(log, session, strict=False)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = Path(out_dir) if out_dir is not None else path.parent / f"replay-{stamp}"
    loop = PlanningLoop(
        session,
        template,
        policy,
        config,
        target,
        on_iteration=on_iteration,
        case_label=log.header.case.case_label,
    )
    summary = loop.run()
    replayed = {r.iteration: r for r in loop.state.records}
    comparisons = [_compare(r, replayed[r.iteration]) for r in recorded if r.iteration in replayed]
    stopped_early = ""
    if len(comparisons) < len(recorded):
        last = max(replayed) if replayed else None
        stopped_early = _why_stopped(summary, last)
    resumed = any(e.kind == "resumed" for e in log.events)
    report = ReplayReport(
        journal=str(path),
        replay_dir=str(target),
        tolerance=tolerance,
        matched=False,
        recorded_iterations=len(recorded),
        replayed_iterations=len(comparisons),
        comparisons=comparisons,
        summary=summary,
        note="the recorded session was resumed (re-optimized from scratch there)"
        if resumed
        else "",
        stopped_early=stopped_early,
        notices=notices,
    )
    report.matched = not stopped_early and not report.mismatches
    return report
