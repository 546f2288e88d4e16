"""Pseudonymous identity of a case, a fingerprint of a template, and a session's provenance.

The plan pseudonym is an HMAC of the plan id keyed by the installation secret
(:mod:`agent.session.secret`), so that short plan ids cannot be recovered by trying them;
nothing identifying (plan, course or patient ids, folder or patient names) is stored.
The structure-set hash (ids and volumes) confirms that a resumed or replayed plan is the
recorded case.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from pydantic import BaseModel

from agent.session.provenance import PolicyDescription
from agent.session.records import CaseIdentity
from agent.session.secret import derive_key, writer_secret
from agent.templates import SiteTemplate
from esapi_bridge.dto import PlanInfo, StructureInfo

#: The distribution whose version goes into journal headers.
PACKAGE_NAME = "rtplan-agent"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def template_hash(template: SiteTemplate) -> str:
    """First 16 hex digits of the sha256 of the template's canonical JSON."""
    data = template.model_dump(mode="json")
    return _digest(json.dumps(data, sort_keys=True, separators=(",", ":")))


#: Free text left out of :func:`clinical_hash` (it does not change how a plan is made or judged).
_NON_CLINICAL = {"aliases", "description", "note"}


def _clinical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clinical(v) for k, v in value.items() if k not in _NON_CLINICAL}
    if isinstance(value, list):
        return [_clinical(v) for v in value]
    return value


def clinical_hash(template: SiteTemplate) -> str:
    """First 16 hex digits of the sha256 of the template's clinical part: technique,
    prescription, structure definitions, objectives with their TPP ranges, goals and score.

    The name, aliases, descriptions, notes and references are left out: renaming an alias or
    rewording a note keeps the hash; changing a goal limit or a range changes it.
    """
    data = template.model_dump(mode="json")
    clinical = {k: _clinical(data[k]) for k in ("technique", "prescription", "structures")}
    clinical |= {k: _clinical(data[k]) for k in ("objectives", "goals", "score")}
    return _digest(json.dumps(clinical, sort_keys=True, separators=(",", ":")))


def plan_pseudonym(plan_id: str, secret: bytes | None = None) -> str:
    """16 hex digits of the HMAC-SHA256 of ``plan_id`` keyed by the installation secret."""
    key = derive_key(writer_secret() if secret is None else secret, "pseudonym")
    return hmac.new(key, plan_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def legacy_plan_pseudonym(plan_id: str) -> str:
    """The unkeyed pseudonym of version-1 journals (sha256 of the plan id, 16 hex digits)."""
    return _digest(plan_id)


def structure_set_hash(structures: Sequence[StructureInfo]) -> str:
    """sha256 (16 hex digits) of the sorted structure ids and volumes (0.1 cm3)."""
    listing = sorted((s.structure_id, round(s.volume_cm3, 1)) for s in structures)
    return _digest(json.dumps(listing))


def case_identity(
    info: PlanInfo,
    structures: Sequence[StructureInfo],
    case_label: str | None = None,
    *,
    secret: bytes | None = None,
) -> CaseIdentity:
    """The keyed plan pseudonym, the structure-set hash and the prescription.

    ``case_label`` is for simulated and public cases (``"prostate-basic/seed0"``) and
    must follow :data:`agent.session.provenance.CASE_LABEL_RULE` (pydantic refuses
    anything else). ``secret`` defaults to the installation secret.
    """
    return CaseIdentity(
        plan_pseudonym=plan_pseudonym(info.plan_id, secret),
        structure_set_hash=structure_set_hash(structures),
        technique=info.technique.value,
        prescription_gy=info.total_dose_gy,
        fractions=info.fractions,
        case_label=case_label,
    )


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def describe_policy(policy: object) -> PolicyDescription:
    """The policy's name and all its settings, as plain JSON, for the journal header.

    Settings come from ``policy.settings`` (a dataclass, a pydantic model or a mapping);
    a policy without one records none. Settings named like credentials are refused
    (:class:`PolicyDescription`).
    """
    settings = getattr(policy, "settings", None)
    if dataclasses.is_dataclass(settings) and not isinstance(settings, type):
        data: Any = dataclasses.asdict(settings)
    elif isinstance(settings, BaseModel):
        data = settings.model_dump(mode="json")
    elif isinstance(settings, Mapping):
        data = dict(settings)
    else:
        data = {}
    return PolicyDescription(name=str(getattr(policy, "name", "")), settings=_plain(data))


def package_version() -> str | None:
    """The installed version of rtplan-agent (``None`` when not installed)."""
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:
        return None


def header_provenance(info: PlanInfo, policy: object) -> dict[str, Any]:
    """The provenance fields of a :class:`agent.session.records.SessionHeader`.

    Engine version and case source come through the port (``PlanInfo.backend``); the
    policy is described by :func:`describe_policy` (``None``: not recorded).
    """
    backend = info.backend
    return {
        "engine_version": None if backend is None else backend.engine_version,
        "package_version": package_version(),
        "case_source": None if backend is None else backend.case_source,
        "policy": None if policy is None else describe_policy(policy),
    }
