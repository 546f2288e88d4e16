"""What the CLI prints of a session: goals table, iteration lines, progress, the summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.cli.console import console
from agent.evaluation import Evaluation, GoalStatus
from agent.session.records import IterationRecord, SessionSummary, StopReason
from agent.session.signals import InterruptOnSignals, describe_interrupt, interrupt_exit_code

_STATUS_STYLE = {
    GoalStatus.MET: "green",
    GoalStatus.WITHIN_VARIATION: "yellow",
    GoalStatus.FAILED: "bold red",
}


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


def run_with_progress(max_iterations: int, runner: Runner, bar: bool = True) -> SessionSummary:
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


def interrupt_exit(exc: BaseException | None, what: str) -> typer.Exit:
    """Say what an interrupt stopped (``what``) and return the exit of its signal
    (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
    console.print(f"[yellow]interrupted ({describe_interrupt(exc)}):[/] {escape(what)}")
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
    ``signals`` (the handlers the session ran under) is re-armed before the report is
    built, so that an interrupt stops the build, which leaves no partial report.

    Raises
    ------
    typer.Exit
        1 after an error; after an interrupt (of the session or of the report build)
        the signal's code: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
    """
    console.print(
        goals_table(summary.initial_evaluation, summary.final_evaluation, "Clinical goals")
    )
    console.print(
        f"stop: [bold]{summary.stop_reason.value}[/]: {escape(summary.message)}\n"
        f"score {_score_text(summary.initial_evaluation)} -> {_score_text(summary.final_evaluation)}; "
        f"{summary.iterations} iterations, {summary.inner_optimizations} optimizations, "
        f"{summary.wall_time_s:.1f} s"
    )
    if summary.restored_original:
        console.print("[yellow]the plan's original objectives were restored[/]")
    console.print(f"journal: {session_dir / 'journal.jsonl'}")
    interrupt: BaseException | None = None if signals is None else signals.received
    rebuild = f"build it with: rtplan report {session_dir}"
    if report:
        if signals is not None:
            signals.rearm()
        try:
            from agent.report import build_report

            console.print(f"report: {build_report(session_dir)}")
        except KeyboardInterrupt as exc:
            raise interrupt_exit(
                exc, f"report not built (none left half-written); {rebuild}"
            ) from None
        except Exception as exc:  # the session is complete; a report failure is not fatal
            console.print(
                f"[yellow]report not built:[/] {type(exc).__name__}: {escape(str(exc))}; "
                f"{escape(rebuild)}"
            )
    if summary.stop_reason is StopReason.INTERRUPTED or interrupt is not None:
        raise typer.Exit(interrupt_exit_code(interrupt))
    if summary.stop_reason is StopReason.ERROR:
        raise typer.Exit(1)
