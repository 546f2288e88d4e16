"""``rtplan``: plan a case on the simulated TPS, resume, replay, report, templates.

Exit codes: 0 done (whatever the stop reason, except below), 1 the session ended on an
error (original objectives restored) or a replay did not match, 2 bad input (unknown
scenario or template, structure mismatch, unwritable output, corrupt journal),
130 interrupted (Ctrl-C; original objectives restored).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from loguru import logger
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli.templates import templates_app
from agent.evaluation import Evaluation, GoalStatus
from agent.session.records import IterationRecord, SessionConfig, SessionSummary, StopReason
from esapi_bridge.port import TpsSession

app = typer.Typer(
    name="rtplan",
    help="A radiotherapy planning agent: plan IMRT/VMAT cases like a human planner.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(templates_app, name="templates")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    """Configure logging: warnings only, unless ``--verbose``."""
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else "WARNING")


console = Console()
_STATUS_STYLE = {
    GoalStatus.MET: "green",
    GoalStatus.WITHIN_VARIATION: "yellow",
    GoalStatus.FAILED: "bold red",
}


class CliError(Exception):
    """Bad input: printed as ``error: ...`` with exit code 2."""


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _known_errors() -> tuple[type[BaseException], ...]:
    from agent.policies import PolicyError
    from agent.session.journal import JournalError
    from agent.session.resume import ResumeError
    from agent.templates import StructureMatchError, TemplateError
    from esapi_bridge.errors import TpsError

    return (
        CliError,
        TemplateError,
        StructureMatchError,
        JournalError,
        ResumeError,
        PolicyError,
        TpsError,
    )


def mock_session_factory(cache_dir: Path | None = None) -> Callable[[SessionConfig], TpsSession]:
    """A function opening the simulated TPS plan a :class:`SessionConfig` names."""
    from mock_tps.factory import open_mock_session

    def open_session(config: SessionConfig) -> TpsSession:
        if config.tps != "mock" or config.scenario is None:
            raise CliError(f"only simulated sessions can be reopened here (tps={config.tps!r})")
        return open_mock_session(
            config.scenario, config.seed or 0, spacing_mm=config.spacing_mm, cache_dir=cache_dir
        )

    return open_session


def resolve_case(scenario: str, tg119: str | None, template: str | None) -> tuple[str, str]:
    """(mock scenario, template name) for the command-line choices; raises :class:`CliError`."""
    from agent.templates import list_templates
    from mock_tps.factory import available_scenarios

    if tg119 is not None:
        level = tg119.lower()
        if level not in ("easy", "hard"):
            raise CliError(f"--tg119 must be 'easy' or 'hard', got {tg119!r}")
        scenario, default_template = "tg119", f"tg119-{level}"
    else:
        scenarios = available_scenarios()
        if scenario not in scenarios:
            raise CliError(f"unknown scenario {scenario!r}; available: {', '.join(scenarios)}")
        default_template = scenario
    name = template or default_template
    if not (name.endswith((".yaml", ".yml")) or "/" in name) and name not in list_templates():
        raise CliError(f"unknown template {name!r}; available: {', '.join(list_templates())}")
    return scenario, name


def goals_table(initial: Evaluation | None, final: Evaluation | None, title: str) -> Table:
    """Clinical goals, initial vs final value and final status."""
    table = Table(title=title)
    for col in ("goal", "P", "structure", "metric", "limit", "initial", "final", "status"):
        table.add_column(
            col,
            justify="right" if col in ("initial", "final", "limit") else "left",
            no_wrap=col in ("goal", "limit", "status"),
        )
    first = {g.goal_id: g for g in initial.goals} if initial else {}
    shown = final or initial
    if shown is None:
        return table
    for g in shown.goals:
        unit = f" {g.unit}" if g.unit else ""
        before = first.get(g.goal_id)
        style = _STATUS_STYLE[g.status]
        table.add_row(
            g.goal_id,
            str(g.priority),
            g.plan_structure_id,
            g.metric,
            f"{g.comparator} {g.limit:.2f}{unit}",
            "-" if before is None else f"{before.value:.2f}",
            f"{g.value:.2f}",
            f"[{style}]{g.status.value}[/]",
        )
    return table


def _score_text(ev: Evaluation | None) -> str:
    if ev is None:
        return "-"
    if ev.score is None:
        return f"{sum(g.status is GoalStatus.MET for g in ev.goals)}/{len(ev.goals)} goals"
    return f"{ev.score:.2f}/{ev.max_score:g}"


def iteration_line(record: IterationRecord) -> str:
    """One progress line: iteration, score, priority-1 status, what happened, timings."""
    ev = record.evaluation
    p1 = "P1 met" if ev and ev.all_priority1_met else "[red]P1 not met[/]"
    if record.iteration == 0:
        what = "template plan"
    elif record.proposal.policy == "revert-to-best":
        what = "back to the best plan"
    else:
        what = f"{record.verdict.status.value}" + (
            f", {record.approval.value}" if record.approval.value != "auto" else ""
        )
    return (
        f"iter {record.iteration:>2}  score {_score_text(ev):>10}  {p1}  {what}  "
        f"(optimize {record.timings.optimize_s:.1f} s, total {record.timings.total_s:.1f} s)"
    )


Runner = Callable[[Callable[[IterationRecord], None]], SessionSummary]


def _run_with_progress(max_iterations: int, runner: Runner, bar: bool = True) -> SessionSummary:
    """Run a session printing one line per iteration, under a progress bar if ``bar``
    (no bar while the clinician is asked questions)."""
    if not bar:
        return runner(lambda record: console.print(iteration_line(record)))
    with Progress(
        TextColumn("[bold]planning[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} iterations"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("plan", total=max_iterations)

        def on_iteration(record: IterationRecord) -> None:
            progress.console.print(iteration_line(record))
            progress.update(task, completed=min(record.iteration, max_iterations))

        return runner(on_iteration)


def _finish(summary: SessionSummary, session_dir: Path, report: bool) -> None:
    console.print(
        goals_table(summary.initial_evaluation, summary.final_evaluation, "Clinical goals")
    )
    console.print(
        f"stop: [bold]{summary.stop_reason.value}[/] {summary.message}\n"
        f"score {_score_text(summary.initial_evaluation)} -> {_score_text(summary.final_evaluation)}; "
        f"{summary.iterations} iterations, {summary.inner_optimizations} optimizations, "
        f"{summary.wall_time_s:.1f} s"
    )
    if summary.restored_original:
        console.print("[yellow]the plan's original objectives were restored[/]")
    console.print(f"journal: {session_dir / 'journal.jsonl'}")
    if report:
        try:
            from agent.report import build_report

            console.print(f"report: {build_report(session_dir)}")
        except Exception as exc:  # the session is complete; a report failure is not fatal
            console.print(f"[yellow]report not built:[/] {type(exc).__name__}: {exc}")
    if summary.stop_reason is StopReason.INTERRUPTED:
        raise typer.Exit(130)
    if summary.stop_reason is StopReason.ERROR:
        raise typer.Exit(1)


def _default_dir(label: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("rtplan-sessions") / f"{label}-{stamp}"


def run_plan(
    scenario: str,
    seed: int,
    *,
    tg119: str | None = None,
    template: str | None = None,
    policy: str = "rule",
    max_iterations: int = 20,
    approve: bool = False,
    out: Path | None = None,
    spacing_mm: float | None = None,
    cache_dir: Path | None = None,
    report: bool = True,
) -> SessionSummary:
    """Plan one simulated case (what ``rtplan plan`` and ``rtplan demo`` do)."""
    from agent.policies import make_policy
    from agent.session.approval import ConsoleApprover
    from agent.session.journal import check_writable
    from agent.session.loop import PlanningLoop
    from agent.templates import load_template

    scenario, template_name = resolve_case(scenario, tg119, template)
    tpl = load_template(template_name)
    pol = make_policy(policy)
    label = f"{scenario}/seed{seed}" if scenario != "tg119" else f"tg119/{template_name}"
    session_dir = out or _default_dir(label.replace("/", "-"))
    check_writable(session_dir)  # before the (slow) case is opened or anything changes
    config = SessionConfig(
        scenario=scenario,
        seed=seed,
        template=template_name,
        policy=pol.name,
        max_iterations=max_iterations,
        approve=approve,
        spacing_mm=spacing_mm,
    )
    with console.status(f"opening {label} on the simulated TPS"):
        session = mock_session_factory(cache_dir)(config)
    approver = ConsoleApprover(console) if approve else None
    console.print(f"[bold]{label}[/] template {template_name}, policy {pol.name} -> {session_dir}")

    def runner(cb: Callable[[IterationRecord], None]) -> SessionSummary:
        loop = PlanningLoop(
            session, tpl, pol, config, session_dir,
            approver=approver, on_iteration=cb, case_label=label,
        )  # fmt: skip
        return loop.run()

    summary = _run_with_progress(max_iterations, runner, bar=not approve)
    _finish(summary, session_dir, report)
    return summary


@app.command()
def plan(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="simulated case")
    ] = "prostate-basic",
    seed: Annotated[int, typer.Option(help="seed of the anatomical variation")] = 0,
    tg119: Annotated[str | None, typer.Option(help="TG-119 C-shape: easy or hard")] = None,
    template: Annotated[str | None, typer.Option(help="site template name or file")] = None,
    policy: Annotated[str, typer.Option(help="planning policy")] = "rule",
    max_iterations: Annotated[int, typer.Option(min=0, max=1000)] = 20,
    approve: Annotated[bool, typer.Option("--approve", help="review every proposal")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="session directory")] = None,
    spacing_mm: Annotated[float | None, typer.Option(help="dose grid spacing (mm)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="dose-influence cache")] = None,
    report: Annotated[bool, typer.Option(help="build the HTML report")] = True,
) -> None:
    """Plan one case on the simulated TPS."""
    try:
        run_plan(
            scenario, seed, tg119=tg119, template=template, policy=policy,
            max_iterations=max_iterations, approve=approve, out=out, spacing_mm=spacing_mm,
            cache_dir=cache_dir, report=report,
        )  # fmt: skip
    except _known_errors() as exc:
        raise _fail(str(exc)) from None


#: A prostate-basic seed whose template start misses priority-1 goals (score 5.94/9), so the
#: demo shows the agent at work: 9/9 in 4 iterations.
DEMO_SEED = 9


@app.command()
def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="session directory")] = None,
) -> None:
    """prostate-basic, rule policy: progress, final goals table and report."""
    try:
        run_plan("prostate-basic", DEMO_SEED, out=out or _default_dir("demo"))
    except _known_errors() as exc:
        raise _fail(str(exc)) from None


@app.command()
def resume(
    journal: Annotated[Path, typer.Argument(help="journal.jsonl or its session directory")],
    approve: Annotated[bool, typer.Option("--approve")] = False,
    cache_dir: Annotated[Path | None, typer.Option()] = None,
    report: Annotated[bool, typer.Option()] = True,
) -> None:
    """Continue an interrupted session (appends to its journal)."""
    from agent.session.approval import ConsoleApprover
    from agent.session.journal import journal_path, read_journal
    from agent.session.resume import resume_session

    try:
        path = journal_path(journal)
        approver = ConsoleApprover(console) if approve else None
        limit = read_journal(path).header.config.max_iterations
        summary = _run_with_progress(
            limit,
            lambda cb: resume_session(
                path,
                mock_session_factory(cache_dir),
                approver=approver,
                on_iteration=cb,
            ),
            bar=not approve,
        )
    except _known_errors() as exc:
        raise _fail(str(exc)) from None
    _finish(summary, path.parent, report)


@app.command()
def replay(
    journal: Annotated[Path, typer.Argument(help="journal.jsonl or its session directory")],
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    tolerance: Annotated[float, typer.Option(help="max |difference| of metrics and score")] = 0.01,
    cache_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Re-run a recorded session on the simulated TPS and check that the metrics match."""
    from agent.session.resume import replay_session

    try:
        result = replay_session(
            journal,
            mock_session_factory(cache_dir),
            out_dir=out,
            tolerance=tolerance,
        )
    except _known_errors() as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"replay of {result.journal} (tolerance {result.tolerance:g})")
    for col in ("iteration", "recorded score", "replayed score", "max |diff|", "worst"):
        table.add_column(col)
    for c in result.comparisons:
        table.add_row(
            str(c.iteration), f"{c.recorded_score}", f"{c.replayed_score}",
            f"{c.max_abs_difference:.2g}", c.worst,
        )  # fmt: skip
    console.print(table)
    if result.note:
        console.print(f"note: {result.note}")
    verdict = "[green]MATCH[/]" if result.matched else "[bold red]MISMATCH[/]"
    console.print(
        f"{verdict}: {result.replayed_iterations}/{result.recorded_iterations} iterations "
        f"replayed within {result.tolerance:g}; replay in {result.replay_dir}"
    )
    if not result.matched:
        raise typer.Exit(1)


@app.command()
def report(
    session_dir: Annotated[Path, typer.Argument(help="a session directory")],
) -> None:
    """Build the HTML report of a session."""
    from agent.report import ReportError, build_report

    try:
        console.print(f"report: {build_report(session_dir)}")
    except ReportError as exc:
        raise _fail(str(exc)) from None
