"""The LLM policy through the whole stack (#10): the real SDK clients against a fake server
on loopback, a competent fake planner that reads only the request body, the real loop on
the simulated TPS, every exchange recorded beside the journal, and a byte-for-byte replay.

Target (issue #10): prostate-basic reaches 9/9 through the whole stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_llm import FakeLlmServer, planner
from fake_llm_planner import decide

from agent.policies.llm.providers.base import ProviderSettings
from agent.policies.llm.recording import LLM_DIRNAME, ExchangeStore
from agent.policies.llm.settings import LlmSettings
from agent.policies.llm.wiring import recorded_exchanges, recording_policy, replaying_policy
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig, StopReason
from agent.session.replay import replay_session
from agent.templates import load_template
from mock_tps.factory import open_mock_session

SEED = 0
KEY = "sk-test-NEVER-RECORDED"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dij-cache")


def _settings(server: FakeLlmServer, provider: str, images: bool = False) -> LlmSettings:
    base = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    return LlmSettings(
        provider=ProviderSettings(provider=provider, model="test-model", base_url=base),
        images=images,
    )


def _env(provider: str) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY": KEY}


def _run(
    tmp_path: Path,
    cache_dir: Path,
    server: FakeLlmServer,
    provider: str,
    images: bool = False,
    **cfg: Any,
):
    session_dir = tmp_path / "session"
    settings = _settings(server, provider, images)
    policy = recording_policy(settings, session_dir, env=_env(provider))
    config = SessionConfig(
        scenario="prostate-basic", seed=SEED, template="prostate-basic", policy="llm", **cfg
    )
    loop = PlanningLoop(
        open_mock_session("prostate-basic", SEED, cache_dir=cache_dir),
        load_template("prostate-basic"),
        policy,
        config,
        session_dir,
        case_label=f"prostate-basic/seed{SEED}",
        save_snapshots=False,
    )
    return loop.run(), session_dir


@pytest.mark.parametrize(
    ("provider", "flavour"), [("anthropic", "anthropic"), ("openai-compatible", "vllm")]
)
def test_competent_fake_planner_reaches_the_maximum_through_the_stack(
    provider: str, flavour: str, tmp_path: Path, cache_dir: Path
) -> None:
    with FakeLlmServer(planner(decide), flavour=flavour, models=["test-model"]) as server:
        summary, session_dir = _run(tmp_path, cache_dir, server, provider)
        requests = list(server.llm_requests)
        base_url = _settings(server, provider).provider.base_url
    assert summary.final_evaluation is not None
    assert summary.final_evaluation.score == pytest.approx(9.0)
    assert summary.stop_reason is StopReason.ALL_GOALS_MET
    calls = summary.model_calls
    assert calls is not None and calls.calls == len(requests) >= summary.iterations
    assert calls.format_error_total == 0 and calls.input_tokens > 0
    log = read_journal(session_dir)
    hashes = recorded_exchanges(log)
    store = ExchangeStore.for_session(session_dir)
    assert (session_dir / LLM_DIRNAME).is_dir() and hashes
    stored = [store.get_exchange(h) for h in hashes]
    posted = [x for x in stored if x.request.method == "POST"]
    assert len(posted) == len(requests)  # every model call recorded, in order
    for path in (session_dir / LLM_DIRNAME).iterdir():
        assert KEY not in path.read_text()
    # the header keeps the provider settings for resume, never a key
    assert log.header.policy is not None and log.header.policy.name == "llm"
    assert log.header.policy.settings["provider"]["base_url"] == base_url
    assert KEY not in (session_dir / "journal.jsonl").read_text()


def test_replay_reruns_the_llm_policy_on_the_recorded_responses(
    tmp_path: Path, cache_dir: Path
) -> None:
    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        summary, session_dir = _run(tmp_path, cache_dir, server, "anthropic")
    log = read_journal(session_dir)
    report = replay_session(
        session_dir,
        lambda config: open_mock_session("prostate-basic", SEED, cache_dir=cache_dir),
        out_dir=tmp_path / "replay",
        policy_for=lambda recorded: replaying_policy(recorded, session_dir),
    )
    assert report.matched, report.verdict()
    assert report.replayed_iterations == len(log.iterations)
    assert report.summary.final_evaluation is not None
    assert report.summary.final_evaluation.score == summary.final_evaluation.score  # type: ignore[union-attr]
    assert all(c.objectives_match for c in report.comparisons)


def test_replay_refuses_a_request_that_differs_from_the_recorded_one(
    tmp_path: Path, cache_dir: Path
) -> None:
    """A changed prompt (here: the recorded first request's body edited on disk is caught by
    its hash; a changed template is caught by the byte comparison) never gets an answer."""
    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        _, session_dir = _run(tmp_path, cache_dir, server, "anthropic")
    log = read_journal(session_dir)
    # replay with another memory length: the re-assembled prompt differs from the recorded one
    changed = log.model_copy(deep=True)
    assert changed.header.policy is not None
    changed.header.policy.settings["memory_iterations"] = 0
    policy = replaying_policy(changed, session_dir)
    report = replay_session(
        session_dir,
        lambda config: open_mock_session("prostate-basic", SEED, cache_dir=cache_dir),
        out_dir=tmp_path / "replay",
        policy_for=lambda recorded: policy,
    )
    assert not report.matched
    assert report.summary.stop_reason is StopReason.ERROR
    assert (
        "differs from the recorded" in report.summary.message
        or "mismatch" in report.summary.message.lower()
    )
    json.dumps(report.model_dump(mode="json"))  # the report itself stays serializable


def test_dose_plane_images_of_the_simulated_tps_reach_the_model_and_replay(
    tmp_path: Path, cache_dir: Path
) -> None:
    from fake_llm.images import seen_images

    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        summary, session_dir = _run(tmp_path, cache_dir, server, "anthropic", images=True)
        requests = list(server.llm_requests)
    assert summary.final_evaluation is not None
    assert summary.final_evaluation.score == pytest.approx(9.0)
    images = [seen_images(r.body) for r in requests]
    assert all(len(i) == 1 for i in images)
    # the real dose planes, read once per iteration: a new plan gives a new picture, and no
    # iteration (its proposal and a final "done" call) carries more than one
    distinct = {i[0].data_b64 for i in images}
    assert 1 < len(distinct) <= summary.iterations + 1
    report = replay_session(
        session_dir,
        lambda config: open_mock_session("prostate-basic", SEED, cache_dir=cache_dir),
        out_dir=tmp_path / "replay",
        policy_for=lambda recorded: replaying_policy(recorded, session_dir),
    )
    assert report.matched, report.verdict()  # the re-rendered images equal the recorded ones
