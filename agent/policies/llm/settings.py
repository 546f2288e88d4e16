"""Settings of the LLM policy: recorded in the journal header (never a key), read back by
``rtplan resume`` so that a session continues with the same policy."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from agent.policies.llm.budget import BudgetLimits
from agent.policies.llm.prompt import REFERENCE_CHARS
from agent.policies.llm.prompt_system import KNOWLEDGE_CHARS
from agent.policies.llm.providers.base import ProviderSettings
from rtplan_common.models import FrozenModel

#: Most reference plans a session takes (each is sent with every call).
MAX_REFERENCE_PLANS = 3

#: Guardrail re-asks the loop allows per iteration (PlanningLoop.max_rejections default).
GUARD_REASKS = 3


class LlmSettings(FrozenModel):
    """How the LLM policy plans.

    ``max_repairs``: re-asks after a format error, per model answer. ``fallback``: the
    policy that proposes when the repairs run out (``none``: the session stops cleanly,
    the best plan kept). ``two_role``: an evaluator call writes a critique before the
    planner call (as GPT-RadPlan). ``memory_iterations``: past iterations shown.
    ``budget``: per-session limits on calls, tokens, wall time in calls and cost
    (:class:`agent.policies.llm.budget.BudgetLimits`). ``images``: a dose-plane image of the
    current plan with each iteration's first call. ``reference_plans``: texts of earlier
    plans of the site (:mod:`agent.policies.llm.references`), ``knowledge_card``: knowledge
    of the site's parameters; both fixed at the start, so resume and replay see the same
    prompt. Look-ahead trials are a session setting
    (``SessionConfig.lookahead_trials``): the loop runs them.
    """

    _multiline = frozenset({"reference_plans", "knowledge_card"})  # tables keep their lines

    provider: ProviderSettings = Field(default_factory=ProviderSettings)
    max_repairs: Annotated[int, Field(ge=0, le=5)] = 2
    fallback: Literal["none", "rule"] = "none"
    two_role: bool = False
    images: bool = False
    memory_iterations: Annotated[int, Field(ge=0, le=20)] = 3
    budget: BudgetLimits = Field(default_factory=BudgetLimits)
    reference_plans: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=REFERENCE_CHARS)]],
        Field(max_length=MAX_REFERENCE_PLANS),
    ] = Field(default_factory=list)
    knowledge_card: Annotated[str, Field(min_length=1, max_length=KNOWLEDGE_CHARS)] | None = None

    def calls_per_iteration(self, lookahead_trials: int, reasks: int = GUARD_REASKS) -> int:
        """The most model calls one iteration can make.

        Each answer may take ``1 + max_repairs`` calls; an attempt asks for one answer plus
        one per look-ahead trial (and, in two-role mode, one critique); the loop allows
        ``reasks`` attempts (the first and the re-asks after guardrail rejections).
        """
        per_answer = 1 + self.max_repairs
        per_attempt = per_answer * (1 + lookahead_trials) + (per_answer if self.two_role else 0)
        return reasks * per_attempt
