"""``rtplan cohort run``: every policy on the same simulated cases, locally or on Ray.

The composition root of cohorts: :class:`MockCases` opens the simulated TPS for every job
(the only place a cohort touches ``mock_tps``); :mod:`agent.cohort` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.app_base import Command, Group
from agent.cli.console import console, esc
from agent.cli.errors import CliError, fail, known_errors
from agent.cohort.models import CaseResult
from agent.cohort.runner import CohortReport
from agent.session.records import SessionConfig
from esapi_bridge.port import TpsSession

cohort_app = typer.Typer(
    name="cohort",
    help="Cohort studies: every policy on the same cases (scenario x seed), paired.",
    no_args_is_help=True,
    cls=Group,
)


@dataclass(frozen=True)
class MockCases:
    """The simulated TPS as a cohort's case factory (picklable: sent to every worker)."""

    cache_dir: str | None = None

    def open_session(self, config: SessionConfig) -> TpsSession:
        """A fresh simulated plan of ``config``'s scenario and seed."""
        from agent.cli.backends import mock_session_factory

        cache = None if self.cache_dir is None else Path(self.cache_dir)
        return mock_session_factory(cache)(config)

    def engine_version(self) -> str:
        """The simulated dose engine's version."""
        from mock_tps.dose_engine import ENGINE_VERSION

        return str(ENGINE_VERSION)

    def policy_options(self, policy: str) -> dict[str, Any]:
        """What ``rtplan plan`` gives ``make_policy`` (:func:`agent.cli.knowledge.policy_options`)."""
        from agent.cli.knowledge import policy_options

        return policy_options(policy)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def result_line(r: CaseResult) -> str:
    """One line of progress per finished case."""
    tag = " (replay)" if r.replay else ""
    head = f"{r.scenario} seed {r.seed} {r.policy}{tag}:"
    if r.error is not None:
        return f"{head} error: {r.error}"
    return (
        f"{head} score {_num(r.initial_score)} -> {_num(r.final_score)}"
        f"{' (max)' if r.max_reached else ''}, best after {r.iterations_to_best} it / "
        f"{r.inner_optimizations_to_best} opt, {r.wall_s:.0f} s"
    )


def print_report(report: CohortReport) -> None:
    """The summary table, the paired differences and the BO reach ratios."""
    from agent.cli.tables import Column, fit_table

    width = console.width
    columns = [
        Column("scenario", key=True), Column("policy", key=True),
        Column("cases", key=True, justify="right", short="n"),
        Column("errors", key=True, justify="right", drop=3, short="err"),
        Column("score", key=True, justify="right"),
        Column("at max", key=True, justify="right", short="max"),
        Column("it to best", key=True, justify="right", drop=1, short="it"),
        Column("opt to best", key=True, justify="right", short="opt"),
        Column("opt", key=True, justify="right", drop=4, short="all"),
        Column("wall s", key=True, justify="right", drop=2, short="s"),
    ]  # fmt: skip
    rows = [
        [
            esc(s.scenario), esc(s.policy), str(s.cases), str(s.errors), s.final_score.text(),
            f"{s.max_reached_fraction:.0%}", s.iterations_to_best.text(1),
            s.inner_optimizations_to_best.text(1), s.inner_optimizations.text(1),
            s.wall_s.text(0),
        ]
        for s in report.summary
    ]  # fmt: skip
    title = f"cohort: {len(report.results)} cases, {report.total_wall_s:.0f} s (mean +- sd)"
    console.print(fit_table(columns, rows, width, title=title))
    if report.paired:
        paired_columns = [
            Column("scenario", key=True), Column("a - b", key=True),
            Column("seeds", key=True, justify="right", short="n"),
            Column("score", key=True, justify="right"),
            Column("opt to best", key=True, justify="right", drop=1, short="opt"),
        ]  # fmt: skip
        paired_rows = [
            [
                esc(d.scenario), esc(f"{d.policy_a} - {d.policy_b}"), str(len(d.seeds)),
                d.final_score.text(), d.inner_optimizations_to_best.text(1),
            ]
            for d in report.paired
        ]  # fmt: skip
        paired_title = "paired differences, same seeds (mean +- sd)"
        console.print(fit_table(paired_columns, paired_rows, width, title=paired_title))
    for r in report.reach:
        median = "-" if r.median_ratio is None else f"{r.median_ratio:.1f}x"
        console.print(
            f"{r.scenario}: {r.slow} reaches {r.fast}'s final score on "
            f"{len(r.reached_seeds)}/{len(r.reached_seeds) + len(r.never_reached)} seeds, "
            f"with {r.ratio.text(1)} x its inner optimizations (median {median})"
            + (f"; never on seeds {r.never_reached}" if r.never_reached else ""),
            highlight=False,
        )
    for policy, why in report.unavailable.items():
        console.print(f"[yellow]not run:[/] {esc(policy)}: {esc(why)}", highlight=False)
    for skipped in report.skipped_replays:
        console.print(f"[yellow]not replayed:[/] {esc(skipped.session)}: {esc(skipped.reason)}")


