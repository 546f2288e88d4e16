"""The TPS as a session changes it: every change is journaled (fsync) before it is made.

:class:`JournaledTps` pairs the TPS session with the session's journal: :meth:`apply`
writes an ``intent`` and then sets the objectives, :meth:`restore` puts the plan's
original objectives back (``restore`` intent, then a ``restored`` or ``restore_failed``
event), :meth:`event` journals a note, :meth:`snapshot` saves DVHs and dose planes for
the report (a failure is journaled, never fatal).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from loguru import logger

from agent.session.journal import Journal, JournalError
from agent.session.model_calls import ModelCallStats
from agent.session.records import ApplyIntent, SessionEvent
from esapi_bridge.dto import Objective
from esapi_bridge.errors import TpsError
from esapi_bridge.port import TpsSession

TrialPurpose = Literal["apply", "trial"]


class JournaledTps:
    """The loop's only way to change the plan.

    Parameters
    ----------
    session
        The TPS session.
    journal
        The open journal of the session.
    out_dir
        The session directory (snapshots go there).
    save_snapshots
        Whether :meth:`snapshot` saves anything.
    """

    def __init__(
        self, session: TpsSession, journal: Journal, out_dir: Path, *, save_snapshots: bool = True
    ) -> None:
        self.session = session
        self.journal = journal
        self.out_dir = out_dir
        self.save_snapshots = save_snapshots

    def event(
        self,
        kind: str,
        iteration: int | None,
        message: str,
        model_calls: ModelCallStats | None = None,
    ) -> None:
        """Journal a :class:`SessionEvent`."""
        self.journal.write(
            SessionEvent(kind=kind, iteration=iteration, message=message, model_calls=model_calls)
        )

    def apply(
        self, iteration: int, objectives: list[Objective], purpose: TrialPurpose = "apply"
    ) -> None:
        """Journal the intent (synced), then set ``objectives`` on the plan.

        ``purpose="trial"`` marks a look-ahead trial (the committed objectives follow).
        """
        self.journal.write(ApplyIntent(iteration=iteration, objectives=objectives, purpose=purpose))
        self.session.set_objectives(objectives)

    def restore(self, original: list[Objective], *, journaled: bool = True) -> bool:
        """Put the plan's original objectives back; ``True`` on success.

        ``journaled=False`` (the journal itself failed) sets them without writing to it.
        A failure is logged and, if the journal still works, journaled.
        """
        try:
            if journaled:
                self.journal.write(ApplyIntent(iteration=0, objectives=original, purpose="restore"))
            self.session.set_objectives(original)
        except (TpsError, JournalError, KeyboardInterrupt) as exc:
            logger.error(f"could not restore the original objectives: {exc}")
            if journaled:
                with contextlib.suppress(JournalError):
                    self.event("restore_failed", None, str(exc))
            return False
        if journaled:
            self.event("restored", None, f"{len(original)} original objectives restored")
        return True

    def snapshot(self, label: str, structure_ids: Sequence[str]) -> None:
        """Save DVHs and dose planes of the current plan as ``label`` for the report."""
        if not self.save_snapshots:
            return
        try:
            from agent.report.artifacts import save_plan_snapshot

            save_plan_snapshot(self.session, self.out_dir, label, list(structure_ids))
        except (TpsError, OSError, ImportError, ValueError) as exc:
            self.event("snapshot_failed", None, f"{label}: {type(exc).__name__}: {exc}")
