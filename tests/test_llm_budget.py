"""Per-session LLM budget and accounting: limits, cost estimates, snapshot and restore."""

from __future__ import annotations

import typing

import pytest
from anthropic.types.model_param import ModelParam

from agent.policies.llm.budget import (
    ANTHROPIC_PRICING,
    Accounting,
    AccountingSnapshot,
    BudgetLimits,
    ModelPrice,
    Pricing,
    estimate_cost_usd,
    prompt_tokens,
)
from agent.policies.llm.errors import LlmBudgetExceeded, LlmError
from agent.policies.llm.wire import TokenUsage
from agent.session.model_calls import ModelCallStats

MTOK = 1_000_000


def test_defaults_are_generous_but_finite() -> None:
    limits = BudgetLimits()
    assert limits.max_calls == 200 and limits.max_input_tokens == 5_000_000
    assert limits.max_output_tokens is not None and limits.max_wall_s is not None
    assert limits.max_cost_usd is None


def test_the_call_limit_trips_with_a_message_naming_it() -> None:
    acc = Accounting(BudgetLimits(max_calls=2))
    for _ in range(2):
        acc.check_before_call(100)
        acc.add(TokenUsage(input_tokens=100, output_tokens=10), 1.0)
    with pytest.raises(LlmBudgetExceeded) as err:
        acc.check_before_call(100)
    message = str(err.value)
    assert "max_calls = 2 calls" in message and "(2 used" in message
    assert "raise max_calls" in message
    assert isinstance(err.value, LlmError)


def test_the_input_limit_counts_the_estimate_and_cached_tokens() -> None:
    acc = Accounting(BudgetLimits(max_input_tokens=1000))
    acc.add(TokenUsage(input_tokens=500, cached_input_tokens=300, cache_write_tokens=100), 2.0)
    assert prompt_tokens(acc.usage) == 900
    acc.check_before_call(100)  # exactly at the limit is allowed
    with pytest.raises(LlmBudgetExceeded, match=r"max_input_tokens = 1,000 input tokens") as err:
        acc.check_before_call(250)
    assert "900 used, and the next call needs about 250 more" in str(err.value)


@pytest.mark.parametrize(
    ("limits", "usage", "elapsed_s", "name"),
    [
        (
            BudgetLimits(max_output_tokens=50),
            TokenUsage(output_tokens=50),
            1.0,
            "max_output_tokens",
        ),
        (BudgetLimits(max_wall_s=30.0), TokenUsage(), 30.5, "max_wall_s"),
        (
            BudgetLimits(max_cost_usd=0.01),
            TokenUsage(input_tokens=2000, output_tokens=100),  # 0.0125 USD on Opus 4.5
            1.0,
            "max_cost_usd",
        ),
    ],
)
def test_output_time_and_cost_limits_trip_once_reached(
    limits: BudgetLimits, usage: TokenUsage, elapsed_s: float, name: str
) -> None:
    acc = Accounting(limits, model="claude-opus-4-5")
    acc.check_before_call()
    acc.add(usage, elapsed_s)
    with pytest.raises(LlmBudgetExceeded, match=f"limit {name} = .*raise {name}"):
        acc.check_before_call()


def test_no_limit_means_none() -> None:
    limits = BudgetLimits(
        max_calls=None, max_input_tokens=None, max_output_tokens=None, max_wall_s=None
    )
    acc = Accounting(limits)
    acc.add(TokenUsage(input_tokens=10**9, output_tokens=10**8), 10**6)
    acc.check_before_call(10**9)
    assert acc.calls == 1


