"""``rtplan``: plan a case on the simulated TPS, resume, replay, report, templates.

Exit codes: 0 done (whatever the stop reason, except below), 1 the session ended on an
error (original objectives restored) or a replay did not match, 2 bad input (unknown
scenario or template, structure mismatch, unwritable output, corrupt journal),
130 interrupted (Ctrl-C; original objectives restored).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from loguru import logger

from agent.cli import plan as plan_commands
from agent.cli import sessions as session_commands
from agent.cli.templates import templates_app

app = typer.Typer(
    name="rtplan",
    help="A radiotherapy planning agent: plan IMRT/VMAT cases like a human planner.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(templates_app, name="templates")
app.command()(plan_commands.plan)
app.command()(plan_commands.demo)
app.command()(session_commands.resume)
app.command()(session_commands.replay)
app.command()(session_commands.report)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")] = False,
) -> None:
    """Configure logging: warnings only, unless ``--verbose``."""
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else "WARNING")
