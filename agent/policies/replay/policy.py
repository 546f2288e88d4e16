"""Replay policy: re-issues the objectives a recorded session applied, iteration by iteration.

Deterministic, for audit and tests: run on the simulated TPS, a replayed session must
reproduce the recorded metrics (see :func:`agent.replay.compare_sessions`).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.policies.base import PolicyContext, PolicyError
from agent.session.records import IterationRecord, Proposal


class ReplayPolicy:
    """Proposes, at iteration ``i``, the objectives applied at iteration ``i`` of a record.

    Parameters
    ----------
    records
        The recorded iterations (iteration 0, the template plan, is skipped if present).
    """

    name = "replay"

    def __init__(self, records: Sequence[IterationRecord]) -> None:
        self._by_iteration = {r.iteration: r for r in records if r.iteration >= 1}
        self.length = len(self._by_iteration)

    def propose(self, context: PolicyContext) -> Proposal:
        """The recorded objectives of ``context.iteration``; ``done`` past the record's end."""
        if context.rejection is not None:
            raise PolicyError(
                f"replayed iteration {context.iteration} was rejected by the guardrails: "
                + "; ".join(context.rejection.reasons)
            )
        record = self._by_iteration.get(context.iteration)
        if record is None:
            return Proposal(
                objectives=list(context.objectives),
                rationale="end of the recorded session",
                done=True,
                policy=self.name,
            )
        return Proposal(
            objectives=list(record.applied_objectives),
            rationale=f"replay of iteration {record.iteration} ({record.proposal.policy}): "
            + record.proposal.rationale,
            done=False,
            policy=self.name,
            optimization_mode=record.optimization_mode,
        )
