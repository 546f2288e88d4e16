"""Item 5 of #8: a replay's verdict never contradicts itself and says why a table stops early."""

from __future__ import annotations

from pathlib import Path

from fakes import FakeStructure, FakeTpsSession
from journal_helpers import factory, run_session
from typer.testing import CliRunner

from agent.cli import main as cli
from agent.session.replay import replay_session

runner = CliRunner()


def _softer() -> list[FakeStructure]:
    return [
        FakeStructure(s.structure_id, s.dicom_type, s.volume_cm3, s.free_max_gy * 0.97)
        for s in FakeTpsSession().structures_spec
    ]


def test_a_match_says_every_recorded_iteration_was_replayed(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    result = replay_session(tmp_path / "s", factory(), out_dir=tmp_path / "r")
    n = result.recorded_iterations
    assert result.matched and result.replayed_iterations == n
    assert result.verdict().startswith(f"MATCH: all {n} recorded iterations replayed")


def test_a_mismatch_names_the_iteration_the_metric_and_the_difference(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    result = replay_session(
        tmp_path / "s", factory(structures_spec=_softer()), out_dir=tmp_path / "r"
    )
    assert not result.matched and result.mismatches
    first = result.mismatches[0]
    assert first.worst and first.worst_recorded is not None and first.worst_replayed is not None
    verdict = result.verdict()
    assert verdict.startswith("MISMATCH: ")
    assert f"first at iteration {first.iteration}, {first.worst}: recorded " in verdict
    assert "within" not in verdict  # never "MISMATCH ... replayed within 0.01"
    assert abs(abs(first.worst_recorded - first.worst_replayed) - first.max_abs_difference) < 1e-9


def test_a_replay_that_stops_early_says_how_far_it_got_and_why(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    result = replay_session(tmp_path / "s", factory(faults={2: "fail"}), out_dir=tmp_path / "r")
    assert not result.matched
    assert result.replayed_iterations == 1 < result.recorded_iterations
    assert "the replay stopped after iteration 0 (error: " in result.stopped_early
    assert result.verdict().startswith(
        f"INCOMPLETE: 1 of {result.recorded_iterations} recorded iterations replayed: "
        "the replay stopped after iteration 0 (error"
    )


def test_the_replay_command_prints_the_verdict_and_exits_1(tmp_path: Path, monkeypatch) -> None:
    run_session(tmp_path / "s")
    monkeypatch.setattr(
        "agent.cli.backends.mock_session_factory",
        lambda *args, **kwargs: factory(faults={2: "fail"}),
    )
    result = runner.invoke(
        cli.app, ["replay", str(tmp_path / "s"), "--out", str(tmp_path / "r")], terminal_width=200
    )
    assert result.exit_code == 1, result.output
    assert "INCOMPLETE: 1 of " in result.output and "stopped after iteration 0" in result.output
    assert "MISMATCH: 1/" not in result.output
