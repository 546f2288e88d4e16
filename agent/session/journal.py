"""Append-only JSONL journal of a planning session.

Each entry (:data:`agent.session.records.JournalEntry`) is one line, written, flushed and
fsync'ed before :meth:`Journal.write` returns, so that whatever the TPS was asked
to do is on disk before it is asked. A journal is never rewritten: a resumed
session appends to it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import IO

from pydantic import TypeAdapter, ValidationError

from agent.session.records import (
    JOURNAL_FILENAME,
    RECORDS_SCHEMA_VERSION,
    ApplyIntent,
    IterationRecord,
    JournalEntry,
    SessionEvent,
    SessionHeader,
    SessionLog,
    SessionSummary,
)

_ENTRY_ADAPTER: TypeAdapter[JournalEntry] = TypeAdapter(JournalEntry)


class JournalError(RuntimeError):
    """The journal cannot be written (unwritable directory, full disk, ...)."""


class JournalCorrupt(JournalError):
    """A journal cannot be read back: malformed, truncated or inconsistent."""


def journal_path(session_dir_or_journal: str | Path) -> Path:
    """The journal file of a session directory (or the path itself if it is a file)."""
    path = Path(session_dir_or_journal)
    return path / JOURNAL_FILENAME if path.is_dir() else path


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove it accepts a synced write.

    Raises
    ------
    JournalError
        Naming the directory and the OS reason (permission denied, disk full, ...).
    """
    probe = directory / ".rtplan-write-probe"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise JournalError(_describe_os_error(directory, exc)) from exc
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)


def _describe_os_error(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        why = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "permission denied (read-only or not writable)"
    else:
        why = exc.strerror or str(exc)
    return f"cannot write the session journal in {str(path)!r}: {why}"


class Journal:
    """An append-only, fsync'ed JSONL file.

    Parameters
    ----------
    path
        The journal file. It is created if missing; an existing file is appended to
        only when ``append=True`` (resume), otherwise :class:`JournalError` is raised
        so that no earlier session is ever overwritten or mixed in.
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not append:
            raise JournalError(
                f"journal {str(self.path)!r} already exists; choose another output dir "
                "or use `rtplan resume` to continue it"
            )
        check_writable(self.path.parent)
        try:
            self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise JournalError(_describe_os_error(self.path.parent, exc)) from exc
        self.entries_written = 0

    def write(self, entry: JournalEntry) -> None:
        """Append one entry and make it durable (flush + fsync) before returning."""
        if self._fh is None:
            raise JournalError(f"journal {str(self.path)!r} is closed")
        line = entry.model_dump_json() + "\n"
        try:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise JournalError(_describe_os_error(self.path.parent, exc)) from exc
        self.entries_written += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fh is not None:
            try:
                self._fh.close()
            finally:
                self._fh = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_journal(path: str | Path) -> SessionLog:
    """Read a journal (file or session directory) back into a :class:`SessionLog`.

    Raises
    ------
    JournalCorrupt
        If the file is missing or empty, a line is not valid JSON or not a known entry
        (the message names the line number), the last line is truncated, the first
        entry is not a header, iterations are out of order, or anything but a
        ``resumed`` event follows a summary.
    """
    file = journal_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise JournalCorrupt(f"no journal at {str(file)!r}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalCorrupt(f"cannot read journal {str(file)!r}: {exc}") from exc
    if not text.strip():
        raise JournalCorrupt(f"journal {str(file)!r} is empty")
    if not text.endswith("\n"):
        n_lines = text.count("\n") + 1
        raise JournalCorrupt(
            f"journal {str(file)!r} is truncated: line {n_lines} has no end "
            "(the session was killed while writing); nothing was changed"
        )
    header: SessionHeader | None = None
    log_iterations: list[IterationRecord] = []
    events: list[SessionEvent] = []
    intents: list[ApplyIntent] = []
    summary: SessionSummary | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise JournalCorrupt(f"journal {str(file)!r} line {number}: empty line")
        try:
            entry = _ENTRY_ADAPTER.validate_python(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise JournalCorrupt(
                f"journal {str(file)!r} line {number} is not a valid entry: {first}"
            ) from exc
        if number == 1:
            if not isinstance(entry, SessionHeader):
                raise JournalCorrupt(f"journal {str(file)!r} line 1 is not a session header")
            if entry.schema_version != RECORDS_SCHEMA_VERSION:
                raise JournalCorrupt(
                    f"journal {str(file)!r}: schema_version {entry.schema_version} is not "
                    f"supported (expected {RECORDS_SCHEMA_VERSION})"
                )
            header = entry
            continue
        if summary is not None:
            if isinstance(entry, SessionEvent) and entry.kind == "resumed":
                events.append(entry)  # an interrupted session was continued
                summary = None
                continue
            raise JournalCorrupt(f"journal {str(file)!r} line {number}: entry after the summary")
        if isinstance(entry, SessionHeader):
            raise JournalCorrupt(f"journal {str(file)!r} line {number}: a second header")
        if isinstance(entry, IterationRecord):
            expected = len(log_iterations)
            if entry.iteration != expected:
                raise JournalCorrupt(
                    f"journal {str(file)!r} line {number}: iteration {entry.iteration} "
                    f"where {expected} was expected"
                )
            log_iterations.append(entry)
        elif isinstance(entry, SessionEvent):
            events.append(entry)
        elif isinstance(entry, ApplyIntent):
            intents.append(entry)
        else:
            summary = entry
    assert header is not None  # line 1 was checked above
    return SessionLog(
        header=header, iterations=log_iterations, events=events, intents=intents, summary=summary
    )


def load_session(session_dir: str | Path) -> SessionLog:
    """Alias of :func:`read_journal` for report writers: the records of one session."""
    return read_journal(session_dir)
