"""Checks of a recorded session against what is open now: its template and its case.

Shared by :mod:`agent.session.resume` and :mod:`agent.session.replay`.
"""

from __future__ import annotations

from pathlib import Path

from agent.session.errors import ResumeError
from agent.session.identity import (
    legacy_plan_pseudonym,
    plan_pseudonym,
    structure_set_hash,
    template_hash,
)
from agent.session.provenance import IntegrityStatus
from agent.session.records import SessionLog
from agent.templates import SiteTemplate, load_template
from esapi_bridge.port import TpsSession


def load_recorded_template(
    log: SessionLog,
    *,
    template_file: str | Path | None = None,
    allow_template_change: bool = False,
) -> SiteTemplate:
    """The session's template, refused (:class:`ResumeError`) if it changed since.

    A shipped template is found by name; a session planned with a template file needs that
    file again (``template_file``): the journal keeps only the template's name and hash.
    """
    header = log.header
    if template_file is not None:
        template = load_template(str(template_file))
        if template.name != header.template_name:
            raise ResumeError(
                f"the template file holds template {template.name!r}; the session used "
                f"{header.template_name!r}"
            )
    elif header.config.template_from_file:
        raise ResumeError(
            f"the session used template {header.template_name!r} from a YAML file; pass "
            f"that file with --template FILE (its hash must be {header.template_hash})"
        )
    else:
        template = load_template(header.template_name)
    if template_hash(template) != header.template_hash and not allow_template_change:
        raise ResumeError(
            f"template {header.template_name!r} changed since the session was recorded "
            f"(hash {template_hash(template)} != {header.template_hash})"
        )
    return template


def check_case(log: SessionLog, session: TpsSession, *, strict: bool) -> list[str]:
    """Refuse a plan that is not the recorded case; return notices about lesser differences.

    The structure set (ids and volumes) must match, and so must the plan pseudonym where it
    can be recomputed (keyed with this installation's secret; unkeyed in version-1
    journals; not at all for another installation's journal). A different case content
    hash or engine version is refused when ``strict`` (resume) and a notice otherwise
    (replay: the comparison shows what it changes).

    Raises
    ------
    ResumeError
        The open plan is not the journaled case.
    """
    info = session.plan_info()
    recorded = log.header.case
    status = log.integrity.status
    notices: list[str] = []
    if status is IntegrityStatus.UNVERIFIED_V1:
        pseudonym: str | None = legacy_plan_pseudonym(info.plan_id)
    elif status is IntegrityStatus.FOREIGN_SECRET:
        pseudonym = None
        notices.append("the plan pseudonym was not compared (another installation's secret)")
    else:
        pseudonym = plan_pseudonym(info.plan_id)
    structures = structure_set_hash(session.structures())
    if structures != recorded.structure_set_hash or pseudonym not in (
        None,
        recorded.plan_pseudonym,
    ):
        raise ResumeError(
            "the open plan is not the journaled case "
            f"(plan {pseudonym or '-'}/{structures}, journal "
            f"{recorded.plan_pseudonym}/{recorded.structure_set_hash})"
        )
    backend = info.backend
    source = log.header.case_source
    now = None if backend is None else backend.case_source
    differences: list[str] = []
    old_hash = None if source is None else source.content_hash
    new_hash = None if now is None else now.content_hash
    if old_hash and new_hash and old_hash != new_hash:
        differences.append(f"the case content differs (hash {new_hash}, recorded {old_hash})")
    engine = None if backend is None else backend.engine_version
    if log.header.engine_version and engine and engine != log.header.engine_version:
        differences.append(
            f"the dose engine differs ({engine}, recorded {log.header.engine_version})"
        )
    if differences and strict:
        raise ResumeError("cannot continue the session: " + "; ".join(differences))
    return notices + differences
