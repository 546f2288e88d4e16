"""The planning loop: observe -> evaluate -> remember -> propose -> guard -> apply ->
optimize -> dose -> normalize -> journal, until a stop rule fires.

Stop rules: :meth:`agent.session.state.SessionState.stop_reason`, the policy being done,
the clinician's stop, guardrail rejections exhausted, an interrupt (Ctrl-C, SIGTERM/SIGHUP
via :class:`agent.session.signals.InterruptOnSignals`) or an unrecoverable error, after
which the plan's original objectives are restored. On a regular stop the best plan is kept
(a ``revert-to-best`` record if the last iteration is worse); the stop reason is named for
the plan left in the TPS (:mod:`agent.session.outcome`).

Iteration 0 applies the template's initial objectives. Optimizations restart from scratch
by default (``SessionConfig.optimization_mode``), so a plan is a function of its
objectives: the revert, a resume, a replay and look-ahead trials
(:mod:`agent.session.lookahead`) reproduce it exactly. Every change to the TPS is journaled
(fsync) first (:class:`agent.session.journaled_tps.JournaledTps`); a session that cannot
start creates nothing (:mod:`agent.session.start`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from agent.evaluation import Evaluation, EvaluationError
from agent.policies.base import Policy, PolicyContext, PolicyError
from agent.session.approval import Approver
from agent.session.guardrails import GuardLimits, Guardrails
from agent.session.journal import Journal, JournalError
from agent.session.journaled_tps import JournaledTps
from agent.session.lookahead import TrialRunner
from agent.session.memory import Memory, make_step
from agent.session.model_calls import ModelCallStats
from agent.session.negotiation import SessionAborted, context_factory, negotiate
from agent.session.outcome import KEEP_BEST
from agent.session.plan_step import (
    dose_plane_reader,
    finish_session,
    observe_dvhs,
    optimize_and_evaluate,
)
from agent.session.records import (
    JOURNAL_FILENAME,
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
from agent.session.signals import describe_interrupt
from agent.session.start import (
    check_plan,
    leave_no_empty_dirs,
    plan_identifiers,
    session_header,
    template_start,
)
from agent.session.state import SessionState
from agent.templates import SiteTemplate
from esapi_bridge.dto import (
    Objective,
    OptimizationMode,
    OptimizationResult,
    OptimizeRequest,
    PlanInfo,
    StructureInfo,
)
from esapi_bridge.errors import TpsError
from esapi_bridge.port import TpsSession

IterationCallback = Callable[[IterationRecord], None]


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
        self.tps: JournaledTps | None = None

    # ----------------------------------------------------------------- entry points
    def run(self) -> SessionSummary:
        """Run a new session: checks, snapshot, iteration 0, then the policy's iterations.

        Raises (before any change to the TPS, leaving no session directory behind):
        :class:`JournalError` (output directory not writable, disk full, journal exists),
        :class:`PlanLocked`, :class:`agent.templates.StructureMatchError` (template/plan
        mismatch). Once the journal has its header, failures are journaled instead.
        """
        start = self.clock()
        check = check_plan(self.session, self.template)
        self._setup(check.info, check.structures, check.structure_map)
        header = session_header(check, self.template, self.config, self.case_label, self.policy)
        with leave_no_empty_dirs(self.out_dir):
            journal = Journal(self.out_dir / JOURNAL_FILENAME)
            try:
                journal.write(header)
            except BaseException:
                journal.close()
                if journal.entries_written == 0:  # nothing happened: leave no journal
                    journal.path.unlink(missing_ok=True)
                raise
        self.journal, self.header = journal, header
        self.tps = JournaledTps(
            self.session, journal, self.out_dir, save_snapshots=self.save_snapshots
        )
        return self._drive(start, first_iteration=0)

    def continue_from(self, log: SessionLog, journal: Journal) -> SessionSummary:
        """Continue a journaled session (used by :func:`agent.session.resume.resume_session`)."""
        start = self.clock()
        self.journal = journal
        self.header = log.header
        self.tps = JournaledTps(
            self.session, journal, self.out_dir, save_snapshots=self.save_snapshots
        )
        info = self.session.plan_info()
        structures = self.session.structures()
        self._setup(info, structures, log.header.structure_map)
        st = self.state
        st.load(log.iterations)
        self.memory = Memory.from_records(log.iterations, self.config.memory_length)
        journal.write(SessionEvent(kind="resumed", message=f"{len(log.iterations)} iterations"))
        if not log.iterations:
            return self._drive(start, first_iteration=0)
        last = log.iterations[-1]
        try:
            self.tps.apply(last.iteration, last.applied_objectives)
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
        self, info: PlanInfo, structures: list[StructureInfo], structure_map: dict[str, str]
    ) -> None:
        self.rx_gy = rx_gy = info.total_dose_gy
        self.structures = structures
        self.structure_map = structure_map
        limits = self.guard_limits or GuardLimits()
        if not self.config.step_bounds:
            limits = limits.without_step_bounds()
        self.guard = Guardrails(self.template, structure_map, structures, rx_gy, limits)
        self.norm_rule = self.template.normalization_rule(structure_map, rx_gy)
        self.identifiers = plan_identifiers(
            info.plan_id, structures, structure_map, self.case_label
        )

    def _drive(self, start: float, first_iteration: int, skip_zero: bool = False) -> SessionSummary:
        try:
            if not skip_zero:
                t_start = self.clock()
                proposal, verdict, applied = template_start(
                    self.template, self.guard, self.structure_map, self.rx_gy
                )
                self._plan_fixed(0, proposal, verdict, t_start, applied, "initial")
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
            self._unrecorded_calls(stop.proposal.model_calls if stop.proposal else None)
        except (KeyboardInterrupt, TpsError, PolicyError, EvaluationError) as exc:
            self._unrecorded_calls(getattr(exc, "model_calls", None))
            return self._finish(start, *self._abort_reason(exc))
        except JournalError:
            assert self.tps is not None and self.header is not None
            self.tps.restore(self.header.original_objectives, journaled=False)
            raise
        except Exception as exc:
            self._finish(start, StopReason.ERROR, f"unexpected {type(exc).__name__}: {exc}")
            raise
        if reason in KEEP_BEST:
            try:
                self._revert_to_best()
            except (KeyboardInterrupt, TpsError, EvaluationError) as exc:
                return self._finish(start, *self._abort_reason(exc))
        return self._finish(start, reason, message)

    def _revert_to_best(self) -> None:
        """Re-apply the best iteration's objectives if the session ended on a worse plan."""
        t_start = self.clock()
        proposal = self.state.revert_proposal()
        if proposal is None:
            return
        accepted = GuardVerdict(status=VerdictStatus.ACCEPTED)
        self._plan_fixed(self.state.records[-1].iteration + 1, proposal, accepted, t_start)

    def _unrecorded_calls(self, stats: ModelCallStats | None) -> None:
        """Journal model calls that reached no iteration record (a done proposal, a failure)."""
        if stats is None or self.tps is None:
            return
        self.state.unrecorded_model_calls.append(stats)
        iteration = self.state.records[-1].iteration + 1 if self.state.records else None
        self.tps.event("model_calls", iteration, "calls of the last proposal", stats)

    def _abort_reason(self, exc: BaseException) -> tuple[StopReason, str]:
        if isinstance(exc, KeyboardInterrupt):
            return StopReason.INTERRUPTED, describe_interrupt(exc)
        return StopReason.ERROR, f"{type(exc).__name__}: {exc}"

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
        assert self.tps is not None
        objectives = list(proposal.objectives) if applied is None else applied
        self.tps.apply(iteration, objectives)
        result, factor, evaluation, timings = self._timed_optimize(OptimizationMode.RESTART)
        timings.total_s = self.clock() - t_start
        if snapshot is not None:
            self.tps.snapshot(snapshot, list(self.structure_map.values()))
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
        assert st.evaluation is not None and self.tps is not None
        tps, current_eval = self.tps, st.evaluation
        t_start = self.clock()
        timings = IterationTimings()
        dvhs = observe_dvhs(self.session, st.objectives, current_eval)
        trials = TrialRunner(
            tps,
            self.guard,
            st.objectives,
            iteration,
            self.config.lookahead_trials,
            self._trial_optimize,
            self.policy.name,
        )

        make_context = context_factory(
            PolicyContext(
                iteration=iteration,
                max_iterations=self.config.max_iterations,
                template=self.template,
                structure_map=self.structure_map,
                prescription_gy=self.rx_gy,
                structures=self.structures,
                objectives=st.objectives,
                evaluation=current_eval,
                optimization=st.optimization,
                memory=self.memory,
                history=st.records,
                dvhs=dvhs,
                identifiers=self.identifiers,
                trial=trials if trials.limit > 0 else None,
                trials_left=trials.left,
                dose_planes=dose_plane_reader(self.session),
            )
        )

        def on_event(kind: str, message: str) -> None:
            if kind == "rejected":
                st.rejected += 1
            tps.event(kind, iteration, message)

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
            clock=self.clock,
        )
        tps.apply(iteration, deal.applied)
        previous_objectives = st.objectives
        mode = deal.proposal.optimization_mode or self.config.optimization_mode
        if trials.ran:  # the commit starts from the same state as the trials did
            mode = OptimizationMode.RESTART
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
                trials=trials.records,
                verdict=deal.verdict,
                approval=deal.action,
                feedback="\n".join(deal.feedback) or None,
                applied_objectives=deal.applied,
                optimization_mode=mode,
                optimization=result,
                inner_optimizations=1 + trials.ran,
                normalization_factor=factor,
                evaluation=evaluation,
                timings=timings,
            )
        )

    def _trial_optimize(self) -> tuple[Evaluation, float]:
        _, _, evaluation, timings = self._timed_optimize(OptimizationMode.RESTART)
        return evaluation, timings.optimize_s

    def _record(self, record: IterationRecord) -> None:
        assert self.journal is not None
        self.state.add(record, self.config.min_improvement)
        self.journal.write(record)
        if self.on_iteration is not None:
            self.on_iteration(record)

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

    def _finish(self, start: float, reason: StopReason, message: str) -> SessionSummary:
        assert self.header is not None and self.tps is not None
        wall_s = self.state.prior_wall_s + (self.clock() - start)
        ids = list(self.structure_map.values())
        return finish_session(self.tps, self.header, self.state, reason, message, wall_s, ids)
