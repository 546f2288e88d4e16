"""Pseudonymous identity of a case and a fingerprint of a template, for journals."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from agent.session.records import CaseIdentity
from agent.templates import SiteTemplate
from esapi_bridge.dto import PlanInfo, StructureInfo


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def template_hash(template: SiteTemplate) -> str:
    """First 16 hex digits of the sha256 of the template's canonical JSON."""
    data = template.model_dump(mode="json")
    return _digest(json.dumps(data, sort_keys=True, separators=(",", ":")))


def case_identity(
    info: PlanInfo, structures: Sequence[StructureInfo], case_label: str | None = None
) -> CaseIdentity:
    """Hashes of the plan id and of the structure set (ids and volumes to 0.1 cm3).

    No name or id of the patient or plan is stored; ``case_label`` is for simulated cases
    (e.g. ``"prostate-basic/seed0"``) and must not carry patient information.
    """
    listing = sorted((s.structure_id, round(s.volume_cm3, 1)) for s in structures)
    return CaseIdentity(
        plan_pseudonym=_digest(info.plan_id),
        structure_set_hash=_digest(json.dumps(listing)),
        technique=info.technique.value,
        prescription_gy=info.total_dose_gy,
        fractions=info.fractions,
        case_label=case_label,
    )
