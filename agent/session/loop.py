"""The planning loop: observe -> evaluate -> remember -> propose -> guard -> apply ->
optimize -> dose -> normalize -> journal, until a stop rule fires.

Stop rules (:meth:`agent.session.state.SessionState.stop_reason`): every priority-1 goal
met and the score at its maximum or no longer improving (``patience``); no improvement
for ``stall_limit`` iterations; the policy is done; the iteration limit; the clinician's
stop; guardrail rejections exhausted; Ctrl-C or an unrecoverable error, after which the
plan's original objectives are restored. On a regular stop the best plan is kept: if
the last iteration is worse (:func:`agent.session.stopping.better`), the best iteration's
objectives are applied again (a ``revert-to-best`` record).

Iteration 0 applies the template's initial objectives. Every optimization restarts from
scratch by default (``SessionConfig.optimization_mode``), so that a plan is a function
of its objectives: the revert, a resume and a replay reproduce it exactly; ``continue``
warm-starts from the last fluence instead. Everything the TPS is about to be asked to
change is journaled (fsync) first."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from loguru import logger

from agent.evaluation import Evaluation, EvaluationError
from agent.policies.base import Policy, PolicyContext, PolicyError
from agent.session.approval import Approver
from agent.session.guardrails import GuardLimits, Guardrails
from agent.session.identity import case_identity, template_hash
from agent.session.journal import Journal, JournalError
from agent.session.memory import Memory, make_step
from agent.session.negotiation import SessionAborted, negotiate
from agent.session.plan_step import (
    build_summary,
    observe_dvhs,
    optimize_and_evaluate,
    write_summary,
)
from agent.session.records import (
    JOURNAL_FILENAME,
    REVERT_POLICY,
    ApplyIntent,
    GuardVerdict,
    IterationRecord,
    IterationTimings,
    Proposal,
    SessionConfig,
    SessionEvent,
    SessionHeader,
    SessionLog,
    SessionSummary,
    StopReason,
    VerdictStatus,
)
from agent.session.state import SessionState
from agent.session.stopping import better
from agent.templates import SiteTemplate, match_structures
from esapi_bridge.dto import (
    DvhCurve,
    Objective,
    OptimizationMode,
    OptimizationResult,
    OptimizeRequest,
    StructureInfo,
)
from esapi_bridge.errors import PlanLocked, TpsError
from esapi_bridge.port import TpsSession

IterationCallback = Callable[[IterationRecord], None]
#: Stop reasons after which the best plan of the session is kept (reverted to if needed).
_KEEP_BEST = frozenset(
    {
        StopReason.GOALS_MET,
        StopReason.NO_IMPROVEMENT,
        StopReason.POLICY_DONE,
        StopReason.ITERATION_LIMIT,
        StopReason.GUARD_REJECTED,
    }
)


class PlanningLoop:
    """One planning session on one open plan.

    Parameters
    ----------
    session
        The TPS session (the only way the loop touches the TPS).
    template
        The site template.
    policy
        The planner proposing objectives.
    config
        Session settings (recorded in the journal).
    out_dir
        The session directory (``journal.jsonl``, ``summary.json``); it must not hold a
        journal already (use :func:`agent.session.resume.resume_session` to continue one).
    approver
        Reviews every proposal before it reaches the TPS (``--approve``); ``None`` = auto.
    on_iteration
        Called with each completed iteration record (progress display).
    guard_limits
        Numeric limits of the guardrails.
    case_label
        A non-identifying label of simulated cases (``"prostate-basic/seed0"``).
    max_rejections
        Re-asks of the policy after guardrail rejections before the session stops.
    save_snapshots
        Save DVH / dose-plane snapshots (``initial``, ``final``) for the report.
    """

    def __init__(
        self,
        session: TpsSession,
        template: SiteTemplate,
        policy: Policy,
        config: SessionConfig,
        out_dir: str | Path,
        *,
        approver: Approver | None = None,
        on_iteration: IterationCallback | None = None,
        guard_limits: GuardLimits | None = None,
        case_label: str | None = None,
        max_rejections: int = 3,
        save_snapshots: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.session = session
        self.template = template
        self.policy = policy
        self.config = config
        self.out_dir = Path(out_dir)
        self.approver = approver
        self.on_iteration = on_iteration
        self.guard_limits = guard_limits
        self.case_label = case_label
        self.max_rejections = max_rejections
        self.save_snapshots = save_snapshots
        self.clock = clock
        self.memory = Memory(config.memory_length)
        self.state = SessionState()
        self.journal: Journal | None = None
        self.header: SessionHeader | None = None

    # ----------------------------------------------------------------- entry points
    def run(self) -> SessionSummary:
        """Run a new session: checks, snapshot, iteration 0, then the policy's iterations.

        Raises (before any change to the TPS): :class:`JournalError` (output directory not
        writable, disk full, journal exists), :class:`PlanLocked`,
        :class:`agent.templates.StructureMatchError` (template/plan mismatch).
        """
        start = self.clock()
        self.journal = Journal(self.out_dir / JOURNAL_FILENAME)
        try:
            info = self.session.plan_info()
            if info.approval_status.is_locked:
                raise PlanLocked(
                    f"plan is {info.approval_status.value}; work on an unapproved copy"
                )
            structures = self.session.structures()
            structure_map = match_structures(self.template, structures)
            original = self.session.get_objectives()
        except BaseException:
            self.journal.close()
            self.journal.path.unlink(missing_ok=True)  # nothing happened: leave no journal
            raise
        self.header = SessionHeader(
            session_id=uuid.uuid4().hex[:12],
            config=self.config,
            template_name=self.template.name,
            template_hash=template_hash(self.template),
            case=case_identity(info, structures, self.case_label),
            structure_map=structure_map,
            original_objectives=original,
        )
        self.journal.write(self.header)
        self._setup(info.total_dose_gy, structures, structure_map)
        return self._drive(start, first_iteration=0)

    def continue_from(self, log: SessionLog, journal: Journal) -> SessionSummary:
        """Continue a journaled session (used by :func:`agent.session.resume.resume_session`)."""
        start = self.clock()
        self.journal = journal
        self.header = log.header
        info = self.session.plan_info()
        structures = self.session.structures()
        self._setup(info.total_dose_gy, structures, log.header.structure_map)
        st = self.state
        st.load(log.iterations)
        self.memory = Memory.from_records(log.iterations, self.config.memory_length)
        journal.write(SessionEvent(kind="resumed", message=f"{len(log.iterations)} iterations"))
        if not log.iterations:
            return self._drive(start, first_iteration=0)
        last = log.iterations[-1]
        try:
            self._apply(last.iteration, last.applied_objectives)
            t0 = self.clock()
            result, factor, evaluation, _ = self._timed_optimize(OptimizationMode.RESTART)
            journal.write(
                SessionEvent(
                    kind="reoptimized",
                    iteration=last.iteration,
                    message=f"score {evaluation.score} (recorded {last.score}), "
                    f"normalization {factor:.4f}, {self.clock() - t0:.1f} s",
                )
            )
        except (KeyboardInterrupt, TpsError, EvaluationError) as exc:
            return self._finish(start, *self._abort_reason(exc))
        st.objectives = list(last.applied_objectives)
        st.evaluation, st.optimization = evaluation, result
        return self._drive(start, first_iteration=last.iteration + 1, skip_zero=True)

    # ----------------------------------------------------------------- internals
    def _setup(
        self, rx_gy: float, structures: list[StructureInfo], structure_map: dict[str, str]
    ) -> None:
        self.rx_gy = rx_gy
        self.structures = structures
        self.structure_map = structure_map
        self.guard = Guardrails(self.template, structure_map, structures, rx_gy, self.guard_limits)
        self.norm_rule = self.template.normalization_rule(structure_map, rx_gy)

    def _drive(self, start: float, first_iteration: int, skip_zero: bool = False) -> SessionSummary:
        try:
            if not skip_zero:
                self._iteration_zero()
            iteration = max(first_iteration, 1)
            while True:
                reason = self.state.stop_reason(iteration, self.config)
                if reason is not None:
                    message = ""
                    break
                self._iteration(iteration)
                iteration += 1
        except SessionAborted as stop:
            reason, message = stop.reason, stop.message
        except (KeyboardInterrupt, TpsError, PolicyError, EvaluationError) as exc:
            return self._finish(start, *self._abort_reason(exc))
        except JournalError:
            self._restore(journaled=False)
            raise
        except Exception as exc:
            self._finish(start, StopReason.ERROR, f"unexpected {type(exc).__name__}: {exc}")
            raise
        if reason in _KEEP_BEST:
            try:
                self._revert_to_best()
            except (KeyboardInterrupt, TpsError, EvaluationError) as exc:
                return self._finish(start, *self._abort_reason(exc))
        return self._finish(start, reason, message)

    def _revert_to_best(self) -> None:
        """Re-apply the best iteration's objectives if the session ended on a worse plan."""
        st = self.state
        if st.best is None or st.best == len(st.records) - 1 or st.evaluation is None:
            return
        best = st.records[st.best]
        assert best.evaluation is not None
        if not better(best.evaluation, st.evaluation, 0.0):
            return
        t_start = self.clock()
        proposal = Proposal(
            objectives=list(best.applied_objectives),
            rationale=f"the session ended on a worse plan: back to iteration {best.iteration}",
            policy=REVERT_POLICY,
            optimization_mode=OptimizationMode.RESTART,
        )
        accepted = GuardVerdict(status=VerdictStatus.ACCEPTED)
        self._plan_fixed(st.records[-1].iteration + 1, proposal, accepted, t_start)

    def _abort_reason(self, exc: BaseException) -> tuple[StopReason, str]:
        if isinstance(exc, KeyboardInterrupt):
            return StopReason.INTERRUPTED, "interrupted (Ctrl-C)"
        return StopReason.ERROR, f"{type(exc).__name__}: {exc}"

    def _iteration_zero(self) -> None:
        t_start = self.clock()
        objectives = self.template.initial_objectives(self.structure_map, self.rx_gy)
        proposal = Proposal(
            objectives=objectives, rationale="template initial objectives", policy="template"
        )
        verdict, applied = self.guard.check(proposal, None)
        if applied is None:
            raise SessionAborted(
                StopReason.ERROR, "template objectives rejected: " + "; ".join(verdict.reasons)
            )
        self._plan_fixed(0, proposal, verdict, t_start, applied, snapshot="initial")

    def _plan_fixed(
        self,
        iteration: int,
        proposal: Proposal,
        verdict: GuardVerdict,
        t_start: float,
        applied: list[Objective] | None = None,
        snapshot: str | None = None,
    ) -> None:
        """Apply objectives that need no policy (template start, revert), plan from scratch."""
        objectives = list(proposal.objectives) if applied is None else applied
        self._apply(iteration, objectives)
        result, factor, evaluation, timings = self._timed_optimize(OptimizationMode.RESTART)
        timings.total_s = self.clock() - t_start
        if snapshot is not None:
            self._snapshot(snapshot)
        self._record(
            IterationRecord(
                iteration=iteration,
                proposal=proposal,
                verdict=verdict,
                applied_objectives=objectives,
                optimization_mode=OptimizationMode.RESTART,
                optimization=result,
                inner_optimizations=1,
                normalization_factor=factor,
                evaluation=evaluation,
                timings=timings,
            )
        )

    def _iteration(self, iteration: int) -> None:
        st = self.state
        assert st.evaluation is not None
        current_eval = st.evaluation
        t_start = self.clock()
        timings = IterationTimings()
        dvhs = self._observe_dvhs()

        def make_context(
            rejection: GuardVerdict | None, attempt: int, feedback: tuple[str, ...]
        ) -> PolicyContext:
            return PolicyContext(
                iteration=iteration,
                max_iterations=self.config.max_iterations,
                template=self.template,
                structure_map=self.structure_map,
                prescription_gy=self.rx_gy,
                structures=self.structures,
                objectives=list(st.objectives),
                evaluation=current_eval,
                optimization=st.optimization,
                memory=self.memory.copy(),
                history=list(st.records),
                feedback=feedback,
                rejection=rejection,
                attempt=attempt,
                dvhs=dvhs,
            )

        def on_event(kind: str, message: str) -> None:
            if kind == "rejected":
                st.rejected += 1
            self._event(kind, iteration, message)

        def done_reason() -> StopReason:
            met = self.state.best_evaluation().all_priority1_met
            return StopReason.GOALS_MET if met else StopReason.POLICY_DONE

        deal = negotiate(
            self.policy,
            self.guard,
            st.objectives,
            make_context,
            iteration=iteration,
            approver=self.approver,
            feedback_log=st.feedback,
            timings=timings,
            on_event=on_event,
            max_rejections=self.max_rejections,
            done_reason=done_reason,
            clock=self.clock,
        )
        self._apply(iteration, deal.applied)
        previous_objectives = st.objectives
        mode = deal.proposal.optimization_mode or self.config.optimization_mode
        result, factor, evaluation, opt_timings = self._timed_optimize(mode)
        for name in ("optimize_s", "dose_s", "normalize_s", "evaluate_s"):
            setattr(timings, name, getattr(opt_timings, name))
        timings.total_s = self.clock() - t_start
        self.memory.append(
            make_step(iteration, previous_objectives, deal.applied, current_eval, evaluation)
        )
        self._record(
            IterationRecord(
                iteration=iteration,
                proposal=deal.proposal,
                rejected=deal.rejected,
                verdict=deal.verdict,
                approval=deal.action,
                feedback="\n".join(deal.feedback) or None,
                applied_objectives=deal.applied,
                optimization_mode=mode,
                optimization=result,
                inner_optimizations=1,
                normalization_factor=factor,
                evaluation=evaluation,
                timings=timings,
            )
        )

    def _observe_dvhs(self) -> dict[str, DvhCurve]:
        assert self.state.evaluation is not None
        return observe_dvhs(self.session, self.state.objectives, self.state.evaluation)

    def _record(self, record: IterationRecord) -> None:
        assert self.journal is not None
        self.state.add(record, self.config.min_improvement)
        self.journal.write(record)
        if self.on_iteration is not None:
            self.on_iteration(record)

    def _apply(self, iteration: int, objectives: list[Objective]) -> None:
        assert self.journal is not None
        self.journal.write(ApplyIntent(iteration=iteration, objectives=objectives))
        self.session.set_objectives(objectives)

    def _timed_optimize(
        self, mode: OptimizationMode
    ) -> tuple[OptimizationResult, float, Evaluation, IterationTimings]:
        self.state.inner_optimizations += 1
        request = OptimizeRequest(max_iterations=self.config.optimizer_iterations, mode=mode)
        return optimize_and_evaluate(
            self.session,
            request,
            self.norm_rule,
            self.template,
            self.structure_map,
            self.rx_gy,
            self.clock,
        )

    def _snapshot(self, label: str) -> None:
        """Save DVHs and dose planes for the report; a failure is journaled, not fatal."""
        if not self.save_snapshots:
            return
        try:
            from agent.report.artifacts import save_plan_snapshot

            ids = [sid for sid in self.structure_map.values()]
            save_plan_snapshot(self.session, self.out_dir, label, ids)
        except (TpsError, OSError, ImportError, ValueError) as exc:
            self._event("snapshot_failed", None, f"{label}: {type(exc).__name__}: {exc}")

    def _event(self, kind: str, iteration: int | None, message: str) -> None:
        assert self.journal is not None
        self.journal.write(SessionEvent(kind=kind, iteration=iteration, message=message))

    def _restore(self, journaled: bool = True) -> bool:
        """Put the plan's original objectives back; ``True`` on success."""
        assert self.header is not None
        original = self.header.original_objectives
        try:
            if journaled and self.journal is not None:
                self.journal.write(ApplyIntent(iteration=0, objectives=original, purpose="restore"))
            self.session.set_objectives(original)
        except (TpsError, JournalError, KeyboardInterrupt) as exc:
            logger.error(f"could not restore the original objectives: {exc}")
            if journaled and self.journal is not None:
                with contextlib.suppress(JournalError):
                    self._event("restore_failed", None, str(exc))
            return False
        if journaled:
            self._event("restored", None, f"{len(original)} original objectives restored")
        return True

    def _finish(self, start: float, reason: StopReason, message: str) -> SessionSummary:
        assert self.journal is not None and self.header is not None
        st = self.state
        restored = False
        if reason in (StopReason.ERROR, StopReason.INTERRUPTED):
            self._event(reason.value, len(st.records) or None, message)
            restored = self._restore()
        elif st.evaluation is not None:
            try:
                self._snapshot("final")
            except KeyboardInterrupt:
                self._event("snapshot_failed", None, "final: interrupted")
        summary = build_summary(
            self.header,
            st,
            reason,
            message,
            restored,
            st.prior_wall_s + (self.clock() - start),
        )
        self.journal.write(summary)
        self.journal.close()
        write_summary(self.out_dir, summary)
        return summary
