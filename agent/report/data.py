"""What a report shows, read from a session directory: records, snapshots and derived rows.

:func:`load_report_data` reads the journal (and ``summary.json``) and the plan
snapshots; the ``*_rows`` functions turn them into plain rows for the HTML tables,
the CSV files and ``report.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from agent.evaluation import Evaluation, GoalResult
from agent.report.artifacts import PlanSnapshot, SnapshotError, load_plan_snapshot
from agent.session.journal import JournalError, read_journal
from agent.session.journal_read import load_summary_file
from agent.session.records import (
    JOURNAL_FILENAME,
    SUMMARY_FILENAME,
    IterationRecord,
    SessionLog,
    SessionSummary,
)


class ReportError(RuntimeError):
    """A report cannot be built: no session there, or a record that does not parse."""


@dataclass
class ReportData:
    """Everything a report is built from.

    ``final_evaluation`` is the summary's final evaluation or, when there is none
    (unfinished session, original objectives restored), the last evaluated
    iteration; ``final_source`` says which, in words, for the report.
    """

    session_dir: Path
    log: SessionLog
    summary: SessionSummary | None
    initial_evaluation: Evaluation | None
    final_evaluation: Evaluation | None
    final_source: str
    initial_snapshot: PlanSnapshot | None
    final_snapshot: PlanSnapshot | None
    missing: list[str] = field(default_factory=list)

    @property
    def prescription_gy(self) -> float:
        """The plan's prescribed total dose."""
        return self.log.header.case.prescription_gy


def load_report_data(session_dir: Path) -> ReportData:
    """Read a session directory.

    Raises
    ------
    ReportError
        If the directory or its journal does not exist, or the journal, ``summary.json``
        or a snapshot file does not parse (the message names the file and, for the
        journal, the line).
    """
    session_dir = Path(session_dir)
    if not session_dir.is_dir():
        raise ReportError(f"no session directory at {str(session_dir)!r}")
    if not (session_dir / JOURNAL_FILENAME).is_file():
        raise ReportError(f"no {JOURNAL_FILENAME} in {str(session_dir)!r}: not a session directory")
    missing: list[str] = []
    log = _read_log(session_dir / JOURNAL_FILENAME, missing)
    summary = log.summary
    summary_file = session_dir / SUMMARY_FILENAME
    if summary is None and summary_file.is_file():
        try:
            summary = load_summary_file(summary_file)
        except (OSError, ValueError) as exc:  # ValidationError is a ValueError
            first = str(exc).splitlines()[0]
            raise ReportError(
                f"{str(summary_file)!r} is not a valid session summary: {first}"
            ) from exc
    if summary is not None and summary.clinical_reference is None and summary_file.is_file():
        summary = _with_file_reference(summary, summary_file)
    if summary is None:
        missing.append(
            "the session is unfinished: the journal has no summary (still running, killed, "
            "or crashed); results below are those of the last recorded iteration"
        )
    if not log.iterations:
        missing.append("no iteration was recorded: there is no plan to report on")
    snapshots: dict[str, PlanSnapshot | None] = {}
    for label in ("initial", "final"):
        try:
            snapshots[label] = load_plan_snapshot(session_dir, label)
        except SnapshotError as exc:
            raise ReportError(str(exc)) from exc
        snap = snapshots[label]
        if snap is None:
            missing.append(
                f"no {label} plan snapshot (dvh_{label}.json): no {label} DVH or dose planes"
            )
        elif snap.slices_missing:
            missing.append(f"no slices_{label}.json: no {label} dose planes")
        elif snap.slices_unavailable is not None:
            missing.append(
                f"{label} dose planes unavailable from the TPS: {snap.slices_unavailable}"
            )
    initial_eval, final_eval, final_source = _pick_evaluations(log.iterations, summary)
    if initial_eval is None:
        missing.append("no initial evaluation (iteration 0 was not evaluated)")
    if final_eval is None:
        restored = summary is not None and summary.restored_original
        missing.append(
            "no final evaluation" + (" (the original objectives were restored)" if restored else "")
        )
    return ReportData(
        session_dir=session_dir,
        log=log,
        summary=summary,
        initial_evaluation=initial_eval,
        final_evaluation=final_eval,
        final_source=final_source,
        initial_snapshot=snapshots["initial"],
        final_snapshot=snapshots["final"],
        missing=missing,
    )


def _read_log(journal: Path, missing: list[str]) -> SessionLog:
    """Read the journal read-only (no lock) and verify its HMAC chain.

    A torn last line (the session was killed while writing it) is left out and noted; a
    journal that cannot be verified here (another installation's secret, schema v1) is
    reported with a prominent UNVERIFIED note first; a tampered or truncated one is
    refused (:class:`ReportError` naming the first entry that does not match).
    """
    try:
        log = read_journal(journal)
    except JournalError as exc:
        raise ReportError(str(exc)) from exc
    for notice in log.notices:
        logger.warning(notice)
    missing.extend(log.notices)
    return log


def _last_evaluated(iterations: Sequence[IterationRecord]) -> IterationRecord | None:
    return next((it for it in reversed(iterations) if it.evaluation is not None), None)


def _pick_evaluations(
    iterations: Sequence[IterationRecord], summary: SessionSummary | None
) -> tuple[Evaluation | None, Evaluation | None, str]:
    first = iterations[0].evaluation if iterations else None
    initial = summary.initial_evaluation if summary and summary.initial_evaluation else first
    last = _last_evaluated(iterations)
    if summary is not None and summary.final_evaluation is not None:
        return initial, summary.final_evaluation, "final plan (session summary)"
    if last is None:
        return initial, None, "none"
    if summary is not None and summary.restored_original:
        why = f"last evaluated plan, iteration {last.iteration} (not kept: original objectives restored)"
    elif summary is not None:
        why = (
            f"last evaluated plan, iteration {last.iteration} (the summary has no final evaluation)"
        )
    else:
        why = f"latest plan, iteration {last.iteration} (session unfinished)"
    return initial, last.evaluation, why


