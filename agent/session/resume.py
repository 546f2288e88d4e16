"""Continue an interrupted session (``rtplan resume``).

Resume takes the session directory's lock, reads the journal and verifies its HMAC chain
(:class:`agent.session.journal.Journal` with ``append=True``), moves a torn last line
aside (the one exception to "never rewritten"), reopens the plan, checks that it is the
same case and template, re-applies the objectives of the last completed iteration,
re-optimizes from scratch (the fluence of the interrupted process is gone) and
continues, appending to the journal and its chain.

Refused, with the journal left untouched: a corrupt journal (naming the line), a
tampered or truncated one (naming the first entry that does not match), a version-1
journal (no chain) or one written with another installation's secret (it cannot be
verified here), a finished session, a changed template, another case.

Replay lives in :mod:`agent.session.replay` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loguru import logger

from agent.policies import Policy, make_policy
from agent.session.approval import Approver
from agent.session.errors import ResumeError
from agent.session.journal import Journal, journal_path
from agent.session.loop import IterationCallback, PlanningLoop
from agent.session.recorded_case import check_case, load_recorded_template
from agent.session.records import SessionConfig, SessionLog, SessionSummary, StopReason
from agent.session.replay import (
    REPLAY_TOLERANCE,
    IterationComparison,
    ReplayReport,
    replay_session,
)
from esapi_bridge.port import TpsSession

__all__ = [
    "REPLAY_TOLERANCE",
    "RESUMABLE",
    "IterationComparison",
    "ReplayReport",
    "ResumeError",
    "SessionFactory",
    "replay_session",
    "resume_session",
]

SessionFactory = Callable[[SessionConfig], TpsSession]

#: Stop reasons after which a session may be resumed (besides a journal without summary).
RESUMABLE = frozenset({StopReason.INTERRUPTED, StopReason.ERROR})


def resume_session(
    journal: str | Path,
    open_session: SessionFactory,
    *,
    approver: Approver | None = None,
    on_iteration: IterationCallback | None = None,
    template_file: str | Path | None = None,
    policy_for: Callable[[SessionLog, Path], Policy] | None = None,
    loop_type: Callable[..., PlanningLoop] = PlanningLoop,
) -> SessionSummary:
    """Continue the session of ``journal`` (file or session directory).

    ``policy_for(log, session_dir)`` builds the policy from the journal (the LLM policy with
    its recorded settings, recording into the same directory); default:
    ``make_policy(config.policy)``. ``loop_type`` builds the loop (a subclass that journals
    more, as the standalone ESAPI mode's does; same arguments as :class:`PlanningLoop`).

    Notices (a torn line moved aside, a differing engine) are logged as warnings.

    Raises
    ------
    agent.session.journal.JournalLocked
        Another process is writing the session.
    agent.session.journal.JournalCorrupt
        Malformed journal (nothing is written).
    agent.session.journal.JournalTampered
        The HMAC chain or the chain head does not match (nothing is written).
    agent.session.journal.JournalUnverifiable
        A version-1 journal or another installation's (nothing is written).
    ResumeError
        Finished session, changed template, or a different case.
    """
    path = journal_path(journal)
    handle = Journal(path, append=True)
    try:
        log = handle.log
        assert log is not None
        for notice in log.notices:
            logger.warning(notice)
        if log.summary is not None and log.summary.stop_reason not in RESUMABLE:
            raise ResumeError(
                f"session {log.header.session_id} already finished "
                f"({log.summary.stop_reason.value}); nothing to resume"
            )
        template = load_recorded_template(log, template_file=template_file)
        config = log.header.config
        session = open_session(config)
        for notice in check_case(log, session, strict=True):
            logger.warning(notice)
        policy = make_policy(config.policy) if policy_for is None else policy_for(log, path.parent)
        loop = loop_type(
            session,
            template,
            policy,
            config,
            path.parent,
            approver=approver,
            on_iteration=on_iteration,
            case_label=log.header.case.case_label,
        )
    except BaseException:
        handle.close()
        raise
    return loop.continue_from(log, handle)
