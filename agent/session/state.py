"""The loop's running state: records so far, the current plan, the best plan, the stop rules,
and the plan to go back to when the session ended on a worse one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.evaluation import Evaluation
from agent.session.model_calls import ModelCallStats
from agent.session.outcome import goal_reason
from agent.session.records import (
    REVERT_POLICY,
    IterationRecord,
    Proposal,
    SessionConfig,
    StopReason,
)
from agent.session.stopping import better
from esapi_bridge.dto import Objective, OptimizationMode, OptimizationResult


def calls_in_order(
    records: Iterable[IterationRecord], later: Iterable[ModelCallStats | None] = ()
) -> list[ModelCallStats | None]:
    """The model-call stats of every proposal, in the order the calls were made: each
    iteration's rejected proposals, then its applied one; then ``later`` (calls that reached
    no iteration record, e.g. a final done proposal)."""
    stats: list[ModelCallStats | None] = []
    for record in records:
        stats.extend(r.proposal.model_calls for r in record.rejected)
        stats.append(record.proposal.model_calls)
    return stats + list(later)


@dataclass
class SessionState:
    """What the loop knows between iterations.

    ``best`` is the index of the best record so far (strictly better wins; ties keep the
    earlier); ``reference`` the record the stall counter compares against (it moves only
    on an improvement of at least ``min_improvement``); ``stall`` counts records since.
    """

    records: list[IterationRecord] = field(default_factory=list)
    objectives: list[Objective] = field(default_factory=list)
    evaluation: Evaluation | None = None
    optimization: OptimizationResult | None = None
    inner_optimizations: int = 0
    rejected: int = 0
    stall: int = 0
    best: int | None = None
    reference: int | None = None
    feedback: list[str] = field(default_factory=list)
    prior_wall_s: float = 0.0
    # calls of a model-backed policy that reached no iteration record (a final done proposal)
    unrecorded_model_calls: list[ModelCallStats] = field(default_factory=list)

    def model_call_stats(self) -> list[ModelCallStats | None]:
        """Every proposal's model-call stats: applied, rejected and unrecorded ones."""
        return calls_in_order(self.records, self.unrecorded_model_calls)

    def add(self, record: IterationRecord, min_improvement: float) -> None:
        """Take a completed record as the current plan and update best / stall."""
        assert record.evaluation is not None
        self.records.append(record)
        self.objectives = list(record.applied_objectives)
        self.evaluation, self.optimization = record.evaluation, record.optimization
        index = len(self.records) - 1
        if self.best is None or better(record.evaluation, self.best_evaluation(), 0.0):
            self.best = index
        reference = None if self.reference is None else self.records[self.reference].evaluation
        if reference is None or better(record.evaluation, reference, min_improvement):
            self.reference, self.stall = index, 0
        else:
            self.stall += 1

    def load(self, records: list[IterationRecord]) -> None:
        """Restore the state of journaled records (resume); the plan itself is not touched."""
        self.records = list(records)
        self.inner_optimizations = sum(r.inner_optimizations for r in records)
        self.rejected = sum(len(r.rejected) for r in records)
        self.prior_wall_s = sum(r.timings.total_s for r in records)
        self.best = self.reference = self.best_index()

    def best_index(self) -> int | None:
        """Index of the best evaluated record (ties: the earliest)."""
        best: int | None = None
        for i, rec in enumerate(self.records):
            if rec.evaluation is None:
                continue
            prev = None if best is None else self.records[best].evaluation
            if prev is None or better(rec.evaluation, prev, 0.0):
                best = i
        return best

    def best_evaluation(self) -> Evaluation:
        """The evaluation of the best record (the current one if there is none)."""
        if self.best is None:
            assert self.evaluation is not None
            return self.evaluation
        ev = self.records[self.best].evaluation
        assert ev is not None
        return ev

    def stop_reason(self, iteration: int, config: SessionConfig) -> StopReason | None:
        """The stop rule before ``iteration``.

        Every priority-1 goal met and the score at its maximum, or the best plan with its
        priority-1 goals met stalled for ``patience``: named by the goals of the best plan
        (:func:`agent.session.outcome.goal_reason`: every goal met, or priority-1 goals
        met with no further improvement); stalled for ``stall_limit`` (the same naming:
        ``no_improvement`` while priority-1 goals fail); past ``max_iterations``.
        """
        ev = self.evaluation
        assert ev is not None
        if (
            ev.all_priority1_met
            and ev.max_score is not None
            and ev.score is not None
            and ev.score >= ev.max_score - 1e-9
        ):
            return goal_reason(self.best_evaluation())
        if self.stall >= config.patience and self.best_evaluation().all_priority1_met:
            return goal_reason(self.best_evaluation())
        if self.stall >= config.stall_limit:
            return goal_reason(self.best_evaluation())
        if iteration > config.max_iterations:
            return StopReason.ITERATION_LIMIT
        return None

    def revert_proposal(self) -> Proposal | None:
        """The best iteration's objectives again, if the session ended on a worse plan."""
        if self.best is None or self.best == len(self.records) - 1 or self.evaluation is None:
            return None
        best = self.records[self.best]
        assert best.evaluation is not None
        if not better(best.evaluation, self.evaluation, 0.0):
            return None
        return Proposal(
            objectives=list(best.applied_objectives),
            rationale=f"the session ended on a worse plan: back to iteration {best.iteration}",
            policy=REVERT_POLICY,
            optimization_mode=OptimizationMode.RESTART,
        )
