"""Look-ahead trials: a policy tries objectives before it commits to one set.

:class:`TrialRunner` is the ``trial`` callback of one iteration's
:class:`agent.policies.base.PolicyContext`. Each trial passes the guardrails (a rejected
trial never reaches the TPS), is journaled before it runs (an ``intent`` with purpose
``trial``), is optimized from scratch (so every trial, and the commit after it, starts
from the same state: a plan is a function of its objectives) and counts as an inner
optimization. Policies never touch the TPS themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.evaluation import Evaluation
from agent.policies.base import TrialOutcome
from agent.session.guardrails import Guardrails, recordable
from agent.session.journaled_tps import JournaledTps
from agent.session.records import GuardVerdict, Proposal, TrialRecord, VerdictStatus
from esapi_bridge.dto import Objective

#: Optimizes the objectives already set on the plan; returns (evaluation, optimize seconds).
TrialOptimizer = Callable[[], tuple[Evaluation, float]]


class TrialRunner:
    """The trials of one iteration, at most ``limit``; ``records`` keeps them for the journal."""

    def __init__(
        self,
        tps: JournaledTps,
        guard: Guardrails,
        current: Sequence[Objective],
        iteration: int,
        limit: int,
        optimize: TrialOptimizer,
        policy_name: str,
    ) -> None:
        self.tps = tps
        self.guard = guard
        self.current = list(current)
        self.iteration = iteration
        self.limit = limit
        self.optimize = optimize
        self.policy_name = policy_name
        self.records: list[TrialRecord] = []

    @property
    def ran(self) -> int:
        """Trials that reached the TPS."""
        return sum(1 for r in self.records if r.score is not None)

    @property
    def left(self) -> int:
        """Trials still allowed this iteration (rejected ones count too)."""
        return max(0, self.limit - len(self.records))

    def __call__(self, objectives: Sequence[Objective]) -> TrialOutcome:
        """Guard, journal and optimize one trial; the plan keeps the trial's objectives
        until the iteration's committed set is applied."""
        if self.left == 0:
            verdict = GuardVerdict(
                status=VerdictStatus.REJECTED,
                reasons=[f"no look-ahead trials left in this iteration (limit {self.limit})"],
            )
            return TrialOutcome(verdict=verdict, evaluation=None)
        proposal = Proposal(
            objectives=list(objectives), rationale="look-ahead trial", policy=self.policy_name
        )
        verdict, applied = self.guard.check(proposal, self.current)
        if applied is None:
            kept = recordable(proposal).objectives
            self.records.append(TrialRecord(objectives=kept, verdict=verdict))
            self.tps.event("trial_rejected", self.iteration, "; ".join(verdict.reasons))
            return TrialOutcome(verdict=verdict, evaluation=None)
        self.tps.apply(self.iteration, applied, purpose="trial")
        evaluation, optimize_s = self.optimize()
        self.records.append(
            TrialRecord(
                objectives=applied,
                verdict=verdict,
                score=evaluation.score,
                all_priority1_met=evaluation.all_priority1_met,
                optimize_s=optimize_s,
            )
        )
        self.tps.event(
            "trial",
            self.iteration,
            f"trial {len(self.records)}/{self.limit}: score {evaluation.score}, "
            f"priority-1 goals {'met' if evaluation.all_priority1_met else 'not all met'}",
        )
        return TrialOutcome(verdict=verdict, evaluation=evaluation, applied=applied)
