"""Termination signals as the interrupt a session already handles.

``rtplan`` (the composition root) runs a session inside :class:`InterruptOnSignals`: SIGINT
(Ctrl-C), SIGTERM and SIGHUP then raise :class:`SessionInterrupted`, a
:class:`KeyboardInterrupt` carrying the signal number, which the planning loop handles
like Ctrl-C (a ``restore`` intent in the journal, the plan's original objectives restored,
an ``interrupted`` event and the summary naming the signal). The loop itself installs
nothing: a library caller keeps its own signal handling.

Exit codes (``128 + signal number``, the shell's convention): 130 SIGINT, 143 SIGTERM,
129 SIGHUP (:data:`EXIT_CODES`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from loguru import logger

#: The signals a session stops on, where the platform has them.
STOP_SIGNALS: tuple[int, ...] = tuple(
    int(getattr(signal, name)) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
#: Exit code of a process stopped by each signal.
EXIT_CODES: dict[str, int] = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15 (``"signal N"`` for a number the platform does not name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """The exit code of a process stopped by ``signum``: ``128 + signum``."""
    return 128 + signum


class SessionInterrupted(KeyboardInterrupt):
    """A termination signal, raised where the process was when it arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        """``"SIGINT"``, ``"SIGTERM"``, ``"SIGHUP"``."""
        return signal_name(self.signum)

    @property
    def exit_code(self) -> int:
        """130, 143, 129: see :data:`EXIT_CODES`."""
        return exit_code(self.signum)

    def __str__(self) -> str:
        return describe_interrupt(self)


def describe_interrupt(exc: BaseException | None) -> str:
    """``"SIGTERM (signal 15)"``; a bare :class:`KeyboardInterrupt` is Ctrl-C."""
    if isinstance(exc, SessionInterrupted):
        name = "Ctrl-C, SIGINT" if exc.signum == signal.SIGINT else exc.signal_name
        return f"{name} (signal {exc.signum})"
    return f"Ctrl-C, SIGINT (signal {int(signal.SIGINT)})"


def interrupt_exit_code(exc: BaseException | None) -> int:
    """The exit code for an interrupt: its signal's, 130 (SIGINT) for a bare one."""
    if isinstance(exc, SessionInterrupted):
        return exc.exit_code
    return exit_code(int(signal.SIGINT))


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class InterruptOnSignals:
    """Context manager: the stop signals raise :class:`SessionInterrupted` while it is active.

    The first signal raises; later ones are logged and ignored until :meth:`rearm`, so
    that the session's clean-up (restore, summary) is not itself interrupted. The previous
    handlers are put back on exit. Outside the main thread (where Python cannot install
    handlers) it does nothing.

    Examples
    --------
    >>> with InterruptOnSignals() as signals:  # doctest: +SKIP
    ...     summary = loop.run()
    ...     signals.rearm()  # a signal now interrupts the report build
    ...     build_report(session_dir)
    """

    def __init__(self, signals: Iterable[int] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received: SessionInterrupted | None = None
        self._armed = True
        self._previous: dict[int, _Handler] = {}

    def rearm(self) -> None:
        """Let the next signal raise again (after the session's clean-up is done)."""
        self._armed = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._armed:
            logger.warning(f"{signal_name(signum)} ignored: the session is already stopping")
            return
        self._armed = False
        self.received = SessionInterrupted(signum)
        raise self.received

    def __enter__(self) -> InterruptOnSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()


@contextmanager
def blocked_signals(signals: Iterable[int] = STOP_SIGNALS) -> Iterator[None]:
    """Hold the stop signals back (delivered on exit) around a few steps that must not be
    cut in two, such as swapping a directory into place. Does nothing where the platform
    cannot block signals."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:
        yield
        return
    wanted = set(signals)
    previous = mask(signal.SIG_BLOCK, wanted)
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)
