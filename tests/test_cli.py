"""``rtplan`` CLI on the fake TPS: plan, resume, replay, report, bad input and exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pytest
import yaml
from fakes import FakeTpsSession
from typer.testing import CliRunner

import agent.cli.backends as backends
import agent.cli.main as cli
from agent.session.journal import read_journal
from agent.session.records import SessionConfig, StopReason

runner = CliRunner()


@dataclass
class FakeTps:
    """The sessions the CLI opened, and faults to inject into the next ones."""

    opened: list[FakeTpsSession] = field(default_factory=list)
    faults: dict[int, BaseException | str] = field(default_factory=dict)


@pytest.fixture
def fake_tps(monkeypatch) -> FakeTps:
    """Every session the CLI opens is a fresh fake TPS."""
    tps = FakeTps()

    def factory(cache_dir: Path | None = None, tg119_path: Path | None = None):  # type: ignore[no-untyped-def]
        def open_session(config: SessionConfig) -> FakeTpsSession:
            tps.opened.append(FakeTpsSession(faults=dict(tps.faults)))
            return tps.opened[-1]

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    return tps


def _plan(tmp_path: Path, *extra: str, input: str | None = None):
    return runner.invoke(
        cli.app,
        [
            "plan",
            "--scenario",
            "prostate-basic",
            "--out",
            str(tmp_path / "s"),
            "--no-report",
            *extra,
        ],
        input=input,
    )


def test_plan_runs_and_prints_the_goals_table(tmp_path: Path, fake_tps) -> None:
    result = _plan(tmp_path)
    assert result.exit_code == 0, result.output
    assert "Clinical goals" in result.output and "ptv_d95" in result.output
    # the fake meets every priority-1 goal but not the priority-3 femur goals
    assert "stop: priority1_met_no_further_improvement" in result.output
    assert read_journal(tmp_path / "s").header.config.scenario == "prostate-basic"


def test_unknown_scenario_and_template(tmp_path: Path, fake_tps) -> None:
    result = _plan(tmp_path, "--scenario", "pancreas")
    assert result.exit_code == 2 and "unknown scenario 'pancreas'" in result.output
    result = _plan(tmp_path, "--template", "nowhere")
    assert result.exit_code == 2 and "unknown template 'nowhere'" in result.output
    result = runner.invoke(cli.app, ["plan", "--tg119", "medium", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and "'medium' is not one of" in " ".join(result.output.split())
    assert fake_tps.opened == []  # nothing was opened


def test_structure_mismatch_is_bad_input(tmp_path: Path, fake_tps) -> None:
    # the liver template needs Liver, SpinalCord, ...: the fake prostate plan has none
    liver = yaml.safe_load((resources.files("site_templates") / "liver.yaml").read_text())
    liver["scenario"] = "prostate-basic"  # else refused earlier: a template for another case
    (tmp_path / "liver.yaml").write_text(yaml.safe_dump(liver))
    result = _plan(tmp_path, "--template", str(tmp_path / "liver.yaml"))
    assert result.exit_code == 2
    assert "cannot map the plan's structures" in result.output
    assert fake_tps.opened[0].set_calls == []


def test_unwritable_output_dir(tmp_path: Path, fake_tps) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(cli.app, ["plan", "--out", str(blocker / "s"), "--no-report"])
    assert result.exit_code == 2 and "cannot write the session journal" in result.output
    assert fake_tps.opened == []


def test_interrupted_session_exit_code_then_resume(tmp_path: Path, fake_tps) -> None:
    fake_tps.faults[2] = KeyboardInterrupt()
    result = _plan(tmp_path)
    assert result.exit_code == 130, result.output
    assert "original objectives were restored" in result.output
    fake_tps.faults.clear()
    result = runner.invoke(cli.app, ["resume", str(tmp_path / "s"), "--no-report"])
    assert result.exit_code == 0, result.output
    log = read_journal(tmp_path / "s")
    assert log.summary is not None
    assert log.summary.stop_reason is StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT


def test_resume_of_a_truncated_journal_is_a_clear_error(tmp_path: Path, fake_tps) -> None:
    assert _plan(tmp_path, "--max-iterations", "1").exit_code == 0
    path = tmp_path / "s" / "journal.jsonl"
    path.write_bytes(path.read_bytes()[:-25])
    before = path.read_bytes()
    result = runner.invoke(cli.app, ["resume", str(path)])
    assert result.exit_code == 2 and "truncated" in result.output
    assert path.read_bytes() == before


def test_replay_reports_match(tmp_path: Path, fake_tps) -> None:
    assert _plan(tmp_path).exit_code == 0
    result = runner.invoke(cli.app, ["replay", str(tmp_path / "s"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "MATCH" in result.output and "tolerance 0.01" in result.output


def test_report_of_a_missing_session(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["report", str(tmp_path / "none")])
    assert result.exit_code == 2 and "error" in result.output


def test_templates_subcommand_is_mounted() -> None:
    result = runner.invoke(cli.app, ["templates", "--help"])
    assert result.exit_code == 0 and "templates" in result.output.lower()


def test_approve_shows_the_proposal_and_stops_on_request(tmp_path: Path, fake_tps) -> None:
    result = _plan(tmp_path, "--approve", input="s\n")
    assert result.exit_code == 0, result.output
    assert "Proposal for iteration 1" in result.output and "Rationale (rule)" in result.output
    assert "stop: clinician_stop" in result.output
    # only the template plan reached the TPS
    assert len(fake_tps.opened[0].set_calls) == 1


def test_a_template_file_path_never_reaches_the_journal_and_resume_asks_for_it(
    tmp_path: Path, fake_tps
) -> None:
    """#8 item 8: a folder name can identify a patient; the journal keeps the template's
    name and hash only, and resume/replay need the file again."""
    folder = tmp_path / "Smith_John_1234567"
    folder.mkdir()
    shipped = resources.files("site_templates").joinpath("prostate-basic.yaml").read_text()
    template_file = folder / "custom.yaml"
    template_file.write_text(shipped)
    fake_tps.faults[2] = KeyboardInterrupt()  # leave it resumable
    result = _plan(tmp_path, "--template", str(template_file))
    assert result.exit_code == 130, result.output
    session = tmp_path / "s"
    for path in session.rglob("*"):
        if path.is_file():
            assert b"Smith_John" not in path.read_bytes(), path
    config = read_journal(session).header.config
    assert config.template == "prostate-basic" and config.template_from_file
    fake_tps.faults.clear()
    result = runner.invoke(cli.app, ["resume", str(session), "--no-report"])
    assert result.exit_code == 2
    assert "pass that file with --template FILE" in " ".join(result.output.split())
    result = runner.invoke(
        cli.app, ["resume", str(session), "--template", str(template_file), "--no-report"]
    )
    assert result.exit_code == 0, result.output


def test_a_fine_grid_is_offered_but_only_brain_srs_takes_it(tmp_path: Path) -> None:
    """--spacing-mm goes down to 1 mm (brain-srs's HD-MLC grid); the scenario decides."""
    result = runner.invoke(
        cli.app,
        ["plan", "--scenario", "liver", "--spacing-mm", "1.5", "--out", str(tmp_path / "x")],
    )
    assert result.exit_code == 2
    assert "within 2-5 mm for liver, got 1.5" in " ".join(result.output.split())
    assert not (tmp_path / "x").exists()
    result = runner.invoke(cli.app, ["plan", "--spacing-mm", "0.5"])
    assert result.exit_code == 2  # below the option's own range
