"""``rtplan show``, ``sessions``, ``scenarios``, ``--version`` and what ``--help`` says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from cli_fakes import fake_tps, long_lines, width80  # noqa: F401 (fixtures)
from typer.testing import CliRunner

import agent.cli.main as cli
from agent.cli.case_source import phantom_scenarios
from agent.session.journal import read_journal

runner = CliRunner()


def _session(tmp_path: Path, name: str = "s", *extra: str) -> Path:
    out = tmp_path / "runs" / name
    args = ["plan", "--out", str(out), "--no-report", *extra]
    result = runner.invoke(cli.app, args)
    assert result.exit_code in (0, 130), result.output
    return out


def test_show_prints_one_row_per_iteration(tmp_path: Path, fake_tps, width80) -> None:  # noqa: F811
    session = _session(tmp_path)
    log = read_journal(session)
    result = runner.invoke(cli.app, ["show", str(session)])
    assert result.exit_code == 0, result.output
    assert not long_lines(result.output.split("\n", 1)[1].split("status:")[0])
    rows = [line for line in result.output.splitlines() if re.match(r"^[│ ]*\d+ ", line)]
    assert len(rows) == len(log.iterations)
    assert "template plan" in rows[0] and "accepted" in rows[1]
    assert log.summary is not None and f"status: {log.summary.stop_reason.value}" in result.output


def test_show_json(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    session = _session(tmp_path)
    result = runner.invoke(cli.app, ["show", str(session / "journal.jsonl"), "--json"])
    data = json.loads(result.stdout)
    log = read_journal(session)
    assert [r["iteration"] for r in data["iterations"]] == [r.iteration for r in log.iterations]
    assert data["status"] == log.summary.stop_reason.value  # type: ignore[union-attr]
    assert data["iterations"][0]["what"] == "template plan"


def test_show_of_a_missing_session_is_bad_input(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["show", str(tmp_path / "none")])
    assert result.exit_code == 2 and "error:" in result.output


def test_show_does_not_write_or_lock(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    session = _session(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in session.iterdir()}
    session.chmod(0o555)  # a read-only session directory still shows
    try:
        assert runner.invoke(cli.app, ["show", str(session)]).exit_code == 0
    finally:
        session.chmod(0o755)
    assert {p.name: p.stat().st_mtime_ns for p in session.iterdir()} == before


def test_sessions_lists_status_and_skips_nothing(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    _session(tmp_path, "a-done")
    fake_tps.faults[2] = KeyboardInterrupt()
    _session(tmp_path, "b-interrupted")
    fake_tps.faults.clear()
    broken = tmp_path / "runs" / "c-broken"
    broken.mkdir()
    (broken / "journal.jsonl").write_text("not json\n")
    result = runner.invoke(cli.app, ["sessions", str(tmp_path / "runs")], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any("a-done" in line for line in lines)
    assert any(
        "b-interrupted" in line and "interrupted" in line.split("b-interrupted")[1]
        for line in lines
    )
    assert any("c-broken" in line and "unreadable" in line for line in lines)
    data = json.loads(runner.invoke(cli.app, ["sessions", str(tmp_path / "runs"), "--json"]).stdout)
    assert [r["session"] for r in data] == ["a-done", "b-interrupted", "c-broken"]
    assert data[1]["status"] == "interrupted" and data[2]["status"] == "unreadable"


def test_sessions_of_a_missing_directory(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["sessions", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no session directory" in result.output


def test_scenarios_lists_every_case_with_its_option_and_template(width80) -> None:  # noqa: F811
    result = runner.invoke(cli.app, ["scenarios"])
    assert result.exit_code == 0 and not long_lines(result.output.rsplit("\n", 2)[0])
    for name in phantom_scenarios():
        assert any(f"--scenario {name}" in line for line in result.output.splitlines())
    assert "--tg119 easy|hard" in result.output and "tg119-easy, tg119-hard" in result.output
    data = json.loads(runner.invoke(cli.app, ["scenarios", "--json"]).stdout)
    assert {r["scenario"] for r in data} == {*phantom_scenarios(), "tg119"}
    assert all(r["templates"] for r in data)


def test_version() -> None:
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("rtplan ")
    assert result.output.split()[1][0].isdigit() or result.output.split()[1] == "unknown"


def _commands(group: typer.Typer) -> list[str]:
    names = []
    for info in group.registered_commands:
        names.append(info.name or info.callback.__name__)  # type: ignore[union-attr]
    return names


def test_help_shows_flags_without_a_value_and_every_option_has_help() -> None:
    for command in [*_commands(cli.app), "templates list", "templates show x"]:
        args = [*command.split()[:2], "--help"] if " " in command else [command, "--help"]
        result = runner.invoke(cli.app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, (command, result.output)
        assert "<bool>" not in result.output, command
    click_app = typer.main.get_command(cli.app)
    ctx = click_app.make_context("rtplan", ["--help"], resilient_parsing=True)
    todo = [("rtplan", click_app)]
    seen = 0
    while todo:
        name, command = todo.pop()
        todo += [(f"{name} {k}", c) for k, c in getattr(command, "commands", {}).items()]
        for param in command.get_params(ctx):
            seen += 1
            if param.param_type_name == "option":
                assert param.help, f"{name} {param.opts[0]} has no help text"
    assert seen > 40  # every command, templates' included


def test_exit_codes_are_in_the_help() -> None:
    result = runner.invoke(cli.app, ["--help"], env={"COLUMNS": "200"})
    for code in ("0:", "1:", "2:", "130:", "143:", "129:"):
        assert code in result.output, code


def test_replay_refuses_a_negative_tolerance(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    session = _session(tmp_path)
    result = runner.invoke(cli.app, ["replay", str(session), "--tolerance", "-1"])
    assert result.exit_code == 2 and "--tolerance" in result.output


def test_show_and_sessions_read_a_locked_session(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    from agent.session.journal_lock import SessionLock

    session = _session(tmp_path)
    lock = SessionLock(session)
    lock.acquire()  # as a running session (or a resume) holds it
    try:
        assert runner.invoke(cli.app, ["show", str(session)]).exit_code == 0
        listed = runner.invoke(cli.app, ["sessions", str(session.parent), "--json"])
        assert json.loads(listed.stdout)[0]["status"] != "unreadable"
    finally:
        lock.release()
