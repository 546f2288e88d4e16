"""Objective changes between iterations, for the report's change log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.report.data import score_text
from agent.session.records import SessionLog
from esapi_bridge.dto import EudObjective, NormalTissueObjective, Objective, PointObjective


def objective_kind(obj: Objective) -> str:
    """``point upper``, ``mean``, ``gEUD lower``, ``NTO``."""
    if isinstance(obj, NormalTissueObjective):
        return "NTO"
    if isinstance(obj, PointObjective):
        return f"point {obj.operator.value} @ {obj.volume_pct:g} %"
    if isinstance(obj, EudObjective):
        return f"gEUD {obj.operator.value}"
    return "mean"


def _structure(obj: Objective) -> str:
    return "—" if isinstance(obj, NormalTissueObjective) else obj.structure_id


def _group(obj: Objective) -> tuple[str, str]:
    """Pairing key: structure and kind with operator, without the point volume."""
    kind = objective_kind(obj).split(" @ ")[0]
    return _structure(obj), kind


def _fields(obj: Objective) -> dict[str, Any]:
    data = obj.model_dump(mode="json")
    for key in ("kind", "structure_id", "operator"):
        data.pop(key, None)
    return data


def _fmt_field(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _describe(obj: Objective) -> str:
    return ", ".join(f"{k}={_fmt_field(v)}" for k, v in _fields(obj).items())


def objective_changes(
    before: Sequence[Objective], after: Sequence[Objective]
) -> list[dict[str, str]]:
    """Field-by-field changes from ``before`` to ``after``.

    Objectives are paired by structure and kind (and operator), in list order
    within a group; unpaired ones are reported as added or removed.
    Rows: ``structure``, ``kind``, ``field``, ``before``, ``after``.
    """
    pool: dict[tuple[str, str], list[Objective]] = {}
    for obj in before:
        pool.setdefault(_group(obj), []).append(obj)
    rows: list[dict[str, str]] = []
    for obj in after:
        group = pool.get(_group(obj))
        structure, kind = _structure(obj), objective_kind(obj)
        if not group:
            rows.append(
                {
                    "structure": structure,
                    "kind": kind,
                    "field": "(added)",
                    "before": "—",
                    "after": _describe(obj),
                }
            )
            continue
        # prefer an identical objective, then one with the same volume, then the first
        exact = next((o for o in group if o == obj), None)
        old = exact or next(
            (o for o in group if _fields(o).get("volume_pct") == _fields(obj).get("volume_pct")),
            group[0],
        )
        group.remove(old)
        f0, f1 = _fields(old), _fields(obj)
        for key in f1:
            if f0.get(key) != f1[key]:
                rows.append(
                    {
                        "structure": structure,
                        "kind": kind,
                        "field": key,
                        "before": _fmt_field(f0.get(key, "—")),
                        "after": _fmt_field(f1[key]),
                    }
                )
    for rest in pool.values():
        for obj in rest:
            rows.append(
                {
                    "structure": _structure(obj),
                    "kind": objective_kind(obj),
                    "field": "(removed)",
                    "before": _describe(obj),
                    "after": "—",
                }
            )
    return rows


def objective_rows(objectives: Sequence[Objective]) -> list[dict[str, str]]:
    """One row per objective: structure, kind and its parameters."""
    return [
        {"structure": _structure(o), "kind": objective_kind(o), "parameters": _describe(o)}
        for o in objectives
    ]


def change_log(log: SessionLog) -> list[dict[str, Any]]:
    """Per iteration >= 1: policy, rationale, guard verdict, rejections and objective changes."""
    entries: list[dict[str, Any]] = []
    for prev, it in zip(log.iterations, log.iterations[1:], strict=False):
        ev = it.evaluation
        entries.append(
            {
                "iteration": it.iteration,
                "policy": it.proposal.policy,
                "rationale": it.proposal.rationale,
                "done": it.proposal.done,
                "verdict": it.verdict.status.value,
                "adjustments": list(it.verdict.adjustments),
                "reasons": list(it.verdict.reasons),
                "approval": it.approval.value,
                "feedback": it.feedback,
                "rejected": [
                    {
                        "policy": r.proposal.policy,
                        "rationale": r.proposal.rationale,
                        "reasons": list(r.verdict.reasons),
                    }
                    for r in it.rejected
                ],
                "changes": objective_changes(prev.applied_objectives, it.applied_objectives),
                "score_before": None if prev.evaluation is None else prev.evaluation.score,
                "score_after": None if ev is None else ev.score,
                "score_text_before": score_text(prev.evaluation),
                "score_text_after": score_text(ev),
            }
        )
    return entries
