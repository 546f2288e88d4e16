"""Planning policies behind one interface (:class:`agent.policies.base.Policy`).

``make_policy(name)`` builds a registered policy; later policies (LLM, knowledge-guided,
baselines) register a factory with :func:`register_policy` without touching the loop.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from agent.policies.base import Policy, PolicyContext, PolicyError
from agent.policies.replay import ReplayPolicy
from agent.policies.rule import RulePolicy, RuleSettings

PolicyFactory = Callable[..., Policy]

#: Policies whose module (and optional extra) is imported only when the policy is built:
#: name -> (module, class, the extra that provides its dependencies or ``None``).
_LAZY: dict[str, tuple[str, str, str | None]] = {
    "drl": ("agent.policies.drl", "DrlPolicy", "drl"),
    "knowledge": ("agent.policies.knowledge", "KnowledgePolicy", None),
    "bo": ("agent.policies.bo", "BayesianPolicy", "baselines"),
}


def _lazy_factory(name: str) -> PolicyFactory:
    module_name, class_name, extra = _LAZY[name]

    def factory(**kwargs: Any) -> Policy:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = f"; install it with: pip install 'rtplan-agent[{extra}]'" if extra else ""
            raise PolicyError(f"policy {name!r} cannot be loaded ({exc}){hint}") from exc
        built: Policy = getattr(module, class_name)(**kwargs)
        return built

    return factory


_REGISTRY: dict[str, PolicyFactory] = {"rule": RulePolicy} | {
    name: _lazy_factory(name) for name in _LAZY
}


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
