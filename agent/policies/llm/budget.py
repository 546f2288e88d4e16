"""Per-session budget and accounting of model calls: calls, tokens, call time, estimated cost.

:class:`Accounting` sums every call of a session (:meth:`Accounting.add`) and refuses the
next one when a :class:`BudgetLimits` limit would be passed (:meth:`Accounting.check_before_call`
raises :class:`LlmBudgetExceeded`). :meth:`Accounting.snapshot` is what the journal and the
report show; :meth:`Accounting.from_calls` restores the totals on resume from the recorded
per-proposal stats.

Costs are estimates from a price table (:data:`ANTHROPIC_PRICING`); a model without a known
price (a local server, a model not in the table) has cost ``None``, never 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, NoReturn, Protocol

from pydantic import Field

from agent.policies.llm.errors import LlmBudgetExceeded
from agent.policies.llm.wire import TokenUsage
from rtplan_common.models import FrozenModel

NonNegInt = Annotated[int, Field(ge=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
_MTOK = 1_000_000
_DATED = re.compile(r"-\d{8}$")  # "claude-haiku-4-5-20251001" is priced as "claude-haiku-4-5"


class BudgetLimits(FrozenModel):
    """Per-session limits on model calls; ``None`` means no limit.

    Input tokens count everything the model read (uncached, cache reads and cache writes);
    ``max_wall_s`` limits the wall time spent waiting for the model (summed over its calls).
    """

    max_calls: Annotated[int, Field(ge=1)] | None = 200
    max_input_tokens: Annotated[int, Field(ge=1)] | None = 5_000_000
    max_output_tokens: Annotated[int, Field(ge=1)] | None = 1_000_000
    max_wall_s: Annotated[float, Field(gt=0)] | None = 3600.0
    max_cost_usd: Annotated[float, Field(gt=0)] | None = None  # only checks priced calls


class ModelPrice(FrozenModel):
    """USD per million tokens of one model (cache writes at the default 5-minute lifetime)."""

    input_usd_per_mtok: NonNegFloat
    output_usd_per_mtok: NonNegFloat
    cache_read_usd_per_mtok: NonNegFloat
    cache_write_usd_per_mtok: NonNegFloat


class Pricing(FrozenModel):
    """A price table: model id -> :class:`ModelPrice`, with where the prices come from."""

    prices: dict[str, ModelPrice]
    source: str = ""

    def price_of(self, model: str) -> ModelPrice | None:
        """The price of ``model`` (also of its dated id), ``None`` if it is not in the table."""
        key = model.strip().lower()
        return self.prices.get(key) or self.prices.get(_DATED.sub("", key))

    def estimate_cost_usd(self, model: str, usage: TokenUsage) -> float | None:
        """The cost of ``usage`` on ``model``; ``None`` if the model has no known price.

        ``usage.input_tokens`` is taken as the uncached input (the Anthropic convention; its
        ``input_tokens`` excludes cache reads and writes).
        """
        price = self.price_of(model)
        if price is None:
            return None
        return (
            usage.input_tokens * price.input_usd_per_mtok
            + usage.output_tokens * price.output_usd_per_mtok
            + usage.cached_input_tokens * price.cache_read_usd_per_mtok
            + usage.cache_write_tokens * price.cache_write_usd_per_mtok
        ) / _MTOK


def _price(
    input_usd: float, cache_write_usd: float, cache_read_usd: float, output_usd: float
) -> ModelPrice:
    return ModelPrice(
        input_usd_per_mtok=input_usd,
        output_usd_per_mtok=output_usd,
        cache_read_usd_per_mtok=cache_read_usd,
        cache_write_usd_per_mtok=cache_write_usd,
    )


# USD per million tokens: base input, 5-minute cache write, cache hit, output. Sources, read
# 2026-12-02 in stored copies of Anthropic's documentation (the copies carry no date of their
# own): the pricing page, platform.claude.com/docs/en/about-claude/pricing, "Model pricing"
# (Fable, Mythos and Opus rows; the 5.1 cache-hit cells carry a footnote the copy lacks); an
# earlier copy of the same page in Chinese, platform.claude.com/docs/zh-CN/about-claude/pricing
# (Sonnet 4.6, Haiku 4.5); the Sonnet 5 overview, platform.claude.com/docs/zh-CN/models/
# sonnet-5/overview. Left out on purpose, so they cost None: models of the installed SDK's
# list without an official price in those copies (fable-5-2, mythos-5-2, opus-5-5, sonnet-5-5,
# mythos-preview) and claude-haiku-5-5, priced in two bands by prompt length.
_OPUS = _price(5.0, 6.25, 0.50, 25.0)
_FABLE_5 = _price(10.0, 12.50, 1.00, 50.0)
_FABLE_5_1 = _price(10.0, 12.50, 0.25, 50.0)
ANTHROPIC_PRICING = Pricing(
    prices={
        "claude-fable-5-1": _FABLE_5_1,
        "claude-mythos-5-1": _FABLE_5_1,
        "claude-fable-5": _FABLE_5,
        "claude-mythos-5": _FABLE_5,
        "claude-opus-5": _OPUS,
        "claude-opus-4-8": _OPUS,
        "claude-opus-4-7": _OPUS,
        "claude-opus-4-6": _OPUS,
        "claude-opus-4-5": _OPUS,
        "claude-sonnet-5": _price(2.0, 2.50, 0.20, 10.0),
        "claude-sonnet-4-6": _price(3.0, 3.75, 0.30, 15.0),
        "claude-haiku-4-5": _price(1.0, 1.25, 0.10, 5.0),
    },
    source="Anthropic pricing documentation, stored copies read 2026-12-02",
)


def estimate_cost_usd(
    model: str, usage: TokenUsage, pricing: Pricing = ANTHROPIC_PRICING
) -> float | None:
    """The estimated cost of ``usage`` on ``model`` in USD; ``None`` for an unpriced model."""
    return pricing.estimate_cost_usd(model, usage)


def prompt_tokens(usage: TokenUsage) -> int:
    """Every input token the model read: uncached input, cache reads and cache writes."""
    return usage.input_tokens + usage.cached_input_tokens + usage.cache_write_tokens


class AccountingSnapshot(FrozenModel):
    """A session's model-call totals for the journal and the report."""

    model: str = ""
    calls: NonNegInt = 0
    usage: TokenUsage = Field(default_factory=TokenUsage)
    call_s: NonNegFloat = 0.0  # wall time spent in model calls
    cost_usd: NonNegFloat | None = None  # None: some call could not be priced (or no call)
    priced_cost_usd: NonNegFloat = 0.0  # the sum over the calls that could be priced
    unpriced_calls: NonNegInt = 0
    limits: BudgetLimits = Field(default_factory=BudgetLimits)


