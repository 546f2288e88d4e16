"""What the CLI prints of a session: goals table, iteration lines, progress, the summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from loguru import logger
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli.console import console, esc, is_progress, progress_sink
from agent.cli.tables import Column, fit_table, num
from agent.evaluation import Evaluation, GoalStatus
from agent.session.records import REVERT_POLICY, IterationRecord, SessionSummary, StopReason
from agent.session.signals import InterruptOnSignals, describe_interrupt, interrupt_exit_code

_STATUS_STYLE = {
    GoalStatus.MET: "green",
    GoalStatus.WITHIN_VARIATION: "yellow",
    GoalStatus.FAILED: "bold red",
}
#: Status words in the goals table ("within_variation" does not fit 80 columns).
_STATUS_TEXT = {
    GoalStatus.MET: "met",
    GoalStatus.WITHIN_VARIATION: "within var",
    GoalStatus.FAILED: "failed",
}
_GOAL_COLUMNS = (
    Column("goal", key=True),
    Column("P", key=True),
    Column("structure", key=True, drop=2),
    Column("metric", key=True),
    Column("limit", key=True, justify="right"),
    Column("initial", key=True, justify="right", drop=1, short="init"),
    Column("final", key=True, justify="right"),
    Column("status", key=True),
)


def goals_table(
    initial: Evaluation | None, final: Evaluation | None, title: str, width: int | None = None
) -> Table:
    """Clinical goals, initial vs final value and final status, fitted to ``width`` columns
    (default: the console's); ids and numbers are never wrapped or cut."""
    first = {g.goal_id: g for g in initial.goals} if initial else {}
    shown = final or initial
    rows: list[list[str]] = []
    for g in shown.goals if shown is not None else []:
        unit = f" {g.unit}" if g.unit else ""
        before = first.get(g.goal_id)
        rows.append(
            [
                esc(g.goal_id),
                str(g.priority),
                esc(g.plan_structure_id),
                esc(g.metric),
                f"{esc(g.comparator)} {num(g.limit)}{esc(unit)}",
                "-" if before is None else num(before.value),
                num(g.value) if final is not None else "-",
                f"[{_STATUS_STYLE[g.status]}]{_STATUS_TEXT[g.status]}[/]",
            ]
        )
    return fit_table(_GOAL_COLUMNS, rows, width or console.width, title=title)


def _score_text(ev: Evaluation | None, short: bool = False) -> str:
    """``7.82/9`` (scored templates) or ``14/18 goals met`` (``14/18 met`` if ``short``);
    ``none`` without a plan."""
    if ev is None:
        return "none"
    if ev.score is None:
        met = sum(g.status is GoalStatus.MET for g in ev.goals)
        return f"{met}/{len(ev.goals)} {'met' if short else 'goals met'}"
    return f"{ev.score:.2f}/{ev.max_score:g}"


def score_change_text(summary: SessionSummary) -> str:
    """``score 5.94/9 -> 9.00/9``; after a restore: ``final: none (interrupted; the
    original objectives were restored)``."""
    before = _score_text(summary.initial_evaluation)
    if summary.final_evaluation is None:
        why = summary.stop_reason.value.replace("_", " ")
        restored = "; the original objectives were restored" if summary.restored_original else ""
        return f"score {before} -> final: none ({why}{restored})"
    return f"score {before} -> {_score_text(summary.final_evaluation)}"


def _what_happened(record: IterationRecord) -> str:
    if record.iteration == 0:
        return "template plan"
    if record.proposal.policy == REVERT_POLICY:
        return "back to the best plan"
    what = record.verdict.status.value
    if record.approval.value != "auto":
        what += f", {record.approval.value}"
    if record.rejected:
        what += f" ({len(record.rejected)} turned down first)"
    return what


def iteration_line(record: IterationRecord) -> str:
    """One progress line (about 80 columns): iteration, score, priority-1 status, what
    happened, optimizer and iteration wall time."""
    ev = record.evaluation
    p1 = "P1 met" if ev and ev.all_priority1_met else "[red]P1 not met[/]"
    return (
        f"iter {record.iteration:>2}  score {_score_text(ev, short=True):>10}  {p1}  "
        f"{esc(_what_happened(record))}  "
        f"(opt {record.timings.optimize_s:.1f} s, total {record.timings.total_s:.1f} s)"
    )


Runner = Callable[[Callable[[IterationRecord], None]], SessionSummary]


def run_with_progress(max_iterations: int, runner: Runner, bar: bool = True) -> SessionSummary:
    """Run a session printing one line per iteration, under a progress bar if ``bar``
    (no bar while the clinician is asked questions, or when the console is not a terminal).

    The simulated TPS's slow steps (a dose-influence matrix, the TG-119 download) are shown
    as they start (see :func:`agent.cli.console.progress_sink`).
    """
    sink = logger.add(progress_sink, level="INFO", filter=is_progress, format="{message}")
    try:
        if not bar or not console.is_terminal:
            return runner(lambda record: console.print(iteration_line(record), highlight=False))
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
                progress.console.print(iteration_line(record), highlight=False)
                progress.update(task, completed=min(record.iteration, max_iterations))

            return runner(on_iteration)
    finally:
        logger.remove(sink)


def interrupt_exit(exc: BaseException | None, what: str) -> typer.Exit:
    """Say what an interrupt stopped (``what``) and return the exit of its signal
    (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
    console.print(f"[yellow]interrupted ({describe_interrupt(exc)}):[/] {esc(what)}")
    return typer.Exit(interrupt_exit_code(exc))


def finish(
    summary: SessionSummary,
    session_dir: Path,
    report: bool,
    signals: InterruptOnSignals | None = None,
) -> None:
    """Print the goals table, the stop line and the files; build the report; set the exit code.

    The stop line is the reason and the summary's message (its words come from
    :func:`agent.session.outcome.describe_stop`, as in the journal and the report).
    ``signals`` (the handlers the session ran under) is re-armed first: the session's
    clean-up is done, so a signal now stops the output or the report build (which leaves
    no partial report).

    Raises
    ------
    typer.Exit
        1 after an error; after an interrupt (of the session or of the report build)
        the signal's code: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
    """
    interrupt: BaseException | None = None if signals is None else signals.received
    if signals is not None:
        signals.rearm()
    journal = session_dir / "journal.jsonl"
    try:
        console.print(
            goals_table(summary.initial_evaluation, summary.final_evaluation, "Clinical goals")
        )
        console.print(
            f"stop: [bold]{summary.stop_reason.value}[/]: {esc(summary.message)}\n"
            f"{score_change_text(summary)}; "
            f"{summary.iterations} iterations, {summary.inner_optimizations} optimizations, "
            f"{summary.wall_time_s:.1f} s"
        )
        if summary.restored_original:
            console.print("[yellow]the plan's original objectives were restored[/]")
        console.print(f"journal: {esc(journal)}", highlight=False)
    except KeyboardInterrupt as exc:
        raise interrupt_exit(exc, f"the session had ended; its journal is {journal}") from None
    rebuild = f"build it with: rtplan report {session_dir}"
    if report:
        try:
            from agent.report import build_report

            console.print(f"report: {esc(build_report(session_dir))}", highlight=False)
        except KeyboardInterrupt as exc:
            raise interrupt_exit(
                exc, f"report build stopped (no partial report is left); {rebuild}"
            ) from None
        except Exception as exc:  # the session is complete; a report failure is not fatal
            console.print(
                f"[yellow]report not built:[/] {esc(type(exc).__name__)}: {esc(exc)}; "
                f"{esc(rebuild)}"
            )
    if summary.stop_reason is StopReason.INTERRUPTED or interrupt is not None:
        raise typer.Exit(interrupt_exit_code(interrupt))
    if summary.stop_reason is StopReason.ERROR:
        raise typer.Exit(1)
