"""Append-only, HMAC-chained, locked JSONL journal of a planning session.

Each entry (:data:`agent.session.records.JournalEntry`) is one line, sealed with its link
of the HMAC chain (:mod:`agent.session.chain`), written, flushed and fsync'ed before
:meth:`Journal.write` returns, so that whatever the TPS was asked to do is on disk before
it is asked. A writer holds the session directory's lock
(:class:`agent.session.journal_lock.SessionLock`) from opening to :meth:`Journal.close`;
a new journal is created exclusively (``O_EXCL``) with its first entry.

A journal is never rewritten, with one documented exception: ``rtplan resume`` moves a
torn last line (the expected crash mode) to ``journal.jsonl.torn-<UTC time>`` and
truncates the journal to its last complete line (:func:`move_torn_tail`). A write that
fails (full disk, ...) is undone (the file is cut back to its last complete line, or
removed if nothing was written) and raised as :class:`JournalError`.

Reading is in :mod:`agent.session.journal_read` (re-exported here).
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger
from pydantic import ValidationError

from agent.session.chain import chain_seed, seal
from agent.session.errors import (
    JournalCorrupt,
    JournalError,
    JournalLocked,
    JournalTampered,
    JournalUnverifiable,
    SecretError,
)
from agent.session.journal_lock import SessionLock
from agent.session.journal_read import (
    ParsedJournal,
    build_log,
    journal_path,
    parse_journal,
    read_journal,
    verify_chain,
)
from agent.session.provenance import ChainHead, IntegrityStatus, TornTail
from agent.session.records import JournalEntry, SessionHeader, SessionLog
from agent.session.secret import derive_key, key_id, writer_secret
from rtplan_common.atomic_io import describe_os_error
from rtplan_common.models import validation_problems

__all__ = [
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalLocked",
    "JournalTampered",
    "JournalUnverifiable",
    "SecretError",
    "check_writable",
    "journal_path",
    "load_session",
    "move_torn_tail",
    "read_journal",
]


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
    return f"cannot write the session journal in {str(path)!r}: {describe_os_error(exc)}"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform / file system can
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def move_torn_tail(parsed: ParsedJournal) -> TornTail:
    """Move a journal's torn last line to ``journal.jsonl.torn-<UTC time>`` and truncate.

    The torn bytes are written (and synced) to the new file first, then the journal is
    cut to its last complete line: nothing is lost. Call it only holding the lock.

    Raises :class:`JournalError` if either step fails (the journal is then unchanged, or
    the torn copy exists and the journal still ends with the torn bytes).
    """
    assert parsed.torn is not None
    file = parsed.file
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = file.with_name(f"{file.name}.torn-{stamp}")
    n = 1
    while target.exists():
        target = file.with_name(f"{file.name}.torn-{stamp}-{n}")
        n += 1
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, parsed.data[parsed.keep_bytes :])
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            target.unlink(missing_ok=True)
        raise JournalError(_describe_os_error(file.parent, exc)) from exc
    try:
        with file.open("r+b") as fh:
            fh.truncate(parsed.keep_bytes)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise JournalError(_describe_os_error(file.parent, exc)) from exc
    _fsync_dir(file.parent)
    return parsed.torn.model_copy(update={"moved_to": str(target)})


class Journal:
    """An append-only, fsync'ed, HMAC-chained JSONL file, held under the directory's lock.

    Parameters
    ----------
    path
        The journal file. A new journal (``append=False``) must not exist: it is created
        exclusively with the first entry, so that no earlier session is overwritten or
        mixed in. ``append=True`` (resume) opens an existing journal: it is read and its
        chain verified under the lock (:attr:`log`); a torn last line is moved aside
        (:func:`move_torn_tail`) right before the first new entry, which continues the
        chain.
    append
        Continue an existing journal instead of creating one.
    secret
        The installation secret (default: :func:`agent.session.secret.writer_secret`,
        created on first use).

    Raises
    ------
    JournalLocked
        Another process holds the session directory's lock.
    JournalError
        Unwritable directory, full disk, a journal already there (new), or a secret that
        cannot be used.
    JournalCorrupt, JournalTampered
        (append) The journal does not read back or its chain does not match.
    JournalUnverifiable
        (append) A version-1 journal, or one written with another installation's secret.
    """

    def __init__(self, path: Path, *, append: bool = False, secret: bytes | None = None) -> None:
        self.path = Path(path)
        self.log: SessionLog | None = None
        self.entries_written = 0
        self.entries = 0  # entries in the file (earlier ones included, when appending)
        self._fd: int | None = None
        self._size = 0
        self._torn: ParsedJournal | None = None
        self.torn_moved: TornTail | None = None  # where resume moved a torn last line
        if not append and self.path.exists():
            raise JournalError(
                f"journal {str(self.path)!r} already exists; choose another output dir "
                "or use `rtplan resume` to continue it"
            )
        check_writable(self.path.parent)
        secret = writer_secret() if secret is None else secret
        self._key = derive_key(secret, "journal-chain")
        self.key_id = key_id(secret)
        self._previous = chain_seed(self._key, "")
        self._lock = SessionLock(self.path.parent)
        self._lock.acquire()
        try:
            if append:
                self._open_existing(secret)
            elif self.path.exists():
                raise JournalError(
                    f"journal {str(self.path)!r} already exists; choose another output dir "
                    "or use `rtplan resume` to continue it"
                )
        except BaseException:
            self._lock.release()
            raise

    def _open_existing(self, secret: bytes) -> None:
        parsed = parse_journal(self.path)
        integrity = verify_chain(parsed, secret)
        if integrity.status is not IntegrityStatus.VERIFIED:
            raise JournalUnverifiable(
                f"{integrity.message}; it is not resumed (`rtplan report` and `rtplan replay` "
                "still read it, with a warning)"
            )
        self.log = build_log(parsed, integrity)
        self._torn = parsed if parsed.torn is not None else None
        self._previous = parsed.last_mac
        self.entries = len(parsed.entries)
        self._size = parsed.keep_bytes
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise JournalError(_describe_os_error(self.path.parent, exc)) from exc

    def _move_torn_tail(self) -> None:
        """Before the first appended entry: move a torn last line aside (logged)."""
        parsed, self._torn = self._torn, None
        if parsed is None:
            return
        try:
            self.torn_moved = move_torn_tail(parsed)
        except JournalError:
            self.close()
            raise
        logger.warning(
            f"journal line {self.torn_moved.line} was torn ({self.torn_moved.size_bytes} "
            f"bytes): moved to {self.torn_moved.moved_to} and the journal truncated to its "
            "last complete line"
        )

    @property
    def head(self) -> ChainHead | None:
        """The chain head (entries in the file, last HMAC); ``None`` before any entry."""
        if self.entries == 0:
            return None
        return ChainHead(entries=self.entries, last_hmac=self._previous.hex())

    @property
    def closed(self) -> bool:
        """Whether the journal no longer accepts entries."""
        return not self._lock.held

    def write(self, entry: JournalEntry) -> None:
        """Seal, append and sync one entry before returning.

        A header written as the first entry gets this installation's ``chain_key_id`` and
        starts the chain from the session id. On failure the partial line is removed (the
        whole file if it was the first entry), the journal is closed and
        :class:`JournalError` is raised.
        """
        if self.closed:
            raise JournalError(f"journal {str(self.path)!r} is closed")
        self._move_torn_tail()
        if isinstance(entry, SessionHeader) and self.entries == 0:
            entry = entry.model_copy(update={"chain_key_id": self.key_id})
            self._previous = chain_seed(self._key, entry.session_id)
        text = entry.model_dump_json()
        try:  # never write a line that cannot be read back (a model_copy skips validation)
            type(entry).model_validate_json(text)
        except ValidationError as exc:
            shown = "; ".join(f"{f}: {r}" for f, r in validation_problems(exc)[:3])
            raise JournalError(
                f"refusing to journal an invalid {type(entry).__name__} ({shown}); "
                "nothing was written"
            ) from exc
        line, mac = seal(self._key, self._previous, text)
        data = (line + "\n").encode("utf-8")
        try:
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                self._fd = os.open(self.path, flags, 0o644)
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except FileExistsError as exc:
            self._lock.release()
            raise JournalError(
                f"journal {str(self.path)!r} was created by someone else meanwhile; "
                "nothing was written: choose another output dir"
            ) from exc
        except OSError as exc:
            self._undo()
            raise JournalError(_describe_os_error(self.path.parent, exc)) from exc
        self._previous = mac
        self._size += len(data)
        self.entries += 1
        self.entries_written += 1

    def _undo(self) -> None:
        """After a failed write: cut the partial line (or the empty new file), then close."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self._size)
                os.fsync(fd)
            os.close(fd)
            if self.entries == 0:
                with contextlib.suppress(OSError):
                    self.path.unlink()
        self._lock.release(remove_if_created=self.entries == 0)

    def close(self) -> None:
        """Close the file and release the lock (idempotent).

        A new journal that received no entry leaves nothing behind (no journal, no lock
        file).
        """
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                os.close(fd)
        finally:
            self._lock.release(remove_if_created=self.entries == 0)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def load_session(session_dir: str | Path) -> SessionLog:
    """Alias of :func:`read_journal` for report writers: the records of one session."""
    return read_journal(session_dir)
