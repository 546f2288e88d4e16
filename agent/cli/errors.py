"""Errors the CLI knows how to print: bad input (exit 2) and the project's own error types."""

from __future__ import annotations

import typer

from agent.cli.console import console, esc


class CliError(Exception):
    """Bad input: printed as ``error: ...`` with exit code 2."""


def fail(message: object, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` (escaped: printed exactly as given) and return the exit."""
    console.print(f"[bold red]error:[/] {esc(message)}", highlight=False)
    return typer.Exit(code)


def known_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's input, not a bug: printed without a traceback."""
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
