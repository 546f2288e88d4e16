"""Planning policies behind one interface (:class:`agent.policies.base.Policy`).

``make_policy(name)`` builds a registered policy; later policies (LLM, knowledge-guided,
baselines) register a factory with :func:`register_policy` without touching the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.policies.base import Policy, PolicyContext, PolicyError
from agent.policies.replay import ReplayPolicy
from agent.policies.rule import RulePolicy, RuleSettings

PolicyFactory = Callable[..., Policy]
_REGISTRY: dict[str, PolicyFactory] = {"rule": RulePolicy}


def register_policy(name: str, factory: PolicyFactory) -> None:
    """Make ``make_policy(name, **kwargs)`` call ``factory(**kwargs)``."""
    _REGISTRY[name] = factory


def available_policies() -> list[str]:
    """Names accepted by :func:`make_policy` (``replay`` is built from a journal instead)."""
    return sorted(_REGISTRY)


def make_policy(name: str, **kwargs: Any) -> Policy:
    """Build the policy registered as ``name``.

    Raises
    ------
    PolicyError
        For an unknown name (the message lists the known ones).
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        raise PolicyError(f"unknown policy {name!r}; available: {', '.join(available_policies())}")
    return factory(**kwargs)


__all__ = [
    "Policy",
    "PolicyContext",
    "PolicyError",
    "ReplayPolicy",
    "RulePolicy",
    "RuleSettings",
    "available_policies",
    "make_policy",
    "register_policy",
]
