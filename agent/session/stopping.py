"""How plans are compared: which of two evaluations is better, and by how much.

The order is lexicographic: (1) every priority-1 goal met; (2) the template score (or,
for templates without a score, priority-weighted goal status points), by more than
``min_improvement``; (3) the total shortfall of failing priority-1/2 goals, in goal
scales (the goal's acceptable variation, or a unit default), by more than 0.05;
(4) the margin sum: priority-weighted goal margins in goal scales, each clipped to
+-3 (sparing beyond a goal counts, up to three scales), by more than 0.1.
"""

from __future__ import annotations

from agent.evaluation import Evaluation, GoalResult, GoalStatus

_STATUS_POINTS = {GoalStatus.MET: 1.0, GoalStatus.WITHIN_VARIATION: 0.5, GoalStatus.FAILED: 0.0}
_PRIORITY_WEIGHT = {1: 3.0, 2: 2.0, 3: 1.0}
SHORTFALL_RESOLUTION = 0.05
MARGIN_RESOLUTION = 0.1
MARGIN_CAP = 3.0


def plan_quality(evaluation: Evaluation) -> float:
    """The template score, else priority-weighted goal status points (met 1, within 0.5)."""
    if evaluation.score is not None:
        return float(evaluation.score)
    return sum(
        _PRIORITY_WEIGHT.get(g.priority, 1.0) * _STATUS_POINTS[g.status] for g in evaluation.goals
    )


def goal_scale(goal: GoalResult, prescription_gy: float) -> float:
    """The size of one step of a goal's margin: its variation, else a unit default."""
    if goal.variation > 0:
        return goal.variation
    if goal.unit == "Gy":
        return 0.02 * prescription_gy
    if goal.unit == "%":
        return 2.0
    if goal.unit == "cm3":
        return max(0.1, 0.1 * abs(goal.limit))
    return max(0.02, 0.05 * abs(goal.limit))


def shortfall(evaluation: Evaluation) -> float:
    """Priority-weighted sum of how far failing priority-1/2 goals miss, in goal scales."""
    total = 0.0
    for g in evaluation.goals:
        if g.priority <= 2 and g.margin < 0:
            total += (
                _PRIORITY_WEIGHT[g.priority] * -g.margin / goal_scale(g, evaluation.prescription_gy)
            )
    return total


def margin_sum(evaluation: Evaluation) -> float:
    """Priority-weighted goal margins in goal scales, each clipped to +-``MARGIN_CAP``."""
    total = 0.0
    for g in evaluation.goals:
        m = g.margin / goal_scale(g, evaluation.prescription_gy)
        total += _PRIORITY_WEIGHT.get(g.priority, 1.0) * max(-MARGIN_CAP, min(MARGIN_CAP, m))
    return total


def better(a: Evaluation, b: Evaluation, min_improvement: float = 0.0) -> bool:
    """Whether plan ``a`` is better than plan ``b`` (see the module docstring)."""
    if a.all_priority1_met != b.all_priority1_met:
        return a.all_priority1_met
    qa, qb = plan_quality(a), plan_quality(b)
    if qa > qb + min_improvement:
        return True
    if qa < qb - min_improvement:
        return False
    sa, sb = shortfall(a), shortfall(b)
    if sa < sb - SHORTFALL_RESOLUTION:
        return True
    if sa > sb + SHORTFALL_RESOLUTION:
        return False
    return margin_sum(a) > margin_sum(b) + MARGIN_RESOLUTION
