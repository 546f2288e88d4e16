"""What a session's stop means, in words: one text for the CLI, the summary, the journal and
the report.

:func:`describe_stop` turns (stop reason, final evaluation) into the sentence every output
shows, so that nothing says "goals met" of a plan whose lower-priority goals fail: the
failing goals are listed with their values and limits. :func:`settle_stop_reason` names
a goal-based stop for what is true of the plan the session leaves in the TPS.
"""

from __future__ import annotations

from agent.evaluation import Evaluation, GoalResult, GoalStatus
from agent.evaluation.text import fmt
from agent.session.records import StopReason

#: Short labels (the report's status card; the start of every stop text).
STOP_LABELS: dict[StopReason, str] = {
    StopReason.ALL_GOALS_MET: "every goal is met (all priorities)",
    StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT: (
        "priority-1 goals met, lower-priority goals failing, no further improvement"
    ),
    StopReason.NO_IMPROVEMENT: "priority-1 goals failing, no further improvement",
    StopReason.POLICY_DONE: "the policy had nothing more to try",
    StopReason.ITERATION_LIMIT: "iteration limit reached",
    StopReason.CLINICIAN_STOP: "stopped by the clinician",
    StopReason.GUARD_REJECTED: "the guardrails kept rejecting the policy's proposals",
    StopReason.INTERRUPTED: "interrupted",
    StopReason.ERROR: "stopped on an error",
}

#: Stop reasons that state how the goals stand; :func:`settle_stop_reason` re-derives them.
GOAL_REASONS = frozenset(
    {
        StopReason.ALL_GOALS_MET,
        StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT,
        StopReason.NO_IMPROVEMENT,
    }
)

#: Stop reasons after which the best plan of the session is kept (reverted to if needed);
#: after the others (error, interrupt: the original objectives are restored) it is not.
#: The clinician's stop (a stop answer or end of input at ``--approve``) keeps the best of
#: the plans the clinician approved: every applied plan was approved.
KEEP_BEST = frozenset(
    {
        *GOAL_REASONS,
        StopReason.POLICY_DONE,
        StopReason.ITERATION_LIMIT,
        StopReason.GUARD_REJECTED,
        StopReason.CLINICIAN_STOP,
    }
)


def stop_label(reason: StopReason) -> str:
    """The short human label of ``reason``."""
    return STOP_LABELS[reason]


def all_goals_met(evaluation: Evaluation) -> bool:
    """Whether every goal, of every priority, is met (within variation is not met)."""
    return all(g.status is GoalStatus.MET for g in evaluation.goals)


def goal_reason(evaluation: Evaluation) -> StopReason:
    """The goal-based stop reason that is true of ``evaluation`` when it no longer improves.

    ``ALL_GOALS_MET`` if every goal is met, ``PRIORITY1_MET_NO_FURTHER_IMPROVEMENT`` if
    every priority-1 goal is, else ``NO_IMPROVEMENT``.
    """
    if all_goals_met(evaluation):
        return StopReason.ALL_GOALS_MET
    if evaluation.all_priority1_met:
        return StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT
    return StopReason.NO_IMPROVEMENT


def settle_stop_reason(reason: StopReason, final: Evaluation | None) -> StopReason:
    """The stop reason as it is true of the final plan.

    A goal-based reason (decided on the best plan) is re-derived from the plan left in
    the TPS; a policy that is done while the goals stand for themselves is named by
    them (every goal met, or priority-1 goals met with no further improvement). Other
    reasons are returned unchanged.
    """
    if final is None:
        return reason
    if reason in GOAL_REASONS:
        return goal_reason(final)
    if reason is StopReason.POLICY_DONE and final.all_priority1_met:
        return goal_reason(final)
    return reason


def describe_goal(goal: GoalResult) -> str:
    """``"brain_v12 (P2, Brain-PTV V12Gy[cc]) 16.00 cm3, limit <= 10.00 cm3"``."""
    within = ", within variation" if goal.status is GoalStatus.WITHIN_VARIATION else ""
    return (
        f"{goal.goal_id} (P{goal.priority}, {goal.plan_structure_id} {goal.metric}) "
        f"{fmt(goal.value, goal.unit)}, limit {goal.comparator} {fmt(goal.limit, goal.unit)}"
        f"{within}"
    )


def goals_not_met(evaluation: Evaluation) -> list[str]:
    """One description per goal not met (failed or only within variation), by priority."""
    goals = sorted(evaluation.failed_goals(), key=lambda g: g.priority)
    return [describe_goal(g) for g in goals]


def goal_status_text(evaluation: Evaluation) -> str:
    """``"every goal is met"`` only when it is; else ``"not met: <goal>; <goal>"``."""
    missing = goals_not_met(evaluation)
    if not missing:
        return "every goal is met (all priorities)"
    return f"not met ({len(missing)} of {len(evaluation.goals)}): " + "; ".join(missing)


def describe_stop(
    reason: StopReason,
    evaluation: Evaluation | None,
    detail: str = "",
    *,
    restored: bool | None = None,
) -> str:
    """The sentence shown for a stop: its label, the detail, how the goals stand, and
    whether the original objectives were restored.

    Parameters
    ----------
    reason
        The (settled) stop reason.
    evaluation
        The plan the session left in the TPS (``None`` when the original objectives were
        restored: then nothing is said of goals).
    detail
        What the stop adds (the policy's rationale, the error, the signal).
    restored
        Whether the plan's original objectives were put back (``None``: not said).
    """
    label = stop_label(reason)
    parts = [label]
    if detail and detail != label:
        parts.append(detail)
    if evaluation is not None and reason is not StopReason.ALL_GOALS_MET:
        parts.append(goal_status_text(evaluation))
    if restored is True:
        parts.append("the plan's original objectives were restored")
    elif restored is False and reason in (StopReason.ERROR, StopReason.INTERRUPTED):
        parts.append("the original objectives could not be restored: check the plan")
    return "; ".join(parts)