class RecordedCalls(Protocol):
    """What a journal record of calls provides (``agent.session.model_calls.ModelCallStats``)."""

    @property
    def calls(self) -> int: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...
    @property
    def call_s(self) -> float: ...
    @property
    def cost_usd(self) -> float | None: ...


class Accounting:
    """The model calls of one session, summed, against its :class:`BudgetLimits`.

    Parameters
    ----------
    limits : the session's limits (default :class:`BudgetLimits`).
    model : the model the calls go to (prices it; a reply may name a dated id of it).
    pricing : the price table (default :data:`ANTHROPIC_PRICING`).
    """

    def __init__(
        self,
        limits: BudgetLimits | None = None,
        *,
        model: str = "",
        pricing: Pricing = ANTHROPIC_PRICING,
    ) -> None:
        self.limits = limits if limits is not None else BudgetLimits()
        self.model = model
        self.pricing = pricing
        self.calls = 0
        self.usage = TokenUsage()
        self.call_s = 0.0
        self.priced_cost_usd = 0.0
        self.unpriced_calls = 0

    @property
    def cost_usd(self) -> float | None:
        """The estimated cost so far; ``None`` if a call could not be priced or none was made."""
        if self.unpriced_calls or not self.calls:
            return None
        return self.priced_cost_usd

    def check_before_call(self, estimated_input_tokens: int = 0) -> None:
        """Raise :class:`LlmBudgetExceeded` if the next call, of about ``estimated_input_tokens``
        input tokens, would pass a limit (output, call time and cost: if already reached)."""
        lim, used_input = self.limits, prompt_tokens(self.usage)
        need_input = max(0, estimated_input_tokens)
        if lim.max_calls is not None and self.calls + 1 > lim.max_calls:
            self._refuse("max_calls", self.calls, lim.max_calls, "calls", 1)
        if lim.max_input_tokens is not None and used_input + need_input > lim.max_input_tokens:
            self._refuse(
                "max_input_tokens", used_input, lim.max_input_tokens, "input tokens", need_input
            )
        if lim.max_output_tokens is not None and self.usage.output_tokens >= lim.max_output_tokens:
            self._refuse(
                "max_output_tokens",
                self.usage.output_tokens,
                lim.max_output_tokens,
                "output tokens",
            )
        if lim.max_wall_s is not None and self.call_s >= lim.max_wall_s:
            self._refuse("max_wall_s", self.call_s, lim.max_wall_s, "s of model calls")
        if lim.max_cost_usd is not None and self.priced_cost_usd >= lim.max_cost_usd:
            self._refuse("max_cost_usd", self.priced_cost_usd, lim.max_cost_usd, "USD (estimated)")

    @staticmethod
    def _refuse(name: str, used: float, limit: float, unit: str, need: float = 0) -> NoReturn:
        needs = f", and the next call needs about {_num(need)} more" if need else ""
        raise LlmBudgetExceeded(
            f"LLM budget: the next call would pass the session's limit {name} = {_num(limit)} "
            f"{unit} ({_num(used)} used{needs}); to allow more, raise {name} in the LLM "
            f"policy's budget settings (BudgetLimits; None means no limit)"
        )

    def add(self, usage: TokenUsage, elapsed_s: float, *, model: str | None = None) -> float | None:
        """Count one call (its usage and wall time); returns its estimated cost (``None``:
        unpriced). ``model`` is the model the reply names (default: the session's)."""
        cost = self.pricing.estimate_cost_usd(model or self.model, usage)
        self.calls += 1
        self.usage = self.usage + usage
        self.call_s += max(0.0, elapsed_s)
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.priced_cost_usd += cost
        return cost

    def snapshot(self) -> AccountingSnapshot:
        """The totals so far, for the journal and the report."""
        return AccountingSnapshot(
            model=self.model,
            calls=self.calls,
            usage=self.usage,
            call_s=self.call_s,
            cost_usd=self.cost_usd,
            priced_cost_usd=self.priced_cost_usd,
            unpriced_calls=self.unpriced_calls,
            limits=self.limits,
        )

    @classmethod
    def from_snapshot(
        cls, snapshot: AccountingSnapshot, *, pricing: Pricing = ANTHROPIC_PRICING
    ) -> Accounting:
        """An accounting that continues from ``snapshot`` (same model and limits)."""
        acc = cls(snapshot.limits, model=snapshot.model, pricing=pricing)
        acc.calls, acc.usage, acc.call_s = snapshot.calls, snapshot.usage, snapshot.call_s
        acc.priced_cost_usd, acc.unpriced_calls = snapshot.priced_cost_usd, snapshot.unpriced_calls
        return acc

    @classmethod
    def from_calls(
        cls,
        records: Iterable[RecordedCalls | None],
        limits: BudgetLimits | None = None,
        *,
        model: str = "",
        pricing: Pricing = ANTHROPIC_PRICING,
    ) -> Accounting:
        """Restore on resume: the sum of the recorded per-proposal call stats (``None`` entries,
        proposals of other policies, are skipped). Recorded costs are summed as recorded; the
        calls of a record without a cost count as unpriced."""
        acc = cls(limits, model=model, pricing=pricing)
        for rec in records:
            if rec is None or rec.calls == 0:
                continue
            acc.calls += rec.calls
            acc.usage = acc.usage + TokenUsage(
                input_tokens=rec.input_tokens,
                output_tokens=rec.output_tokens,
                cached_input_tokens=rec.cached_input_tokens,
                cache_write_tokens=rec.cache_write_tokens,
            )
            acc.call_s += rec.call_s
            if rec.cost_usd is None:
                acc.unpriced_calls += rec.calls
            else:
                acc.priced_cost_usd += rec.cost_usd
        return acc


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
