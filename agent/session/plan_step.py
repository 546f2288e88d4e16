"""The TPS side of one loop iteration, and the end of a session, as plain functions.

:func:`optimize_and_evaluate` runs optimize -> dose -> normalize -> evaluate with timings;
:func:`observe_dvhs` reads the DVHs a policy observes, :func:`dose_plane_reader` its dose
planes; :func:`finish_session` closes a
session (restore or final snapshot, then :func:`build_summary` journaled and written by
:func:`write_summary`). :class:`agent.session.loop.PlanningLoop` strings them together
with the journal and the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from agent.evaluation import Evaluation, evaluate_session
from agent.session.errors import JournalError
from agent.session.journaled_tps import JournaledTps
from agent.session.model_calls import total_model_calls
from agent.session.outcome import describe_stop, settle_stop_reason
from agent.session.records import (
    REVERT_POLICY,
    SUMMARY_FILENAME,
    IterationTimings,
    SessionHeader,
    SessionSummary,
    StopReason,
)
from agent.session.signals import describe_interrupt
from agent.session.state import SessionState
from agent.templates import SiteTemplate
from esapi_bridge.dto import (
    DoseSlice,
    DvhCurve,
    NormalizationRule,
    Objective,
    OptimizationResult,
    OptimizeRequest,
    SlicePlane,
)
from esapi_bridge.errors import CapabilityUnavailable, OptimizationFailed
from esapi_bridge.port import TpsSession
from rtplan_common.atomic_io import write_text_atomic


def optimize_and_evaluate(
    session: TpsSession,
    request: OptimizeRequest,
    norm_rule: NormalizationRule | None,
    template: SiteTemplate,
    structure_map: Mapping[str, str],
    rx_gy: float,
    clock: Callable[[], float],
) -> tuple[OptimizationResult, float, Evaluation, IterationTimings]:
    """Optimize, calculate dose, normalize and evaluate the plan, timing each step.

    Returns the optimizer result, the normalization factor (1 without a rule), the
    evaluation and the timings. Raises :class:`OptimizationFailed` when the optimizer
    reports failure.
    """
    timings = IterationTimings()
    t0 = clock()
    result = session.optimize(request)
    timings.optimize_s = clock() - t0
    if not result.success:
        raise OptimizationFailed(f"optimizer reported failure: {result.message or 'no reason'}")
    t0 = clock()
    session.calculate_dose()
    timings.dose_s = clock() - t0
    t0 = clock()
    factor = 1.0 if norm_rule is None else session.normalize(norm_rule)
    timings.normalize_s = clock() - t0
    t0 = clock()
    evaluation = evaluate_session(session, template, structure_map, rx_gy)
    timings.evaluate_s = clock() - t0
    return result, factor, evaluation, timings


def observe_dvhs(
    session: TpsSession, objectives: Sequence[Objective], evaluation: Evaluation
) -> dict[str, DvhCurve]:
    """DVHs of every structure with an objective or a goal (the policy's observation)."""
    wanted: list[str] = []
    for obj in objectives:
        sid = getattr(obj, "structure_id", None)
        if sid is not None and sid not in wanted:
            wanted.append(sid)
    for goal in evaluation.goals:
        if goal.plan_structure_id not in wanted:
            wanted.append(goal.plan_structure_id)
    return {sid: session.get_dvh(sid) for sid in wanted}


#: The dose planes a policy may look at (through the target, as the report shows them).
POLICY_DOSE_PLANES: tuple[SlicePlane, ...] = (
    SlicePlane.AXIAL,
    SlicePlane.CORONAL,
    SlicePlane.SAGITTAL,
)


def dose_plane_reader(session: TpsSession) -> Callable[[], tuple[DoseSlice, ...]]:
    """Reads the plan's dose planes on the first call and returns the same planes after
    (one read per iteration); ``()`` when the TPS offers no dose planes."""
    planes: list[tuple[DoseSlice, ...]] = []

    def read() -> tuple[DoseSlice, ...]:
        if not planes:
            try:
                planes.append(tuple(session.dose_slice(p) for p in POLICY_DOSE_PLANES))
            except CapabilityUnavailable:
                planes.append(())
        return planes[0]

    return read


def build_summary(
    header: SessionHeader,
    state: SessionState,
    reason: StopReason,
    message: str,
    restored: bool,
    wall_time_s: float,
) -> SessionSummary:
    """The session's summary (initial and final evaluations, counts, stop reason).

    The stop reason is settled against the plan left in the TPS
    (:func:`agent.session.outcome.settle_stop_reason`) and the summary's message is
    :func:`agent.session.outcome.describe_stop` of it, with ``message`` as the detail.
    """
    records = state.records
    final = None if restored else state.evaluation
    settled = settle_stop_reason(reason, final)
    return SessionSummary(
        session_id=header.session_id,
        config=header.config,
        template_name=header.template_name,
        template_hash=header.template_hash,
        case=header.case,
        initial_evaluation=records[0].evaluation if records else None,
        final_evaluation=final,
        best_iteration=None if state.best is None else records[state.best].iteration,
        stop_reason=settled,
        message=describe_stop(settled, final, message, restored=restored),
        iterations=sum(
            1 for r in records if r.iteration > 0 and r.proposal.policy != REVERT_POLICY
        ),
        inner_optimizations=state.inner_optimizations,
        rejected_proposals=state.rejected,
        model_calls=total_model_calls(state.model_call_stats()),
        restored_original=restored,
        wall_time_s=wall_time_s,
    )


def write_summary(out_dir: Path, summary: SessionSummary) -> Path:
    """Write ``summary.json`` in ``out_dir`` atomically; returns its path.

    Raises :class:`JournalError` (full disk, read-only directory; nothing is left behind).
    """
    path = out_dir / SUMMARY_FILENAME
    try:
        write_text_atomic(path, summary.model_dump_json(indent=2) + "\n")
    except OSError as exc:
        raise JournalError(f"cannot write the session summary: {exc}") from exc
    return path


def finish_session(
    tps: JournaledTps,
    header: SessionHeader,
    state: SessionState,
    reason: StopReason,
    message: str,
    wall_time_s: float,
    structure_ids: Sequence[str],
) -> SessionSummary:
    """End a session: on an error or interrupt journal it and restore the original
    objectives, else snapshot the final plan; then journal the summary, close the journal
    and write ``summary.json``."""
    restored = False
    if reason in (StopReason.ERROR, StopReason.INTERRUPTED):
        tps.event(reason.value, len(state.records) or None, describe_stop(reason, None, message))
        restored = tps.restore(header.original_objectives)
    elif state.evaluation is not None:
        try:
            tps.snapshot("final", structure_ids)
        except KeyboardInterrupt as exc:
            tps.event("snapshot_failed", None, f"final: {describe_interrupt(exc)}")
    summary = build_summary(header, state, reason, message, restored, wall_time_s)
    tps.journal.write(summary)
    tps.journal.close()
    summary = summary.model_copy(update={"chain_head": tps.journal.head})  # head after it
    write_summary(tps.out_dir, summary)
    return summary
