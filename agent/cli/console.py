"""The console every ``rtplan`` command prints to, and what may be printed on it.

- :func:`esc` escapes user-provided text (names, paths, ids, error messages) so that
  square brackets print as typed instead of being read as ``rich`` markup.
- :func:`json_mode` sends everything the console prints to stderr while a command writes
  JSON to stdout with :func:`emit_json` (nothing else reaches stdout).
- A closed stdout pipe (``rtplan templates list | head -1``) mutes the console instead of
  failing: the command finishes its work and exits with its usual code (see the SIGPIPE note
  of the Python ``signal`` documentation).
- :func:`progress_sink` shows the simulated TPS's slow steps (building a dose-influence
  matrix, fetching the TG-119 phantom) on the console, above any progress bar.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from loguru import Message

#: loguru modules whose INFO messages are progress the user should see.
PROGRESS_MODULES = ("mock_tps.dij_cache", "mock_tps.tg119_fetch")


def _silence_fd(fd: int) -> None:
    """Point ``fd`` at /dev/null so later writes and the exit-time flush succeed."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)


class _PipeState:
    """Whether stdout's reader has gone (set once a write to it failed)."""

    stdout_closed = False


def silence_stdout() -> None:
    """After a broken pipe on stdout: discard whatever is still written to it."""
    _PipeState.stdout_closed = True
    with contextlib.suppress(AttributeError, OSError, ValueError):
        _silence_fd(sys.stdout.fileno())


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (a write failed, or poll says so)."""
    if _PipeState.stdout_closed:
        return True
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno() if sys.__stdout__ else 1, select.POLLOUT)
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):
        return False
    return any(flags & (select.POLLERR | select.POLLHUP) for _, flags in events)


class CliConsole(Console):
    """A :class:`rich.console.Console` that goes quiet when its reader closes the pipe."""

    def on_broken_pipe(self) -> None:
        """Mute this console and carry on (the default raises ``SystemExit(1)``)."""
        self.quiet = True
        if not self.stderr:
            _PipeState.stdout_closed = True
        with contextlib.suppress(AttributeError, OSError, ValueError):
            _silence_fd(self.file.fileno())


console = CliConsole(soft_wrap=True)  # lines wrap in the terminal, never mid-path in rich


def esc(value: object) -> str:
    """``str(value)`` with ``rich`` markup escaped: prints exactly as given."""
    return escape(str(value))


@contextlib.contextmanager
def json_mode(enabled: bool = True) -> Iterator[None]:
    """While active (and ``enabled``), the console prints to stderr; stdout is for JSON."""
    if not enabled:
        yield
        return
    previous = console.stderr
    console.stderr = True
    try:
        yield
    finally:
        console.stderr = previous


def emit_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout (a closed pipe is not an error)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def progress_sink(message: Message) -> None:
    """A loguru sink printing progress messages (dim) on the shared console."""
    console.print(f"[dim]{esc(message.record['message'])}[/]", highlight=False)


def is_progress(record: Any) -> bool:
    """loguru filter: INFO messages of :data:`PROGRESS_MODULES`, or bound ``progress=True``."""
    return bool(record["extra"].get("progress")) or record["name"] in PROGRESS_MODULES
