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


@pytest.fixture
def fake_tps_with_planes(monkeypatch: pytest.MonkeyPatch) -> list[FakeTpsSession]:
    opened: list[FakeTpsSession] = []

    def factory(cache_dir: Path | None = None, tg119_path: Path | None = None):  # type: ignore[no-untyped-def]
        def open_session(config: SessionConfig) -> FakeTpsSession:
            opened.append(FakeTpsSession(dose_planes=True))
            return opened[-1]

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    return opened


def test_images_reference_plans_and_a_knowledge_card_reach_the_model_and_replay(
    tmp_path: Path, fake_tps_with_planes: list[FakeTpsSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from fake_llm.images import seen_images

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-cli")
    card = tmp_path / "card.txt"
    card.write_text("Rectum objective 1 works best between 60 and 66 Gy.\nKeep PTV priority high.")
    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        url = server.anthropic_base_url
        first = _plan(tmp_path, "--base-url", url, "--lookahead", "0")
        assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
        second = runner.invoke(
            cli.app,
            ["plan", "--scenario", "prostate-basic", "--out", str(tmp_path / "s2"), "--no-report",
             "--policy", "llm", "--model", "test-model", "--base-url", url, "--lookahead", "0",
             "--images", "--reference-session", str(tmp_path / "s"), "--knowledge-card", str(card)],
        )  # fmt: skip
        assert second.exit_code == 0, second.output
        calls = server.llm_requests[-1:]
    body = calls[0].body
    assert len(seen_images(body)) == 1
    prompt = calls[0].prompt_text
    assert "## Reference plans" in prompt and "The best plan of an earlier session" in prompt
    assert "Rectum objective 1 works best between 60 and 66 Gy." in prompt
    settings = read_journal(tmp_path / "s2").header.policy
    assert settings is not None
    recorded = json.dumps(settings.model_dump(mode="json"))
    assert '"images": true' in recorded and "The best plan of an earlier session" in recorded
    # the replay re-renders the image and re-assembles every request byte for byte
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    replay = runner.invoke(cli.app, ["replay", str(tmp_path / "s2"), "--out", str(tmp_path / "r")])
    assert replay.exit_code == 0, replay.output
    assert "MATCH" in replay.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reference-session", "{tmp}/nowhere"], "no readable session"),
        (["--knowledge-card", "{tmp}/empty.txt"], "is empty"),
        (["--knowledge-card", "{tmp}/long.txt"], "never cut"),
        (["--knowledge-card", "{tmp}/missing.txt"], "cannot read it"),
    ],
)
def test_bad_reference_or_knowledge_inputs_are_refused_before_anything_starts(
    extra: list[str],
    message: str,
    tmp_path: Path,
    fake_tps: list[FakeTpsSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-cli")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "long.txt").write_text("x" * 9000)
    args = [a.format(tmp=tmp_path) for a in extra]
    result = _plan(tmp_path, "--base-url", "http://127.0.0.1:9/", *args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split())  # type: ignore[attr-defined]
    assert fake_tps == [] and not (tmp_path / "s").exists()
