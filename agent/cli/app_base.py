"""The typer classes behind ``rtplan``: flags shown without a value, a quiet closed pipe.

Typer shows every option with a type, so a flag reads ``--approve <bool>`` as if it took a
value; :class:`Command` and :class:`Group` show flags bare. :class:`RtplanTyper` is the
entry point: when stdout's reader has gone (``rtplan templates list | head -1``) the
command exits 0 quietly instead of 1 with a ``BrokenPipeError`` (the shared console goes quiet
on a closed pipe and the command finishes with its own exit code; this class catches what
escapes it, such as click's own exit 1 on ``EPIPE``).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from agent.cli.console import silence_stdout, stdout_closed


def _bare_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", "") is None:
            param.metavar = ""  # typer then shows no type for it
    return params


class Command(TyperCommand):
    """A command whose flags are shown without a ``<bool>`` value."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's parameters, flags marked to show no value."""
        return _bare_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A group whose flags (``--help``, ``--version``) are shown without a value."""

    def get_params(self, ctx: Any) -> list[Any]:
        """The group's parameters, flags marked to show no value."""
        return _bare_flags(super().get_params(ctx))


class RtplanTyper(typer.Typer):
    """The ``rtplan`` app: a closed stdout pipe ends the command with exit code 0."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line (the console-script entry point)."""
        try:
            return super().__call__(*args, **kwargs)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(0)
        except SystemExit as exc:
            # click turns a broken pipe into exit 1 and wraps sys.stdout to hide the error
            pacified = type(sys.stdout).__name__ == "PacifyFlushWrapper"
            if exc.code == 1 and (pacified or stdout_closed()):
                silence_stdout()
                sys.exit(0)
            raise
