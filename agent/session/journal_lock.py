"""The advisory lock a writer (a new session, a resume) holds on its session directory.

The lock is an exclusive, non-blocking ``flock`` on ``<session dir>/.rtplan.lock`` (on
Windows a ``msvcrt`` byte lock); its holder writes its pid into the file. A second writer
is refused at once with :class:`agent.session.errors.JournalLocked`, naming the directory
and, if known, the holder's pid. Readers (report, replay, show) never take the lock. The
lock file stays in the directory after a session (removing it would let two writers lock
different files); an empty session directory is left without it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from agent.session.errors import JournalError, JournalLocked
from rtplan_common.atomic_io import describe_os_error

#: The lock file of a session directory.
LOCK_FILENAME = ".rtplan.lock"


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting; ``False`` if another holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on the Eclipse workstation
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def _holder_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii").strip()
        return int(text) if text else None
    return None


class SessionLock:
    """The writer's lock on one session directory (see the module docstring).

    Parameters
    ----------
    directory
        The session directory (it must exist).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILENAME
        self._fd: int | None = None
        self._created = False

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`JournalLocked` (naming the holder's pid if known)."""
        existed = self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(
                f"cannot lock the session directory {str(self.directory)!r}: "
                f"{describe_os_error(exc)}"
            ) from exc
        if not _try_lock(fd):
            pid = _holder_pid(fd)
            os.close(fd)
            who = f" (pid {pid})" if pid is not None else ""
            raise JournalLocked(
                f"session directory {str(self.directory)!r} is being written by another "
                f"rtplan process{who}; wait for it to finish, or choose another output directory"
            )
        self._fd, self._created = fd, not existed
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))

    def release(self, *, remove_if_created: bool = False) -> None:
        """Let go of the lock (idempotent); optionally remove a lock file this lock created."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if remove_if_created and self._created:
                with contextlib.suppress(OSError):
                    self.path.unlink()
            with contextlib.suppress(OSError):
                _unlock(fd)
        finally:
            os.close(fd)
