"""Errors of the session records: writing, reading, verifying and locking a journal.

:class:`JournalError` is the root (the CLI prints it as a clear error, never a traceback);
:mod:`agent.session.journal` re-exports all of them.
"""

from __future__ import annotations


class JournalError(RuntimeError):
    """The journal cannot be written (unwritable directory, full disk, ...)."""


class JournalCorrupt(JournalError):
    """A journal cannot be read back: malformed, truncated or inconsistent."""


class JournalTampered(JournalCorrupt):
    """The HMAC chain does not match: an entry was edited, removed, reordered or cut off."""


class JournalUnverifiable(JournalError):
    """The chain cannot be checked here (another installation's secret, or a v1 journal)."""


class JournalLocked(JournalError):
    """Another process is writing this session (its lock is held)."""


class SecretError(JournalError):
    """The per-installation secret cannot be created or read, or is readable by others."""


class ResumeError(RuntimeError):
    """The journal cannot be resumed or replayed (finished, other case, template changed)."""
