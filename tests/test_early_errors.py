"""A session that cannot start leaves no empty session directory behind (#8 item 7); one
that fails once its journal exists leaves a journal that says what failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template
from typer.testing import CliRunner

import agent.cli.backends as backends
import agent.cli.main as cli
from agent.policies import RulePolicy
from agent.session.guardrails import GuardLimits
from agent.session.journal import JournalError, read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig, StopReason
from agent.session.start import leave_no_empty_dirs, probe_writable
from agent.templates import StructureMatchError
from esapi_bridge.dto import ApprovalStatus
from esapi_bridge.errors import PlanLocked

TEMPLATE = frozen_prostate_template()
runner = CliRunner()


def _loop(out: Path, fake: FakeTpsSession, **kw: Any) -> PlanningLoop:
    config = SessionConfig(template="prostate-basic")
    return PlanningLoop(fake, TEMPLATE, RulePolicy(), config, out, save_snapshots=False, **kw)


def _without(structure_id: str) -> FakeTpsSession:
    spec = [s for s in FakeTpsSession().structures_spec if s.structure_id != structure_id]
    return FakeTpsSession(structures_spec=spec)


def test_structure_mismatch_leaves_no_directory(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "s"
    with pytest.raises(StructureMatchError, match="Rectum"):
        _loop(out, _without("Rectum")).run()
    assert not (tmp_path / "runs").exists()


def test_locked_plan_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTpsSession()
    info = fake.plan_info().model_copy(update={"approval_status": ApprovalStatus.PLANNING_APPROVED})
    monkeypatch.setattr(fake, "plan_info", lambda: info)
    with pytest.raises(PlanLocked):
        _loop(tmp_path / "s", fake).run()
    assert not (tmp_path / "s").exists()


def test_a_header_that_cannot_be_written_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Any, entry: Any) -> None:
        raise JournalError("cannot write the session journal: the disk is full")

    monkeypatch.setattr("agent.session.journal.Journal.write", full)
    fake = FakeTpsSession()
    with pytest.raises(JournalError, match="disk is full"):
        _loop(tmp_path / "a" / "s", fake).run()
    assert not (tmp_path / "a").exists() and fake.set_calls == []


def test_a_failure_after_the_header_is_journaled(tmp_path: Path) -> None:
    # every OAR objective of the template above 10 % of Rx: the guardrails reject iteration 0
    fake = FakeTpsSession()
    summary = _loop(tmp_path / "s", fake, guard_limits=GuardLimits(oar_ceiling_rx=0.1)).run()
    assert summary.stop_reason is StopReason.ERROR
    log = read_journal(tmp_path / "s")
    assert log.summary is not None and "template objectives rejected" in log.summary.message
    assert any(e.kind == "error" and "rejected" in e.message for e in log.events)
    assert fake.set_calls == [[]]  # only the restore of the (empty) original objectives


def test_probe_writable_and_leave_no_empty_dirs(tmp_path: Path) -> None:
    probe_writable(tmp_path / "x" / "y")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError), leave_no_empty_dirs(tmp_path / "a" / "b"):
        (tmp_path / "a" / "b").mkdir(parents=True)
        raise RuntimeError("failed")
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "k"
    with pytest.raises(RuntimeError), leave_no_empty_dirs(kept / "s"):
        (kept / "s").mkdir(parents=True)
        (kept / "s" / "journal.jsonl").write_text("x\n")
        raise RuntimeError("failed")
    assert (kept / "s" / "journal.jsonl").is_file()  # never removes what holds a file


# ------------------------------------------------------------------ the CLI
@pytest.fixture
def fake_plan(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The CLI opens ``fake_plan["session"]`` (default: the prostate fake)."""
    chosen: dict[str, Any] = {"session": None}

    def factory(*args: Any, **kwargs: Any) -> Any:
        def open_session(config: SessionConfig) -> FakeTpsSession:
            return chosen["session"] or FakeTpsSession()

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    return chosen


def _plan(out: Path, *extra: str) -> Any:
    return runner.invoke(cli.app, ["plan", "--out", str(out), "--no-report", *extra])


def test_cli_structure_mismatch_leaves_no_directory(tmp_path: Path, fake_plan: dict) -> None:
    fake_plan["session"] = _without("Rectum")
    result = _plan(tmp_path / "runs" / "s", "--scenario", "prostate-basic")
    assert result.exit_code == 2 and "Rectum" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ("--scenario", "prostate-basic", "--template", "liver"),  # template for another case
        ("--scenario", "prostate-basic", "--policy", "nope"),  # policy error before iteration 0
    ],
    ids=["template-scenario-mismatch", "unknown-policy"],
)
def test_cli_early_errors_leave_no_directory(
    tmp_path: Path, fake_plan: dict, args: tuple[str, ...]
) -> None:
    result = _plan(tmp_path / "runs" / "s", *args)
    assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_seed_leaves_no_directory(tmp_path: Path) -> None:
    # the real simulated TPS (or the option check before it) refuses the seed
    result = _plan(tmp_path / "runs" / "s", "--scenario", "prostate-basic", "--seed", "-1")
    assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_case_that_cannot_be_opened_leaves_no_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from esapi_bridge.errors import InvalidInput

    def factory(*args: Any, **kwargs: Any) -> Any:
        def open_session(config: SessionConfig) -> FakeTpsSession:
            raise InvalidInput("seed must be an integer >= 0, got 10**9")

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    result = _plan(tmp_path / "runs" / "s", "--scenario", "prostate-basic")
    assert result.exit_code == 2 and "seed must be" in result.output, result.output
    assert list(tmp_path.iterdir()) == []
