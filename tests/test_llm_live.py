"""Live checks against the real Anthropic API (opt-in: ``pytest -m llm`` with
``ANTHROPIC_API_KEY`` set; skipped without a key, never part of ``make test``)."""

from __future__ import annotations

import os

import pytest

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY"),
]


def test_the_default_model_is_served() -> None:
    import anthropic

    from agent.policies.llm.providers.anthropic import DEFAULT_ANTHROPIC_MODEL

    served = {m.id for m in anthropic.Anthropic().models.list()}
    assert DEFAULT_ANTHROPIC_MODEL in served


def test_one_real_proposal_is_a_valid_tool_call(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.policies.llm.providers.base import ProviderSettings
    from agent.policies.llm.settings import LlmSettings
    from agent.policies.llm.wiring import recording_policy
    from agent.session.loop import PlanningLoop
    from agent.session.records import SessionConfig
    from agent.templates import load_template
    from mock_tps.factory import open_mock_session

    settings = LlmSettings(provider=ProviderSettings(allow_cloud=True))
    policy = recording_policy(settings, tmp_path / "s")
    config = SessionConfig(template="prostate-basic", policy="llm", max_iterations=1)
    summary = PlanningLoop(
        open_mock_session("prostate-basic", 0),
        load_template("prostate-basic"),
        policy,
        config,
        tmp_path / "s",
        save_snapshots=False,
    ).run()
    assert summary.model_calls is not None and summary.model_calls.calls >= 1
    assert summary.model_calls.unrepaired == 0
