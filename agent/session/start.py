"""Starting a session: every check before anything is created, the header, iteration 0.

A session that cannot start leaves nothing behind: :func:`check_plan` reads and checks
the plan (locked, structures that do not match the template) before the session
directory exists, :func:`leave_no_empty_dirs` removes the directories a failed start
created, and :func:`probe_writable` proves an output directory writable without
leaving it there. Once the journal holds its header, a failure is journaled (an event
and the summary) instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.session.guardrails import Guardrails
from agent.session.identity import case_identity, header_provenance, template_hash
from agent.session.journal import check_writable
from agent.session.negotiation import SessionAborted
from agent.session.records import (
    TEMPLATE_POLICY,
    GuardVerdict,
    Proposal,
    SessionConfig,
    SessionHeader,
    StopReason,
)
from agent.templates import SiteTemplate, match_structures
from esapi_bridge.dto import Objective, PlanInfo, StructureInfo
from esapi_bridge.errors import PlanLocked
from esapi_bridge.port import TpsSession


@dataclass(frozen=True)
class PlanCheck:
    """What a new session reads of the plan before it changes anything."""

    info: PlanInfo
    structures: list[StructureInfo]
    structure_map: dict[str, str]  # canonical template id -> plan structure id
    original: list[Objective]  # the objectives restored on error or interrupt


def check_plan(session: TpsSession, template: SiteTemplate) -> PlanCheck:
    """Read the plan and check that a session may start on it (nothing is changed).

    Raises
    ------
    PlanLocked
        The plan is approved (work on an unapproved copy).
    agent.templates.StructureMatchError
        The plan's structures do not match the template.
    """
    info = session.plan_info()
    if info.approval_status.is_locked:
        raise PlanLocked(f"plan is {info.approval_status.value}; work on an unapproved copy")
    structures = session.structures()
    structure_map = match_structures(template, structures)
    return PlanCheck(info, structures, structure_map, session.get_objectives())


def session_header(
    check: PlanCheck,
    template: SiteTemplate,
    config: SessionConfig,
    case_label: str | None,
    policy: object = None,
) -> SessionHeader:
    """The first journal entry of a new session (a fresh session id), with its provenance
    (:func:`agent.session.identity.header_provenance`: versions, case source, ``policy``)."""
    return SessionHeader(
        session_id=uuid.uuid4().hex[:12],
        config=config,
        template_name=template.name,
        template_hash=template_hash(template),
        case=case_identity(check.info, check.structures, case_label),
        structure_map=check.structure_map,
        original_objectives=check.original,
        **header_provenance(check.info, policy),
    )


def template_start(
    template: SiteTemplate, guard: Guardrails, structure_map: Mapping[str, str], rx_gy: float
) -> tuple[Proposal, GuardVerdict, list[Objective]]:
    """Iteration 0: the template's initial objectives, through the guardrails.

    Raises
    ------
    SessionAborted
        With :attr:`StopReason.ERROR` when the guardrails reject them.
    """
    objectives = template.initial_objectives(dict(structure_map), rx_gy)
    proposal = Proposal(
        objectives=objectives, rationale="template initial objectives", policy=TEMPLATE_POLICY
    )
    verdict, applied = guard.check(proposal, None)
    if applied is None:
        raise SessionAborted(
            StopReason.ERROR, "template objectives rejected: " + "; ".join(verdict.reasons)
        )
    return proposal, verdict, applied


def _missing_dirs(directory: Path) -> list[Path]:
    """``directory`` and its ancestors that do not exist yet, deepest first."""
    missing: list[Path] = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _remove_if_empty(paths: list[Path]) -> None:
    for path in paths:  # deepest first; stop at the first that is not empty
        try:
            path.rmdir()
        except OSError:
            return


@contextmanager
def leave_no_empty_dirs(directory: Path, *, always: bool = False) -> Iterator[None]:
    """Remove the directories (``directory`` and ancestors) created inside the block, if
    they are empty, when the block fails (or ``always``)."""
    created = _missing_dirs(Path(directory))
    try:
        yield
    except BaseException:
        _remove_if_empty(created)
        raise
    if always:
        _remove_if_empty(created)


def probe_writable(directory: Path) -> None:
    """:func:`agent.session.journal.check_writable` without leaving a directory behind.

    Raises
    ------
    agent.session.journal.JournalError
        Naming the directory and the OS reason.
    """
    with leave_no_empty_dirs(Path(directory), always=True):
        check_writable(Path(directory))


def plan_identifiers(
    plan_id: str,
    structures: Sequence[StructureInfo],
    structure_map: Mapping[str, str],
    case_label: str | None = None,
) -> frozenset[str]:
    """What identifies this plan or patient and must never reach a model's prompt: the plan
    id, the case label, and every plan structure id that is not a template id (a
    structure named ``PTV_Smith`` carries a name; ``Rectum`` does not)."""
    canonical = {c.casefold() for c in structure_map}
    found = {plan_id} | ({case_label} if case_label else set())
    found |= {s.structure_id for s in structures if s.structure_id.casefold() not in canonical}
    return frozenset(found)
