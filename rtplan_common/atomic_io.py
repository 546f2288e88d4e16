"""Atomic file writes shared by the agent (reports), the simulated TPS (dose cache) and benches.

A file is written to a temporary file in the same directory, flushed and fsync'ed, then
renamed over the target, so a reader never sees a half-written file and a crash leaves
the old file (or none) in place. An operating-system failure (full disk, read-only or
unwritable directory) is raised as :class:`AtomicWriteError`, an :class:`OSError` whose
message names the file and the reason in words; the temporary file is removed first.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, Literal


def describe_os_error(exc: OSError) -> str:
    """The reason of an OS error in words (``"the disk is full"``, ``"permission denied ..."``)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only or not writable)"
    return exc.strerror or str(exc)


class AtomicWriteError(OSError):
    """A file could not be written (full disk, read-only directory, ...); nothing was left behind.

    ``str(error)`` names the file and the reason; ``errno`` is the original one.
    """

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, describe_os_error(cause))
        self.path = path
        self.message = f"cannot write {str(path)!r}: {describe_os_error(cause)}"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across worker processes
        return (_rebuild, (self.path, self.errno, self.strerror))


def _rebuild(path: Path, code: int | None, reason: str | None) -> AtomicWriteError:
    return AtomicWriteError(path, OSError(code, reason))


@contextmanager
def atomic_writer(
    path: str | Path, mode: Literal["w", "wb"] = "w", *, permissions: int = 0o644
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path : the file to write (its directory is created if missing).
    mode : ``"w"`` for UTF-8 text, ``"wb"`` for bytes.
    permissions : file mode of the result (``mkstemp`` would leave 0600).

    On any exception the temporary file is removed and ``path`` is left untouched; an
    :class:`OSError` of the file system is re-raised as :class:`AtomicWriteError`.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise AtomicWriteError(target, exc) from exc
    try:
        encoding = "utf-8" if mode == "w" else None
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            os.chmod(tmp, permissions)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, AtomicWriteError):
            raise AtomicWriteError(target, exc) from exc
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, "w") as fh:
        fh.write(text)
