"""``rtplan plan --policy bo --bo-budget N`` on the fake TPS: the fair session settings are
journaled and the budget replaces the iteration limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeTpsSession
from typer.testing import CliRunner

import agent.cli.backends as backends
import agent.cli.main as cli
from agent.session.journal import read_journal


@pytest.fixture
def fake_tps(monkeypatch) -> None:
    def factory(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        return lambda config: FakeTpsSession()

    monkeypatch.setattr(backends, "mock_session_factory", factory)


def test_plan_policy_bo_spends_its_budget(fake_tps: None, tmp_path: Path) -> None:
    out = tmp_path / "s"
    result = CliRunner().invoke(
        cli.app,
        ["plan", "--scenario", "prostate-basic", "--policy", "bo", "--bo-budget", "5",
         "--max-iterations", "2", "--out", str(out), "--no-report"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = read_journal(out / "journal.jsonl")
    config = log.header.config
    assert (config.policy, config.max_iterations, config.step_bounds) == ("bo", 5, False)
    assert config.stall_limit == config.patience == 6
    assert log.header.policy is not None and log.header.policy.settings["budget"] == 5
    trials = [r for r in log.iterations if r.proposal.policy == "bo"]
    assert log.summary is not None
    reached = log.summary.final_evaluation is not None and (
        log.summary.final_evaluation.score == log.summary.final_evaluation.max_score
    )
    assert len(trials) == 5 or reached
