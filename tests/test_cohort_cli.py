"""``rtplan cohort run`` on the fake TPS: tables, files, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cohort_fakes import FakeCases, InlineExecutor
from typer.testing import CliRunner

import agent.cli.cohort as cohort_cli
import agent.cli.main as cli
import agent.cohort as cohort

runner = CliRunner()


@pytest.fixture
def fake_cases(monkeypatch) -> None:
    """The fake TPS, and the jobs run in this process (the pools are tested elsewhere)."""
    monkeypatch.setattr(cohort_cli, "MockCases", FakeCases)
    real = cohort.make_executor

    def inline(name: str, **kwargs):  # type: ignore[no-untyped-def]
        chosen = real(name, **kwargs)  # the CLI's checks of --executor and --address
        return InlineExecutor() if name == "local" else chosen

    monkeypatch.setattr(cohort, "make_executor", inline)


def test_cohort_run_writes_json_csv_and_plot(fake_cases: None, tmp_path: Path) -> None:
    out = tmp_path / "c"
    result = runner.invoke(
        cli.app,
        ["cohort", "run", "--scenario", "prostate-basic", "--policies", "rule,bo",
         "--seeds", "0-1", "--bo-budget", "3", "--max-iterations", "2", "--workers", "1",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "paired differences" in result.output
    data = json.loads((out / "cohort.json").read_text())
    assert data["spec"]["seeds"] == [0, 1]
    assert {r["policy"] for r in data["results"]} == {"rule", "bo"}
    assert (out / "cases.csv").is_file() and (out / "best_so_far.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "3-1"], "must be A-B"),
        (["--executor", "spark"], "unknown executor 'spark'"),
        (["--address", "ray://127.0.0.1:1"], "--address is for --executor ray"),
        (["--policies", "llm-replay"], "--replay-dir"),
    ],
)
def test_cohort_run_bad_input_exits_2(
    fake_cases: None, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        cli.app, ["cohort", "run", "--scenario", "prostate-basic", *args, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_stop_signal_ends_the_run_with_its_exit_code_and_keeps_the_finished_cases(
    fake_cases: None, tmp_path: Path, monkeypatch
) -> None:
    """SIGTERM after the first case: exit 143, the finished case kept in cases.jsonl, and
    the message says where it is and what summarizes it."""
    import signal

    from agent.session.signals import SessionInterrupted

    class StoppedAfterOne(InlineExecutor):
        def map(self, jobs, factory, threads):  # type: ignore[no-untyped-def]
            results = super().map(jobs, factory, threads)
            yield next(results)
            raise SessionInterrupted(signal.SIGTERM)

    monkeypatch.setattr(cohort, "make_executor", lambda name, **kw: StoppedAfterOne())
    out = tmp_path / "c"
    result = runner.invoke(
        cli.app,
        ["cohort", "run", "--scenario", "prostate-basic", "--policies", "rule",
         "--seeds", "0-2", "--max-iterations", "2", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 143, result.output
    assert "cases.jsonl" in result.output and "--from" in result.output
    lines = (out / "cases.jsonl").read_text().splitlines()
    assert [json.loads(line)["seed"] for line in lines] == [0]
    assert not (out / "cohort.json").exists()
