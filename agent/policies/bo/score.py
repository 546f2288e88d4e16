"""The objective of the Bayesian-optimization baseline: a PQM-style plan-quality score.

The template's own score where it has one (PROTOCOLS.md: criteria linear between their full
and zero thresholds); else a PQM-style score: every clinical goal has a utility, linear from 0
at two goal scales short of its limit to 1 at the limit, weighted 1 / 2^(priority - 1), and
the score is the weighted mean (0..1).
"""

from __future__ import annotations

from agent.evaluation import Evaluation
from agent.session.stopping import goal_scale

#: A goal's utility is 0 this many goal scales short of its limit (linear up to 1 at it).
ZERO_UTILITY_SCALES = 2.0


def pqm_score(evaluation: Evaluation) -> float:
    """Weighted mean goal utility (0..1; 1 = every goal met)."""
    total = weights = 0.0
    for g in evaluation.goals:
        weight = 1.0 / 2 ** (g.priority - 1)
        scale = goal_scale(g, evaluation.prescription_gy)
        utility = min(1.0, max(0.0, 1.0 + g.margin / (ZERO_UTILITY_SCALES * scale)))
        total += weight * utility
        weights += weight
    return total / weights if weights else 0.0


def bo_objective(evaluation: Evaluation) -> float:
    """What the baseline maximizes: the template score, else :func:`pqm_score`."""
    if evaluation.score is not None:
        return float(evaluation.score)
    return pqm_score(evaluation)
