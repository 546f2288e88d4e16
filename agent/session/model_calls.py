"""What a model-backed policy (the LLM planner) reports about its calls, for the journal.

Provider-neutral: counts of calls, repairs and format errors by kind, tokens and an
estimated cost, the model's returned reasoning, and the hashes of the recorded request /
response files beside the journal (``<session>/llm/<sha256>.json``). A proposal carries the
:class:`ModelCallStats` of the calls that produced it (:attr:`Proposal.model_calls`); the
summary carries the session's totals. Guardrail rejections are counted by the loop
(``rejected``), never here: a format error is a reply the policy could not read, a
rejection is a readable proposal the guardrails turned down.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from rtplan_common.models import StrictModel

NonNegInt = Annotated[int, Field(ge=0)]


class FormatErrorKind(StrEnum):
    """Why a model reply could not be turned into a proposal."""

    NO_TOOL_CALL = "no_tool_call"  # text only, or an empty answer
    INVALID_JSON = "invalid_json"  # the tool arguments are not JSON
    SCHEMA_VIOLATION = "schema_violation"  # JSON, but not a valid PlanEdits (types, NaN, ...)
    WRONG_TOOL = "wrong_tool"  # a tool that was not offered
    UNKNOWN_REFERENCE = "unknown_reference"  # an objective id the plan does not have
    TRUNCATED = "truncated"  # cut by the output token limit
    REFUSAL = "refusal"  # the model refused


class TrialSummary(StrictModel):
    """One look-ahead trial as the policy saw it (the loop journals the trial itself)."""

    score: float | None = None
    all_priority1_met: bool | None = None
    rejected: bool = False


class ModelCallStats(StrictModel):
    """Calls behind one proposal (or, summed, behind a session)."""

    model: str = ""
    calls: NonNegInt = 0
    repairs: NonNegInt = 0  # re-asks after a format error
    format_errors: dict[FormatErrorKind, NonNegInt] = Field(default_factory=dict)
    repaired: NonNegInt = 0  # format errors followed by a valid answer
    unrepaired: NonNegInt = 0  # format errors left when the repairs ran out
    input_tokens: NonNegInt = 0
    output_tokens: NonNegInt = 0
    cached_input_tokens: NonNegInt = 0
    cache_write_tokens: NonNegInt = 0
    estimated_input_tokens: NonNegInt = 0  # the offline estimate of the same calls
    cost_usd: Annotated[float, Field(ge=0)] | None = None  # None: no price known
    call_s: Annotated[float, Field(ge=0)] = 0.0  # wall time in model calls
    trials: NonNegInt = 0
    fallback: bool = False  # the proposal came from the fallback policy
    reasoning: list[str] = Field(default_factory=list)  # returned reasoning / thinking text
    critique: str = ""  # the evaluator's critique (two-role mode)
    exchanges: list[str] = Field(default_factory=list)  # sha256 of recorded exchanges

    @property
    def format_error_total(self) -> int:
        """All format errors, every kind."""
        return sum(self.format_errors.values())

    def __add__(self, other: ModelCallStats) -> ModelCallStats:
        kinds = dict(self.format_errors)
        for kind, n in other.format_errors.items():
            kinds[kind] = kinds.get(kind, 0) + n
        cost = (
            None
            if self.cost_usd is None and other.cost_usd is None
            else (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        )
        return ModelCallStats(
            model=self.model or other.model,
            calls=self.calls + other.calls,
            repairs=self.repairs + other.repairs,
            format_errors=kinds,
            repaired=self.repaired + other.repaired,
            unrepaired=self.unrepaired + other.unrepaired,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            estimated_input_tokens=self.estimated_input_tokens + other.estimated_input_tokens,
            cost_usd=cost,
            call_s=self.call_s + other.call_s,
            trials=self.trials + other.trials,
            fallback=self.fallback or other.fallback,
            reasoning=self.reasoning + other.reasoning,
            critique=self.critique or other.critique,
            exchanges=self.exchanges + other.exchanges,
        )


def total_model_calls(stats: list[ModelCallStats | None]) -> ModelCallStats | None:
    """The sum of the given stats (reasoning and critiques left out), ``None`` if there are none."""
    present = [s for s in stats if s is not None]
    if not present:
        return None
    total = ModelCallStats()
    for s in present:
        total = total + s.model_copy(update={"reasoning": [], "critique": ""})
    return total
