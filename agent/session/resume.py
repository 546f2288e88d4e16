"""Continue an interrupted session (``rtplan resume``) and replay a recorded one (``rtplan replay``).

Resume reads the journal (a corrupt or truncated journal is refused with a clear error
and left untouched) of a session that was killed, interrupted (Ctrl-C) or ended on an
error, reopens the plan, checks that it is the same case and template,
re-applies the objectives of the last completed iteration, re-optimizes from scratch
(the fluence of the interrupted process is gone) and continues, appending to the journal.

Replay re-runs a journal on the simulated TPS with :class:`ReplayPolicy` (the objectives
each iteration applied) in a new session directory, and compares the metrics of every
iteration with the recorded ones within a stated tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from agent.policies import ReplayPolicy, make_policy
from agent.session.approval import Approver
from agent.session.identity import case_identity, template_hash
from agent.session.journal import Journal, journal_path, read_journal
from agent.session.loop import IterationCallback, PlanningLoop
from agent.session.records import (
    IterationRecord,
    SessionConfig,
    SessionLog,
    SessionSummary,
    StopReason,
)
from agent.templates import SiteTemplate, load_template
from esapi_bridge.port import TpsSession

SessionFactory = Callable[[SessionConfig], TpsSession]

#: Default replay tolerance: goal and criterion values (Gy, %, cm3 or index units)
#: and scores must agree within this absolute difference.
REPLAY_TOLERANCE = 0.01


#: Stop reasons after which a session may be resumed (besides a journal without summary).
RESUMABLE = frozenset({StopReason.INTERRUPTED, StopReason.ERROR})


class ResumeError(RuntimeError):
    """The journal cannot be resumed or replayed (finished, other case, template changed)."""


def _load_checked(log: SessionLog, *, allow_template_change: bool) -> SiteTemplate:
    header = log.header
    template = load_template(header.template_name)
    if template_hash(template) != header.template_hash and not allow_template_change:
        raise ResumeError(
            f"template {header.template_name!r} changed since the session was recorded "
            f"(hash {template_hash(template)} != {header.template_hash})"
        )
    return template


def _check_case(log: SessionLog, session: TpsSession) -> None:
    identity = case_identity(session.plan_info(), session.structures(), log.header.case.case_label)
    recorded = log.header.case
    if (identity.plan_pseudonym, identity.structure_set_hash) != (
        recorded.plan_pseudonym,
        recorded.structure_set_hash,
    ):
        raise ResumeError(
            "the open plan is not the journaled case "
            f"(plan {identity.plan_pseudonym}/{identity.structure_set_hash}, journal "
            f"{recorded.plan_pseudonym}/{recorded.structure_set_hash})"
        )


def resume_session(
    journal: str | Path,
    open_session: SessionFactory,
    *,
    approver: Approver | None = None,
    on_iteration: IterationCallback | None = None,
) -> SessionSummary:
    """Continue the session of ``journal`` (file or session directory).

    Raises
    ------
    agent.session.journal.JournalCorrupt
        Malformed or truncated journal (nothing is written).
    ResumeError
        Finished session, changed template, or a different case.
    """
    path = journal_path(journal)
    log = read_journal(path)
    if log.summary is not None and log.summary.stop_reason not in RESUMABLE:
        raise ResumeError(
            f"session {log.header.session_id} already finished "
            f"({log.summary.stop_reason.value}); nothing to resume"
        )
    template = _load_checked(log, allow_template_change=False)
    config = log.header.config
    session = open_session(config)
    _check_case(log, session)
    policy = make_policy(config.policy)
    handle = Journal(path, append=True)
    loop = PlanningLoop(
        session,
        template,
        policy,
        config,
        path.parent,
        approver=approver,
        on_iteration=on_iteration,
        case_label=log.header.case.case_label,
    )
    return loop.continue_from(log, handle)


class IterationComparison(BaseModel):
    """Recorded vs replayed metrics of one iteration."""

    iteration: int
    recorded_score: float | None
    replayed_score: float | None
    max_abs_difference: float
    worst: str = ""  # the goal / criterion with the largest difference


class ReplayReport(BaseModel):
    """Outcome of a replay: whether every compared iteration matched within ``tolerance``."""

    journal: str
    replay_dir: str
    tolerance: float
    matched: bool
    recorded_iterations: int
    replayed_iterations: int
    comparisons: list[IterationComparison] = Field(default_factory=list)
    summary: SessionSummary
    note: str = ""


def _compare(recorded: IterationRecord, replayed: IterationRecord) -> IterationComparison:
    a, b = recorded.evaluation, replayed.evaluation
    worst, diff = "", 0.0
    if a is None or b is None:
        return IterationComparison(
            iteration=recorded.iteration,
            recorded_score=recorded.score,
            replayed_score=replayed.score,
            max_abs_difference=0.0 if a is b else float("inf"),
            worst="evaluation missing",
        )
    pairs: list[tuple[str, float, float]] = []
    old_goals = {g.goal_id: g.value for g in a.goals}
    pairs += [
        (f"goal {g.goal_id}", old_goals.get(g.goal_id, float("nan")), g.value) for g in b.goals
    ]
    old_crit = {c.criterion_id: c.value for c in a.criteria}
    pairs += [
        (f"criterion {c.criterion_id}", old_crit.get(c.criterion_id, float("nan")), c.value)
        for c in b.criteria
    ]
    if a.score is not None and b.score is not None:
        pairs.append(("score", a.score, b.score))
    if len(a.goals) != len(b.goals):
        pairs.append(("number of goals", len(a.goals), len(b.goals)))
    for name, x, y in pairs:
        d = abs(x - y) if x == x and y == y else float("inf")
        if d > diff:
            worst, diff = name, d
    return IterationComparison(
        iteration=recorded.iteration,
        recorded_score=a.score,
        replayed_score=b.score,
        max_abs_difference=diff,
        worst=worst,
    )


def replay_session(
    journal: str | Path,
    open_session: SessionFactory,
    *,
    out_dir: str | Path | None = None,
    tolerance: float = REPLAY_TOLERANCE,
    on_iteration: IterationCallback | None = None,
) -> ReplayReport:
    """Replay ``journal`` on a freshly opened plan and compare metrics iteration by iteration.

    The replay runs in ``out_dir`` (default: ``replay-<time>`` next to the journal) with the
    recorded config, except the policy (``replay``), no approval, and stop rules that let
    every recorded iteration run. A session that was resumed re-optimized from scratch at
    the resume point, so its replay is expected to match only up to there.
    """
    path = journal_path(journal)
    log = read_journal(path)
    template = _load_checked(log, allow_template_change=False)
    recorded = log.iterations
    if not recorded:
        raise ResumeError(f"journal {str(path)!r} has no completed iteration to replay")
    config = log.header.config.model_copy(
        update={
            "policy": "replay",
            "approve": False,
            "max_iterations": max(0, recorded[-1].iteration),
            "patience": 10_000,
            "stall_limit": 10_000,
        }
    )
    session = open_session(config)
    _check_case(log, session)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = Path(out_dir) if out_dir is not None else path.parent / f"replay-{stamp}"
    loop = PlanningLoop(
        session,
        template,
        ReplayPolicy(recorded),
        config,
        target,
        on_iteration=on_iteration,
        case_label=log.header.case.case_label,
    )
    summary = loop.run()
    replayed = {r.iteration: r for r in loop.state.records}
    comparisons = [_compare(r, replayed[r.iteration]) for r in recorded if r.iteration in replayed]
    matched = len(comparisons) == len(recorded) and all(
        c.max_abs_difference <= tolerance for c in comparisons
    )
    resumed = any(e.kind == "resumed" for e in log.events)
    return ReplayReport(
        journal=str(path),
        replay_dir=str(target),
        tolerance=tolerance,
        matched=matched,
        recorded_iterations=len(recorded),
        replayed_iterations=len(replayed),
        comparisons=comparisons,
        summary=summary,
        note="the recorded session was resumed (re-optimized from scratch there)"
        if resumed
        else "",
    )
