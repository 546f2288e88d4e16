"""Map a plan's structure ids to a template's canonical structures, without guessing.

Each template structure is looked up in four tiers; the first tier that finds any plan id wins:

1. the canonical id, exactly;
2. an alias, exactly;
3. the id or an alias, ignoring case, blanks and punctuation (``femur head l`` ~ ``Femur_Head_L``);
4. TG-263 style token normalization (``FemoralHead_L`` ~ ``femoral head left`` ~ ``L Femur Head``).

Several plan ids in the winning tier, or one plan id claimed by several template structures, is
an ambiguity and raises :class:`StructureMatchError`; so does a required structure matched by
none (the error lists the plan's candidate ids). Optional structures without a match are left out.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence

from agent.templates.errors import StructureMatchError
from agent.templates.names import simple_key, tg263_forms
from agent.templates.schema import SiteTemplate, StructureSpec
from esapi_bridge.dto import StructureInfo

_TIER_NAMES = ("exact id", "exact alias", "case/punctuation-insensitive", "TG-263 normalized")


def _tiers(spec: StructureSpec) -> list[Callable[[str], bool]]:
    names = [spec.id, *spec.aliases]
    simple = {simple_key(n) for n in names}
    forms: set[str] = set()
    for n in names:
        forms |= tg263_forms(n)
    return [
        lambda pid: pid == spec.id,
        lambda pid: pid in spec.aliases,
        lambda pid: simple_key(pid) in simple,
        lambda pid: bool(tg263_forms(pid) & forms),
    ]


def _plan_ids(plan_structures: Sequence[str | StructureInfo]) -> list[str]:
    ids: list[str] = []
    for s in plan_structures:
        if isinstance(s, StructureInfo):
            if not s.is_empty:
                ids.append(s.structure_id)
        else:
            ids.append(s)
    return ids


def candidates_for(spec: StructureSpec, plan_ids: Sequence[str], n: int = 5) -> list[str]:
    """Plan ids that resemble ``spec`` (for error messages); all plan ids if none does."""
    by_key = {simple_key(pid): pid for pid in plan_ids}
    found: list[str] = []
    for name in [spec.id, *spec.aliases]:
        for key in difflib.get_close_matches(simple_key(name), list(by_key), n=n, cutoff=0.5):
            if by_key[key] not in found:
                found.append(by_key[key])
    return found[:n] if found else sorted(plan_ids)


def match_structures(
    template: SiteTemplate,
    plan_structure_ids: Sequence[str | StructureInfo],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map canonical template ids to the plan's structure ids.

    Parameters
    ----------
    template : the site template.
    plan_structure_ids : the plan's structure ids (or ``StructureInfo``; empty ones are ignored).
    overrides : explicit canonical id -> plan id choices (e.g. from the user), applied first.

    Returns
    -------
    dict
        canonical id -> plan id, for every required and every found optional structure.

    Raises
    ------
    StructureMatchError
        A required structure has no match (with the plan's candidate ids), a structure has
        several matches in its best tier, or several template structures claim one plan id.
    """
    plan_ids = _plan_ids(plan_structure_ids)
    known = set(template.structure_ids)
    result: dict[str, str] = {}
    how: dict[str, str] = {}
    for canonical, pid in (overrides or {}).items():
        if canonical not in known:
            raise StructureMatchError(
                f"override for unknown template structure {canonical!r}; "
                f"template structures: {', '.join(sorted(known))}"
            )
        if pid not in plan_ids:
            raise StructureMatchError(
                f"override {canonical!r} -> {pid!r}: the plan has no structure {pid!r}; "
                f"the plan has: {', '.join(plan_ids)}"
            )
        result[canonical] = pid
        how[canonical] = "override"

    missing: dict[str, list[str]] = {}
    ambiguous: dict[str, list[str]] = {}
    lines: list[str] = []
    for spec in template.structures:
        if spec.id in result:
            continue
        for tier, test in enumerate(_tiers(spec)):
            hits = [pid for pid in plan_ids if test(pid)]
            if len(hits) == 1:
                result[spec.id] = hits[0]
                how[spec.id] = _TIER_NAMES[tier]
                break
            if len(hits) > 1:
                ambiguous[spec.id] = hits
                lines.append(
                    f"{spec.id!r} is ambiguous: {', '.join(map(repr, hits))} all match "
                    f"({_TIER_NAMES[tier]}); pass an override"
                )
                break
        else:
            if spec.required:
                cands = candidates_for(spec, plan_ids)
                missing[spec.id] = cands
                lines.append(
                    f"required structure {spec.id!r} (aliases: {', '.join(spec.aliases) or '-'}) "
                    f"not found; candidates: {', '.join(map(repr, cands)) or 'none'}"
                )

    claimed: dict[str, list[str]] = {}
    for canonical, pid in result.items():
        claimed.setdefault(pid, []).append(canonical)
    for pid, owners in claimed.items():
        if len(owners) > 1:
            for canonical in owners:
                ambiguous.setdefault(canonical, [pid])
            lines.append(
                f"plan structure {pid!r} matches several template structures: "
                f"{', '.join(f'{o!r} ({how[o]})' for o in owners)}; pass an override"
            )
    if lines:
        raise StructureMatchError(
            f"cannot map the plan's structures to template {template.name!r}:\n  "
            + "\n  ".join(lines),
            missing=missing,
            ambiguous=ambiguous,
        )
    return result
