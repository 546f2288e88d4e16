"""SIGTERM and SIGHUP stop a session like Ctrl-C (#8 item 6): the plan's original objectives
restored, a ``restore`` intent, the summary naming the signal, exit codes 143 / 129 / 130;
an interrupted report build leaves a complete report or none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakes import ORIGINAL_OBJECTIVES as ORIGINAL
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template
from typer.testing import CliRunner

import agent.cli.backends as backends
import agent.cli.main as cli
import agent.report.build as report_build
from agent.policies import RulePolicy
from agent.report import build_report
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig, StopReason
from agent.session.signals import (
    EXIT_CODES,
    InterruptOnSignals,
    SessionInterrupted,
    exit_code,
)
from esapi_bridge.dto import OptimizeRequest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

TEMPLATE = frozen_prostate_template()
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SignallingTps(FakeTpsSession):
    """The fake TPS, sending this process a signal from inside chosen optimizer calls
    (the fault hook: the signal arrives while the TPS works) or restores."""

    signal_at: dict[int, int] = field(default_factory=dict)  # optimizer call -> signal
    signal_on_restore: int | None = None

    def optimize(self, request: OptimizeRequest) -> Any:
        signum = self.signal_at.get(self.optimize_calls + 1)
        if signum is not None:
            os.kill(os.getpid(), signum)
        return super().optimize(request)

    def set_objectives(self, objectives: Any) -> None:
        if self.signal_on_restore is not None and list(objectives) == ORIGINAL and self.set_calls:
            os.kill(os.getpid(), self.signal_on_restore)
        super().set_objectives(objectives)


def _loop(tmp_path: Path, fake: FakeTpsSession) -> PlanningLoop:
    config = SessionConfig(template="prostate-basic")
    return PlanningLoop(fake, TEMPLATE, RulePolicy(), config, tmp_path / "s", save_snapshots=False)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_mid_session_restores_and_is_recorded(tmp_path: Path, signum: int) -> None:
    fake = SignallingTps(initial_objectives=list(ORIGINAL), signal_at={2: signum})
    before = signal.getsignal(signum)
    with InterruptOnSignals() as signals:
        summary = _loop(tmp_path, fake).run()
    assert signal.getsignal(signum) is before  # the previous handler is back
    assert signals.received is not None and signals.received.signum == signum
    name = signal.Signals(signum).name
    assert summary.stop_reason is StopReason.INTERRUPTED
    assert summary.restored_original and fake.get_objectives() == ORIGINAL
    assert f"{name} (signal {int(signum)})" in summary.message
    assert "original objectives were restored" in summary.message
    log = read_journal(tmp_path / "s")
    assert log.intents[-1].purpose == "restore"
    interrupted = [e for e in log.events if e.kind == "interrupted"]
    assert len(interrupted) == 1 and name in interrupted[0].message
    assert "restored" in [e.kind for e in log.events]
    saved = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert saved["stop_reason"] == "interrupted" and name in saved["message"]


def test_a_second_signal_does_not_interrupt_the_restore(tmp_path: Path) -> None:
    fake = SignallingTps(
        initial_objectives=list(ORIGINAL),
        signal_at={2: signal.SIGTERM},
        signal_on_restore=signal.SIGTERM,
    )
    with InterruptOnSignals():
        summary = _loop(tmp_path, fake).run()
    assert summary.restored_original and fake.get_objectives() == ORIGINAL
    assert read_journal(tmp_path / "s").summary is not None


def test_exit_codes_and_handlers_outside_the_block() -> None:
    assert EXIT_CODES == {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
    for name, code in EXIT_CODES.items():
        assert exit_code(int(getattr(signal, name))) == code
        assert SessionInterrupted(int(getattr(signal, name))).exit_code == code
    assert isinstance(SessionInterrupted(signal.SIGTERM), KeyboardInterrupt)
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SessionInterrupted) as caught, InterruptOnSignals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises before this returns
    assert caught.value.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is previous


# ------------------------------------------------------------------ the CLI
runner = CliRunner()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[SignallingTps]:
    """The CLI opens signalling fakes; set ``signal_at`` through ``opened_faults``."""
    sessions: list[SignallingTps] = []

    def factory(*args: Any, **kwargs: Any) -> Any:
        def open_session(config: SessionConfig) -> SignallingTps:
            sessions.append(SignallingTps(signal_at=dict(FAULTS)))
            return sessions[-1]

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    return sessions


FAULTS: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _no_faults() -> Any:
    FAULTS.clear()
    yield
    FAULTS.clear()


def _plan(tmp_path: Path, *extra: str) -> Any:
    args = ["plan", "--scenario", "prostate-basic", "--out", str(tmp_path / "s"), *extra]
    return runner.invoke(cli.app, args)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_cli_exit_code_names_the_signal(
    tmp_path: Path, opened: list, signum: int, code: int
) -> None:
    FAULTS[2] = signum
    result = _plan(tmp_path, "--no-report")
    assert result.exit_code == code, result.output
    assert "original objectives were restored" in result.output
    log = read_journal(tmp_path / "s")
    assert log.summary is not None and log.summary.stop_reason is StopReason.INTERRUPTED
    assert signal.Signals(signum).name in log.summary.message
    assert opened[0].get_objectives() == []  # the fake's original (empty) objectives


def test_cli_report_build_interrupted_leaves_none_and_says_how_to_rebuild(
    tmp_path: Path, opened: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*args: Any, **kwargs: Any) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        return ""

    monkeypatch.setattr(report_build, "_render_html", killed)
    result = _plan(tmp_path)
    assert result.exit_code == 143, result.output
    session = tmp_path / "s"
    assert "report build stopped" in result.output and "rtplan report" in result.output
    assert not (session / "report").exists()
    assert [p.name for p in session.iterdir() if p.name.startswith(".report")] == []
    # the session itself finished normally
    log = read_journal(session)
    assert log.summary is not None and log.summary.stop_reason is not StopReason.INTERRUPTED


def test_cli_signal_after_the_session_ended(
    tmp_path: Path, opened: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.cli.output as output

    def killed(*args: Any, **kwargs: Any) -> str:
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(1)
        return ""

    monkeypatch.setattr(output, "goals_table", killed)
    result = _plan(tmp_path, "--no-report")
    assert result.exit_code == 129, result.output
    assert "the session had ended" in result.output
    log = read_journal(tmp_path / "s")
    assert log.summary is not None and log.summary.stop_reason is not StopReason.INTERRUPTED


def test_interrupted_rebuild_keeps_the_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SessionConfig(template="prostate-basic", max_iterations=1)
    loop = PlanningLoop(
        FakeTpsSession(), TEMPLATE, RulePolicy(), config, tmp_path / "s", save_snapshots=False
    )
    loop.run()
    html = build_report(tmp_path / "s")
    before = {p.name: p.read_bytes() for p in html.parent.iterdir()}

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise SessionInterrupted(signal.SIGTERM)

    monkeypatch.setattr(report_build, "_write_csv", interrupted)
    with pytest.raises(SessionInterrupted):
        build_report(tmp_path / "s")
    assert {p.name: p.read_bytes() for p in html.parent.iterdir()} == before
    assert [p.name for p in (tmp_path / "s").iterdir() if p.name.startswith(".report")] == []


def test_sigterm_stops_a_real_rtplan_plan(tmp_path: Path) -> None:
    """``rtplan plan`` in its own process on prostate-basic: SIGTERM while it waits for the
    clinician (``--approve``, stdin open and silent) -> exit 143, plan restored, summary."""
    session = tmp_path / "s"
    args = [
        sys.executable, "-c", "from agent.cli import app; app(prog_name='rtplan')",
        "plan", "--scenario", "prostate-basic",
        "--out", str(session), "--approve", "--no-report", "--cache-dir", str(tmp_path / "c"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        journal = session / "journal.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and '"entry":"iteration"' in journal.read_text():
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[0].decode()
        time.sleep(0.5)  # at the clinician's prompt
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = output.decode()
    assert proc.returncode == 143, text
    assert "Traceback" not in text
    summary = json.loads((session / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and "SIGTERM" in summary["message"]
    assert summary["restored_original"] is True
    log = read_journal(session)
    assert log.intents[-1].purpose == "restore"
    assert log.intents[-1].objectives == log.header.original_objectives
