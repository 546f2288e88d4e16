"""``rtplan resume``, ``replay`` and ``report``: work on a recorded session."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agent.cli import backends
from agent.cli.console import console
from agent.cli.errors import fail, known_errors
from agent.cli.output import finish, interrupt_exit, run_with_progress
from agent.session.records import StopReason
from agent.session.signals import InterruptOnSignals


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

    with InterruptOnSignals() as signals:  # SIGTERM/SIGHUP like Ctrl-C
        try:
            path = journal_path(journal)
            approver = ConsoleApprover(console) if approve else None
            limit = read_journal(path).header.config.max_iterations
            summary = run_with_progress(
                limit,
                lambda cb: resume_session(
                    path,
                    backends.mock_session_factory(cache_dir),
                    approver=approver,
                    on_iteration=cb,
                ),
                bar=not approve,
            )
        except known_errors() as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt as exc:  # before the resumed session started
            raise interrupt_exit(exc, "the session was not resumed; nothing was changed") from None
        finish(summary, path.parent, report, signals)


def replay(
    journal: Annotated[Path, typer.Argument(help="journal.jsonl or its session directory")],
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    tolerance: Annotated[float, typer.Option(help="max |difference| of metrics and score")] = 0.01,
    cache_dir: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Re-run a recorded session on the simulated TPS and check that the metrics match."""
    from agent.session.resume import replay_session

    with InterruptOnSignals() as signals:  # SIGTERM/SIGHUP like Ctrl-C
        try:
            result = replay_session(
                journal,
                backends.mock_session_factory(cache_dir),
                out_dir=out,
                tolerance=tolerance,
            )
        except known_errors() as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt as exc:
            raise interrupt_exit(exc, "the replay had not started") from None
    if result.summary.stop_reason is StopReason.INTERRUPTED:
        raise interrupt_exit(
            signals.received, f"replay stopped; what ran is in {result.replay_dir}"
        )
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


def report(
    session_dir: Annotated[Path, typer.Argument(help="a session directory")],
) -> None:
    """Build the HTML report of a session."""
    from agent.report import ReportError, build_report

    try:
        with InterruptOnSignals():
            console.print(f"report: {build_report(session_dir)}")
    except ReportError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt as exc:
        again = f"rtplan report {session_dir}"
        raise interrupt_exit(
            exc, f"report build stopped (no partial report is left); run {again}"
        ) from None
