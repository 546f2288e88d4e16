"""The DRL virtual planner (issue #14): TPPs, episodes, the Gymnasium environment, the
stable-baselines3 trainer and ``--policy drl``.

:mod:`agent.policies.drl.tpps` and :mod:`agent.policies.drl.episodes` need no DRL extra;
:class:`DrlPolicy` (and the environment and trainer) need the ``drl`` extra (gymnasium,
stable-baselines3, torch) and are imported when first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DrlPolicy"]


def __getattr__(name: str) -> Any:
    if name == "DrlPolicy":
        from agent.policies.drl.policy import DrlPolicy

        return DrlPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
