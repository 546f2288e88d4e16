"""``rtplan plan --policy llm`` end to end on the fake TPS and the loopback fake server:
the session runs, resumes and replays; a missing key or a cloud URL is refused before
anything touches the plan, leaving no session directory (#10 item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_llm import FakeLlmServer, planner
from fake_llm_planner import decide
from fakes import FakeTpsSession
from typer.testing import CliRunner

import agent.cli.backends as backends
import agent.cli.main as cli
from agent.session.journal import read_journal
from agent.session.records import SessionConfig, StopReason

runner = CliRunner()


@pytest.fixture
def fake_tps(monkeypatch: pytest.MonkeyPatch) -> list[FakeTpsSession]:
    opened: list[FakeTpsSession] = []

    def factory(cache_dir: Path | None = None, tg119_path: Path | None = None):  # type: ignore[no-untyped-def]
        def open_session(config: SessionConfig) -> FakeTpsSession:
            opened.append(FakeTpsSession())
            return opened[-1]

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    return opened


def _plan(tmp_path: Path, *extra: str) -> object:
    return runner.invoke(
        cli.app,
        ["plan", "--scenario", "prostate-basic", "--out", str(tmp_path / "s"), "--no-report",
         "--policy", "llm", "--model", "test-model", *extra],
    )  # fmt: skip


def test_llm_session_through_the_cli_then_replay_matches(
    tmp_path: Path, fake_tps: list[FakeTpsSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-cli")
    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        result = _plan(tmp_path, "--base-url", server.anthropic_base_url, "--lookahead", "1")
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    log = read_journal(tmp_path / "s")
    assert log.summary is not None
    assert log.summary.stop_reason not in (StopReason.ERROR, StopReason.INTERRUPTED)
    assert log.header.config.policy == "llm" and log.header.config.lookahead_trials == 1
    assert log.summary.model_calls is not None and log.summary.model_calls.calls >= 1
    # replay needs neither the server nor a key: the responses come from the recording
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    replay = runner.invoke(cli.app, ["replay", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
    assert replay.exit_code == 0, replay.output
    assert "MATCH" in replay.output


def test_a_missing_key_is_refused_before_anything_touches_the_plan(
    tmp_path: Path, fake_tps: list[FakeTpsSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = _plan(tmp_path, "--base-url", "http://127.0.0.1:9/")
    assert result.exit_code != 0
    assert "ANTHROPIC_API_KEY" in result.output  # type: ignore[attr-defined]
    assert fake_tps == [] and not (tmp_path / "s").exists()


def test_a_cloud_server_needs_allow_cloud(
    tmp_path: Path, fake_tps: list[FakeTpsSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-cli")
    result = _plan(tmp_path)  # the provider's own (cloud) endpoint
    assert result.exit_code != 0
    assert "--allow-cloud" in result.output  # type: ignore[attr-defined]
    assert fake_tps == [] and not (tmp_path / "s").exists()


def test_an_unreachable_server_is_refused_before_anything_touches_the_plan(
    tmp_path: Path, fake_tps: list[FakeTpsSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cli")
    result = _plan(
        tmp_path, "--provider", "openai-compatible", "--base-url", "http://127.0.0.1:9/v1"
    )
    assert result.exit_code != 0
    assert fake_tps == [] and not (tmp_path / "s").exists()