@cohort_app.command("run", cls=Command)
def run(
    scenario: Annotated[
        list[str], typer.Option("--scenario", help="Scenario (repeat for several).")
    ],
    policies: Annotated[
        str, typer.Option(help="Comma-separated: rule, knowledge, drl, bo, llm-replay.")
    ] = "rule,bo",
    seeds: Annotated[str, typer.Option(help="Seeds: 0-9, 3 or 0-4,20.")] = "0-9",
    executor: Annotated[str, typer.Option(help="local (process pool) or ray.")] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray address: ray://HOST:10001 (Ray Client), HOST:PORT or auto (a cluster "
            "this machine is on), local (a new instance here). Default: auto.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = 2,
    max_iterations: Annotated[
        int, typer.Option(min=0, max=1000, help="Iteration limit of every policy but bo.")
    ] = 20,
    bo_budget: Annotated[
        int, typer.Option(min=1, max=1000, help="BO trials (inner optimizations) per case.")
    ] = 100,
    replay_dir: Annotated[
        Path | None,
        typer.Option(help="Recorded LLM sessions for llm-replay.", show_default=False),
    ] = None,
    spacing_mm: Annotated[
        float | None,
        typer.Option(min=1.0, max=5.0, help="Dose grid spacing (mm).", show_default=False),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path(
        "rtplan-cohort"
    ),
) -> None:
    """Run every policy on every case; write cohort.json, cases.csv and best_so_far.png."""
    from agent.cohort import CohortError, CohortSpec, make_executor, run_cohort, write_outputs
    from agent.cohort.runner import PARTIAL_NAME, append_result
    from agent.cohort.seeds import parse_seeds

    def on_result(result: CaseResult) -> None:
        console.print(esc(result_line(result)), highlight=False)
        append_result(out / PARTIAL_NAME, result)

    from agent.cli.output import interrupt_exit
    from agent.session.signals import InterruptOnSignals

    try:
        try:
            seed_list = list(parse_seeds(seeds))
        except ValueError as exc:
            raise CliError(str(exc)) from None
        spec = CohortSpec(
            scenarios=scenario,
            policies=[p.strip() for p in policies.split(",") if p.strip()],
            seeds=seed_list,
            max_iterations=max_iterations,
            bo_budget=bo_budget,
            replay_dir=None if replay_dir is None else str(replay_dir),
            spacing_mm=spacing_mm,
        )
        chosen = make_executor(executor, address=address, workers=workers)
        (out / PARTIAL_NAME).unlink(missing_ok=True)
        with InterruptOnSignals():  # SIGTERM/SIGHUP like Ctrl-C: the workers stop too
            report = run_cohort(
                spec,
                MockCases(),
                chosen,
                on_result=on_result,
            )
    except KeyboardInterrupt as exc:
        raise interrupt_exit(
            exc,
            f"the cohort stopped; the finished cases are in {out / PARTIAL_NAME} "
            f"(python -m bench.bo_vs_knowledge --from {out} summarizes them)",
        ) from None
    except CohortError as exc:
        raise fail(exc) from None
    except known_errors() as exc:
        raise fail(exc) from None
    print_report(report)
    paths = write_outputs(report, out)
    console.print(f"results: {esc(paths['json'])}, {esc(paths['csv'])}, {esc(paths['plot'])}")