def test_cost_of_a_known_model_from_its_stated_price() -> None:
    # Claude Opus 4.5: $5 input, $6.25 5-minute cache write, $0.50 cache hit, $25 output / MTok
    usage = TokenUsage(
        input_tokens=MTOK, output_tokens=MTOK, cached_input_tokens=MTOK, cache_write_tokens=MTOK
    )
    assert estimate_cost_usd("claude-opus-4-5", usage) == pytest.approx(5 + 25 + 0.5 + 6.25)
    small = TokenUsage(input_tokens=12_000, output_tokens=800)
    # Claude Haiku 4.5, by its dated id: $1 input, $5 output / MTok
    cost = estimate_cost_usd("claude-haiku-4-5-20251001", small)
    assert cost == pytest.approx(12_000 * 1 / MTOK + 800 * 5 / MTOK)


def test_an_unknown_model_costs_none_not_zero() -> None:
    usage = TokenUsage(input_tokens=1000, output_tokens=100)
    assert estimate_cost_usd("qwen3-32b", usage) is None
    assert estimate_cost_usd("claude-haiku-5-5", usage) is None  # two price bands: not priced
    acc = Accounting(model="qwen3-32b")
    assert acc.add(usage, 1.0) is None
    assert acc.cost_usd is None and acc.unpriced_calls == 1
    acc.add(usage, 1.0, model="claude-sonnet-4-6")  # a priced call does not hide the other
    assert acc.cost_usd is None and acc.priced_cost_usd == pytest.approx(0.0045)


def test_every_priced_model_is_in_the_installed_sdks_model_list() -> None:
    known = {
        arg
        for part in typing.get_args(ModelParam)
        for arg in typing.get_args(part)
        if isinstance(arg, str)
    }
    assert set(ANTHROPIC_PRICING.prices) <= known
    assert ANTHROPIC_PRICING.source


def test_a_custom_price_table() -> None:
    price = ModelPrice(
        input_usd_per_mtok=0.2,
        output_usd_per_mtok=0.6,
        cache_read_usd_per_mtok=0.0,
        cache_write_usd_per_mtok=0.0,
    )
    pricing = Pricing(prices={"llama-3.3-70b": price}, source="on-premise cost model")
    acc = Accounting(model="llama-3.3-70b", pricing=pricing)
    acc.add(TokenUsage(input_tokens=MTOK, output_tokens=MTOK), 3.0)
    assert acc.cost_usd == pytest.approx(0.8)


def test_snapshot_round_trip_and_continue() -> None:
    acc = Accounting(BudgetLimits(max_calls=3), model="claude-sonnet-4-6")
    acc.add(TokenUsage(input_tokens=2000, output_tokens=300, cached_input_tokens=5000), 4.5)
    snap = AccountingSnapshot.model_validate_json(acc.snapshot().model_dump_json())
    assert snap.calls == 1 and snap.call_s == 4.5 and snap.usage.cached_input_tokens == 5000
    assert snap.cost_usd == pytest.approx((2000 * 3 + 300 * 15 + 5000 * 0.3) / MTOK)
    again = Accounting.from_snapshot(snap)
    again.add(TokenUsage(input_tokens=1), 0.5)
    again.add(TokenUsage(input_tokens=1), 0.5)
    with pytest.raises(LlmBudgetExceeded, match="max_calls = 3"):
        again.check_before_call()


def test_restore_from_the_journals_call_stats() -> None:
    stats = [
        ModelCallStats(
            model="claude-sonnet-4-6",
            calls=2,
            input_tokens=1000,
            output_tokens=200,
            cached_input_tokens=50,
            cost_usd=0.006,
            call_s=3.0,
        ),
        None,  # an iteration of another policy
        ModelCallStats(model="claude-sonnet-4-6", calls=1, input_tokens=10, call_s=1.0),
    ]
    acc = Accounting.from_calls(stats, BudgetLimits(max_calls=3), model="claude-sonnet-4-6")
    assert acc.calls == 3 and acc.call_s == 4.0
    assert acc.usage == TokenUsage(input_tokens=1010, output_tokens=200, cached_input_tokens=50)
    assert acc.unpriced_calls == 1 and acc.cost_usd is None
    assert acc.priced_cost_usd == pytest.approx(0.006)
    with pytest.raises(LlmBudgetExceeded, match="3 used"):
        acc.check_before_call()
