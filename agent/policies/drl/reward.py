"""The reward of the DRL planner: the change of a fine score plus 4 x the change of the score.

The template score (:mod:`agent.evaluation`) gives each criterion ``max_points`` at or better
than its ``full`` threshold, 0 at or worse than ``zero``, linear in between. The *fine score* is
the same linear interpolation without the clipping, summed over the criteria:

    fine = sum_c max_points_c * (zero_c - value_c) / (zero_c - full_c)     (comparator "<=")
    fine = sum_c max_points_c * (value_c - zero_c) / (full_c - zero_c)     (comparator ">=")

so it keeps rewarding sparing beyond ``full`` and penalizing overdose beyond ``zero``, where the
score is flat (on prostate-basic a term stays within about -5..+4 points). The reward of a step is
``(fine_after - fine_before) + SCORE_WEIGHT * (score_after - score_before)``.
"""

from __future__ import annotations

from agent.evaluation import Evaluation

#: Weight of the change of the template score in the reward (published: 4).
SCORE_WEIGHT = 4.0


def fine_score(evaluation: Evaluation) -> float:
    """The unclipped linear interpolation of every criterion, summed (module docstring)."""
    total = 0.0
    for c in evaluation.criteria:
        span = c.zero - c.full
        if span == 0:
            continue
        # the same formula serves ">=": numerator and span both change sign
        total += c.max_points * (c.zero - c.value) / span
    return total


def step_reward(
    fine_before: float, fine_after: float, score_before: float, score_after: float
) -> float:
    """``delta fine + SCORE_WEIGHT x delta score``."""
    return (fine_after - fine_before) + SCORE_WEIGHT * (score_after - score_before)
