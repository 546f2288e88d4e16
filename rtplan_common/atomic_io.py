"""Atomic file writes shared by the agent (reports), the simulated TPS (dose cache) and benches.

A file is written to a temporary file in the same directory, flushed and fsync'ed, then
renamed over the target, so a reader never sees a half-written file and a crash leaves
the old file (or none) in place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal


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

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, permissions)
        encoding = "utf-8" if mode == "w" else None
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, "w") as fh:
        fh.write(text)
