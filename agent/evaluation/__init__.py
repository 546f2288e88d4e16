"""Plan evaluation against a site template: clinical goals, margins and the score."""

from agent.evaluation.evaluator import (
    STATUS_TOLERANCE,
    CriterionResult,
    Evaluation,
    EvaluationError,
    GoalResult,
    GoalStatus,
    criterion_points,
    evaluate,
    evaluate_session,
    goal_status,
    metric_value,
    needed_structures,
)

__all__ = [
    "STATUS_TOLERANCE",
    "CriterionResult",
    "Evaluation",
    "EvaluationError",
    "GoalResult",
    "GoalStatus",
    "criterion_points",
    "evaluate",
    "evaluate_session",
    "goal_status",
    "metric_value",
    "needed_structures",
]
