"""The Bayesian-optimization baseline (``--policy bo``): Optuna TPE over the template's TPPs."""

from agent.policies.bo.policy import (
    DEFAULT_BUDGET,
    BayesianPolicy,
    BoSettings,
    bo_session_settings,
)
from agent.policies.bo.score import bo_objective, pqm_score
from agent.policies.bo.space import TppDim, TppSpace

__all__ = [
    "DEFAULT_BUDGET",
    "BayesianPolicy",
    "BoSettings",
    "TppDim",
    "TppSpace",
    "bo_objective",
    "bo_session_settings",
    "pqm_score",
]
