"""One iteration's negotiation: policy proposal -> guardrails -> (clinician) -> objectives to apply.

A rejected proposal goes back to the policy with the guardrails' verdict (up to
``max_rejections`` times); clinician feedback goes back to the policy as text; an
edit is guarded like a proposal. Nothing here touches the TPS.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.policies.base import Policy, PolicyContext
from agent.session.approval import Approver, EditRejectionListener
from agent.session.guardrails import Guardrails, recordable
from agent.session.records import (
    ApprovalAction,
    GuardVerdict,
    IterationTimings,
    Proposal,
    RejectedProposal,
    StopReason,
    VerdictStatus,
)
from esapi_bridge.dto import Objective


class SessionAborted(Exception):
    """Ends a session with a stop reason and message (policy done, clinician stop, ...)."""

    def __init__(self, reason: StopReason, message: str, proposal: Proposal | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.proposal = proposal  # the policy's done proposal, if that ended it


@dataclass
class Negotiated:
    """The outcome: what to apply, and what was turned down on the way."""

    proposal: Proposal
    verdict: GuardVerdict
    applied: list[Objective]
    action: ApprovalAction = ApprovalAction.AUTO
    rejected: list[RejectedProposal] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)


ContextFactory = Callable[[GuardVerdict | None, int, tuple[str, ...]], PolicyContext]
EventSink = Callable[[str, str], None]


def context_factory(base: PolicyContext) -> ContextFactory:
    """The contexts of one iteration's attempts: ``base`` with the rejection, the attempt
    number and the feedback so far, and fresh copies of what a policy could mutate."""

    def make(
        rejection: GuardVerdict | None, attempt: int, feedback: tuple[str, ...]
    ) -> PolicyContext:
        return dataclasses.replace(
            base,
            objectives=list(base.objectives),
            memory=base.memory.copy(),
            history=list(base.history),
            feedback=feedback,
            rejection=rejection,
            attempt=attempt,
        )

    return make


def negotiate(
    policy: Policy,
    guard: Guardrails,
    current: list[Objective],
    make_context: ContextFactory,
    *,
    iteration: int,
    approver: Approver | None,
    feedback_log: list[str],
    timings: IterationTimings,
    on_event: EventSink,
    max_rejections: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> Negotiated:
    """Ask the policy until a proposal passes the guardrails (and the clinician).

    ``feedback_log`` (the session's clinician feedback) is extended in place.

    Raises
    ------
    SessionAborted
        The policy is done (``policy_done``; the summary names it by the goals, see
        :func:`agent.session.outcome.settle_stop_reason`), the clinician stops, or
        ``max_rejections`` proposals in a row were rejected.
    """
    rejected: list[RejectedProposal] = []
    rejection: GuardVerdict | None = None
    feedback_now: list[str] = []
    guard_rejections = 0
    while True:
        context = make_context(rejection, len(rejected), tuple(feedback_log))
        t0 = clock()
        proposal = policy.propose(context)
        timings.propose_s += clock() - t0
        if not proposal.policy:
            proposal = proposal.model_copy(update={"policy": policy.name})
        if proposal.done:
            on_event("policy_done", proposal.rationale)
            raise SessionAborted(
                StopReason.POLICY_DONE,
                f"the {policy.name} policy is done: {proposal.rationale}",
                proposal,
            )
        t0 = clock()
        verdict, applied = guard.check(proposal, current)
        timings.guard_s += clock() - t0
        if applied is None:
            rejected.append(RejectedProposal(proposal=recordable(proposal), verdict=verdict))
            guard_rejections += 1
            rejection = verdict
            on_event("rejected", "; ".join(verdict.reasons))
            if guard_rejections >= max_rejections:
                raise SessionAborted(
                    StopReason.GUARD_REJECTED,
                    f"{guard_rejections} proposals rejected at iteration {iteration}: "
                    + "; ".join(verdict.reasons),
                )
            continue
        if approver is None:
            return Negotiated(proposal, verdict, applied, rejected=rejected)
        t0 = clock()
        decision = approver.review(iteration, proposal, current, applied, verdict)
        timings.approval_s += clock() - t0
        action = decision.action
        if action is ApprovalAction.STOP:
            raise SessionAborted(StopReason.CLINICIAN_STOP, "stopped by the clinician")
        if action is ApprovalAction.FEEDBACK:
            text = decision.feedback or ""
            feedback_log.append(text)
            feedback_now.append(text)
            clinician = GuardVerdict(
                status=VerdictStatus.REJECTED, reasons=[f"clinician feedback: {text}"]
            )
            rejected.append(RejectedProposal(proposal=proposal, verdict=clinician))
            rejection = None
            continue
        if action is ApprovalAction.EDIT and decision.objectives is not None:
            edited = proposal.model_copy(update={"objectives": decision.objectives})
            verdict, applied = guard.check(edited, current)
            if applied is None:
                on_event("edit_rejected", "; ".join(verdict.reasons))
                if isinstance(approver, EditRejectionListener):
                    approver.edit_rejected(iteration, verdict)
                rejected.append(RejectedProposal(proposal=edited, verdict=verdict))
                rejection = None
                continue
        return Negotiated(proposal, verdict, applied, action, rejected, feedback_now)
