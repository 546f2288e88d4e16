"""``rtplan``: plan a case on the simulated TPS, resume, replay, report, inspect, templates.

Exit codes (also in ``rtplan --help`` and the README): see :data:`EXIT_CODES`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from loguru import logger

from agent.cli import export as export_commands
from agent.cli import inspect as inspect_commands
from agent.cli import plan as plan_commands
from agent.cli import sessions as session_commands
from agent.cli.app_base import Command, Group, RtplanTyper
from agent.cli.cohort import cohort_app
from agent.cli.console import console
from agent.cli.drl import drl_app
from agent.cli.templates import templates_app

#: What each exit code of ``rtplan`` means.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (
        0,
        "done, whatever the stop reason (goals met or not, iteration limit, a clinician's stop "
        "or end of input at --approve: the plan is kept, the summary shown)",
    ),
    (
        1,
        "the session ended on an error (original objectives restored), a replay did not match, "
        "or 'templates validate' found an invalid file",
    ),
    (
        2,
        "bad input: unknown scenario, template or option value, two case sources, a template "
        "for another case, structure mismatch, unwritable output, corrupt journal",
    ),
    (129, "hung up (SIGHUP); original objectives restored"),
    (130, "interrupted (Ctrl-C); original objectives restored; 'rtplan resume' continues"),
    (143, "terminated (SIGTERM); original objectives restored"),
)


def exit_codes_text() -> str:
    """The exit-code table as help text (one line each)."""
    return "\n\n".join(f"{code}: {text}" for code, text in EXIT_CODES)


app = RtplanTyper(
    name="rtplan",
    help="A radiotherapy planning agent: plan IMRT/VMAT cases like a human planner.",
    epilog="[bold]Exit codes[/bold]\n\n" + exit_codes_text(),
    no_args_is_help=True,
    add_completion=False,
    cls=Group,
    rich_markup_mode="rich",
)
app.add_typer(templates_app, name="templates")
app.add_typer(cohort_app, name="cohort")
app.add_typer(drl_app, name="drl")
app.command(cls=Command)(plan_commands.plan)
app.command(cls=Command)(plan_commands.demo)
app.command(cls=Command)(session_commands.resume)
app.command(cls=Command)(session_commands.replay)
app.command(cls=Command)(session_commands.report)
app.command("show", cls=Command)(inspect_commands.show)
app.command("sessions", cls=Command)(inspect_commands.sessions)
app.command("scenarios", cls=Command)(inspect_commands.scenarios)
app.command("export", cls=Command)(export_commands.export)
app.command("export-case", cls=Command)(export_commands.export_case)


def package_version() -> str:
    """The installed rtplan-agent version (``unknown`` when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rtplan-agent")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        console.print(f"rtplan {package_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging on stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Configure logging: warnings only, unless ``--verbose``."""
    logger.remove()
    if verbose:  # the full record: time, module and line, for debugging
        logger.add(sys.stderr, level="DEBUG")
    else:  # a user's view: what happened, not where in the code
        logger.add(sys.stderr, level="WARNING", format="<level>{level}</level>: {message}")