# ------------------------------------------------------------------- formatting
def status_key(status: object) -> str:
    """CSS-class-like key of a goal status: ``met``, ``within_variation`` or ``failed``."""
    text = str(getattr(status, "value", status)).strip().lower().replace(" ", "_").replace("-", "_")
    if text.startswith("within"):
        return "within_variation"
    return text


STATUS_LABELS = {"met": "Met", "within_variation": "Within variation", "failed": "Failed"}
_DECIMALS = {"Gy": 2, "%": 1, "cm3": 2, "": 3}
_COMPARATORS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "="}


def fmt_value(value: float | None, unit: str) -> str:
    """A metric value with the usual precision of its unit (``"—"`` if none)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    text = f"{value:.{_DECIMALS.get(unit, 2)}f}"
    return f"{text} {unit}".strip() if unit and unit != "%" else f"{text}{unit}"


def fmt_goal(goal: GoalResult) -> str:
    """``D95% ≥ 79.20 Gy``."""
    comparator = _COMPARATORS.get(str(goal.comparator), str(goal.comparator))
    return f"{goal.metric} {comparator} {fmt_value(goal.limit, goal.unit)}"


def _goal_part(goal: GoalResult | None, prefix: str) -> dict[str, Any]:
    if goal is None:
        return {
            f"{prefix}_value": None,
            f"{prefix}_status": "",
            f"{prefix}_margin": None,
        }
    return {
        f"{prefix}_value": goal.value,
        f"{prefix}_status": status_key(goal.status),
        f"{prefix}_margin": goal.margin,
    }


def goal_rows(initial: Evaluation | None, final: Evaluation | None) -> list[dict[str, Any]]:
    """One row per goal (template order): definition, initial and final value, status, margin."""
    first = {g.goal_id: g for g in initial.goals} if initial else {}
    last = {g.goal_id: g for g in final.goals} if final else {}
    order = list(last) + [gid for gid in first if gid not in last]
    rows: list[dict[str, Any]] = []
    for gid in order:
        ref = last.get(gid) or first[gid]
        g0, g1 = first.get(gid), last.get(gid)
        change = better = None
        if g0 is not None and g1 is not None:
            change = g1.value - g0.value
            better = g1.margin > g0.margin if g1.margin != g0.margin else None
        rows.append(
            {
                "goal_id": gid,
                "priority": ref.priority,
                "structure_id": ref.structure_id,
                "plan_structure_id": ref.plan_structure_id,
                "metric": ref.metric,
                "comparator": str(ref.comparator),
                "limit": ref.limit,
                "unit": ref.unit,
                "variation": ref.variation,
                "goal_text": fmt_goal(ref),
                **_goal_part(g0, "initial"),
                **_goal_part(g1, "final"),
                "change": change,
                "improved": better,
            }
        )
    rows.sort(key=lambda r: r["priority"])  # stable: template order within a priority
    return rows


def score_text(evaluation: Evaluation | None) -> str:
    """``"7.50/9"`` when the template scores plans, else ``"3/5 goals met"``; ``"—"`` if none."""
    if evaluation is None:
        return "—"
    if evaluation.score is not None:
        top = f"/{evaluation.max_score:g}" if evaluation.max_score is not None else ""
        return f"{evaluation.score:.2f}{top}"
    return f"{status_counts(evaluation)['met']}/{len(evaluation.goals)} goals met"


def status_counts(evaluation: Evaluation | None) -> dict[str, int]:
    """How many goals are met / within variation / failed."""
    counts = {"met": 0, "within_variation": 0, "failed": 0}
    for goal in evaluation.goals if evaluation else []:
        key = status_key(goal.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def iteration_rows(iterations: Sequence[IterationRecord]) -> list[dict[str, Any]]:
    """One row per iteration: score, goals, optimizer, verdict and wall times (s)."""
    rows: list[dict[str, Any]] = []
    for it in iterations:
        ev, opt = it.evaluation, it.optimization
        counts = status_counts(ev)
        rows.append(
            {
                "iteration": it.iteration,
                "policy": it.proposal.policy,
                "score": None if ev is None else ev.score,
                "max_score": None if ev is None else ev.max_score,
                "all_priority1_met": None if ev is None else ev.all_priority1_met,
                "goals_met": counts["met"] if ev else None,
                "goals_within_variation": counts["within_variation"] if ev else None,
                "goals_failed": counts["failed"] if ev else None,
                "objective_value": None if opt is None else opt.total_objective_value,
                "optimizer_success": None if opt is None else opt.success,
                "optimizer_iterations": None if opt is None else opt.iterations,
                "inner_optimizations": it.inner_optimizations,
                "normalization_factor": it.normalization_factor,
                "verdict": it.verdict.status.value,
                "rejected_proposals": len(it.rejected),
                "approval": it.approval.value,
                **{f"{k}": v for k, v in it.timings.model_dump().items()},
                "timestamp": it.timestamp,
            }
        )
    return rows


def _with_file_reference(summary: SessionSummary, summary_file: Path) -> SessionSummary:
    """The journal's summary with the clinical reference that only ``summary.json`` holds."""
    try:
        reference = load_summary_file(summary_file).clinical_reference
    except (OSError, ValueError):  # an unreadable summary.json: the journal's summary stands
        return summary
    return (
        summary
        if reference is None
        else summary.model_copy(update={"clinical_reference": reference})
    )
