"""What the CLI prints: 80-column tables, user text printed as typed, JSON on stdout only."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from cli_fakes import fake_tps, long_lines, width80  # noqa: F401 (fixtures)
from rich.console import Console
from typer.testing import CliRunner

import agent.cli.main as cli
from agent.cli.output import goals_table, iteration_line, score_change_text
from agent.cli.tables import num
from agent.evaluation import Evaluation
from agent.session.journal import read_journal
from agent.session.records import SessionSummary, StopReason
from agent.templates import list_templates, load_template

runner = CliRunner()


def _plan(tmp_path: Path, *extra: str):
    args = ["plan", "--out", str(tmp_path / "s"), "--no-report", *extra]
    return runner.invoke(cli.app, args)


def _summary(tmp_path: Path, fake_tps) -> SessionSummary:  # noqa: F811
    assert _plan(tmp_path).exit_code == 0
    summary = read_journal(tmp_path / "s").summary
    assert summary is not None
    return summary


def _long_ids(ev: Evaluation) -> Evaluation:
    """The goals renamed like the longest shipped ids (TG-119's, head-and-neck's)."""
    goals = [
        g.model_copy(
            update={
                "goal_id": f"target_ci_paddick{i}",
                "plan_structure_id": "Bone_Mandible[L]",
                "metric": "CI_paddick",
                "value": 1234.5678 + i,
            }
        )
        for i, g in enumerate(ev.goals)
    ]
    return ev.model_copy(update={"goals": goals})


def _render(renderable: object, width: int = 80) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width).print(renderable)
    return out.getvalue().splitlines()


def test_goals_table_at_80_columns_keeps_ids_and_numbers_whole(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    summary = _summary(tmp_path, fake_tps)
    assert summary.initial_evaluation and summary.final_evaluation
    initial, final = _long_ids(summary.initial_evaluation), _long_ids(summary.final_evaluation)
    lines = _render(goals_table(initial, final, "Clinical goals", width=80))
    assert not long_lines("\n".join(lines))
    for g in final.goals:
        row = next(line for line in lines if f"{g.goal_id} " in line)  # one line per goal
        assert num(g.value) in row and num(g.limit) in row
        assert "1234.568" not in row  # rounded, not full precision


def test_goals_table_is_complete_when_wide(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    summary = _summary(tmp_path, fake_tps)
    lines = _render(
        goals_table(summary.initial_evaluation, summary.final_evaluation, "goals", width=160), 160
    )
    assert "structure" in lines[2] and "initial" in lines[2]


def test_templates_list_and_show_at_80_columns(width80) -> None:  # noqa: F811
    result = runner.invoke(cli.app, ["templates", "list"])
    assert result.exit_code == 0 and not long_lines(result.output)
    for name in list_templates():
        assert any(line.startswith(name + " ") for line in result.output.splitlines()), name
    assert "79.2 Gy / 44 fx" in result.output
    for name in list_templates():
        result = runner.invoke(cli.app, ["templates", "show", name])
        assert result.exit_code == 0, result.output
        tables = result.output.split("\n", 4)[-1]  # the header lines are text, not tables
        assert not long_lines(tables), name
        lines = result.output.splitlines()
        for g in load_template(name).goals:
            row = next(line for line in lines if re.search(rf"(^|[ │]){re.escape(g.id)} ", line))
            assert g.metric.text in row


def test_templates_list_and_show_json() -> None:
    result = runner.invoke(cli.app, ["templates", "list", "--json"])
    data = json.loads(result.stdout)
    assert [t["name"] for t in data] == list_templates()
    liver = next(t for t in data if t["name"] == "liver")
    assert liver["max_score"] == 4 and liver["scenario"] == "liver"
    bad = runner.invoke(cli.app, ["templates", "show", "nope", "--json"])
    assert bad.exit_code == 2 and bad.stdout == "" and "no template named" in bad.stderr


def test_plan_json_is_the_only_thing_on_stdout(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    result = _plan(tmp_path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["stop_reason"] == read_journal(tmp_path / "s").summary.stop_reason  # type: ignore[union-attr]
    assert data["journal"].endswith("journal.jsonl") and data["report"] is None
    assert "Clinical goals" in result.stderr and "iter  0" in result.stderr


def test_plan_json_after_an_interrupt_still_prints_the_summary(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    fake_tps.faults[2] = KeyboardInterrupt()
    result = _plan(tmp_path, "--json")
    assert result.exit_code == 130
    assert json.loads(result.stdout)["summary"]["stop_reason"] == "interrupted"


def test_score_after_an_interrupt_reads_sensibly(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    fake_tps.faults[2] = KeyboardInterrupt()
    result = _plan(tmp_path)
    assert result.exit_code == 130
    assert "-> final: none (interrupted; the original objectives were restored)" in result.output
    assert "-> -" not in result.output
    summary = read_journal(tmp_path / "s").summary
    assert summary is not None and summary.stop_reason is StopReason.INTERRUPTED
    assert score_change_text(summary).startswith("score ")


def test_iteration_line_rounds_and_fits(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    _summary(tmp_path, fake_tps)
    for record in read_journal(tmp_path / "s").iterations:
        line = iteration_line(record)
        assert len(line) <= 80 and "opt " in line


@pytest.mark.parametrize("name", ["[/]", "[bold]x", "a[/b]"])
def test_markup_in_a_scenario_name_is_a_clear_error(name: str, fake_tps) -> None:  # noqa: F811
    result = runner.invoke(cli.app, ["plan", "--scenario", name])
    assert result.exit_code == 2, result.output
    assert f"unknown scenario '{name}'" in " ".join(result.output.split())
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_a_path_with_brackets_prints_whole(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    out = tmp_path / "[old]" / "s"
    result = runner.invoke(cli.app, ["plan", "--out", str(out), "--no-report"])
    assert result.exit_code == 0, result.output
    assert f"-> {out}" in result.output and f"journal: {out}" in result.output
    missing = tmp_path / "[old]" / "t.yaml"
    result = runner.invoke(cli.app, ["templates", "show", str(missing)])
    assert result.exit_code == 2 and str(missing) in result.output


def test_template_errors_keep_their_brackets(tmp_path: Path) -> None:
    bad = tmp_path / "[x].yaml"
    bad.write_text("name: [unclosed\n")
    result = runner.invoke(cli.app, ["templates", "validate", str(bad)])
    assert result.exit_code == 1 and str(bad) in result.output
    result = runner.invoke(cli.app, ["plan", "--template", str(bad)])
    assert result.exit_code == 2 and f"error: {bad}" in result.output


def test_plan_json_on_bad_input_prints_no_json(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    result = _plan(tmp_path, "--json", "--scenario", "pancreas")
    assert result.exit_code == 2 and result.stdout == ""
    assert "unknown scenario 'pancreas'" in result.stderr


def test_approve_end_of_input_stops_with_the_summary(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    result = runner.invoke(
        cli.app,
        ["plan", "--out", str(tmp_path / "s"), "--no-report", "--approve"],
        input="",  # the input ends at the first question
    )
    assert result.exit_code == 0, result.output
    assert "Enter" in result.output and "end of input" in result.output
    assert "stop: clinician_stop" in result.output and "Clinical goals" in result.output
    assert "Aborted" not in result.output
