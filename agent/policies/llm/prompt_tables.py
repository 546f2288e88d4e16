"""The current-state sections of the LLM prompt: goals, score, objectives, DVHs, memory.

Every section is a fixed ``## `` heading followed by a pipe table or bullet lines (the format
is documented in :mod:`agent.policies.llm.prompt`). Structures appear by the template's
canonical ids only; every id, metric and free text from outside is a quoted JSON string
(:func:`agent.policies.llm.sanitize.quote_cell`). Numbers have fixed formats: doses and
priorities 2 decimals, volumes (objective and DVH) 1 decimal, goal values and margins 2
decimals (3 for indices), optimizer values 4 significant digits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from agent.evaluation import STATUS_TOLERANCE, Evaluation
from agent.policies.base import PolicyContext
from agent.policies.llm.edits import objective_id
from agent.session.memory import MemoryStep, ObjectiveChange
from agent.templates import CriterionSpec, GoalSpec, MetricKind, StructureMatchError, TppRange
from esapi_bridge.dto import (
    DvhCurve,
    EudObjective,
    NormalTissueObjective,
    Objective,
    PointObjective,
    objective_key,
)

from .sanitize import quote_cell

UNLISTED = "unlisted structure"
NONE = "-"
DVH_VOLUMES_PCT = (98.0, 95.0, 50.0, 2.0)
_VALUE_DECIMALS = {"Gy": 2, "%": 2, "cm3": 2, "": 3}


# ----- numbers -------------------------------------------------------------------------
def fixed(value: float, decimals: int, signed: bool = False) -> str:
    """``value`` with ``decimals`` decimals (no negative zero)."""
    if round(value, decimals) == 0:
        value = 0.0
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def gy(value: float) -> str:
    """A dose: 2 decimals."""
    return fixed(value, 2)


def pct(value: float) -> str:
    """A volume: 1 decimal."""
    return fixed(value, 1)


def prio(value: float) -> str:
    """A priority: 2 decimals."""
    return fixed(value, 2)


def metric_value(value: float, unit: str, signed: bool = False) -> str:
    """A goal value or margin in the goal's unit."""
    return fixed(value, _VALUE_DECIMALS.get(unit, 3), signed)


def span(bounds: tuple[float, float] | None, fmt: Callable[[float], str]) -> str:
    """``lo..hi`` of a range in the field's format, or ``-``."""
    if bounds is None:
        return NONE
    return f"{fmt(bounds[0])}..{fmt(bounds[1])}"


# ----- tables --------------------------------------------------------------------------
def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table (header, separator, rows); ``(none)`` under the header when empty."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def section(heading: str, body: str) -> str:
    """``## heading`` and its body."""
    return f"## {heading}\n{body}"


# ----- structures ----------------------------------------------------------------------
def plan_to_canonical(context: PolicyContext) -> dict[str, str]:
    """Plan structure id -> canonical id (the first canonical id in template order)."""
    out: dict[str, str] = {}
    for canonical in context.template.structure_ids:
        plan = context.structure_map.get(canonical)
        if plan is not None and plan not in out:
            out[plan] = canonical
    for canonical, plan in context.structure_map.items():
        out.setdefault(plan, canonical)
    return out


def structure_cell(plan_id: str | None, inverse: Mapping[str, str]) -> str:
    """A plan structure as its quoted canonical id (``-`` for none, quoted "unlisted
    structure" for a structure outside the map)."""
    if plan_id is None:
        return NONE
    return quote_cell(inverse.get(plan_id, UNLISTED))


# ----- goals and score -----------------------------------------------------------------
def _level_gy(context: PolicyContext, goal_id: str, criterion: bool = False) -> str:
    """The dose level (Gy) of a ``V`` goal or criterion, else ``-``."""
    specs: list[GoalSpec] | list[CriterionSpec] = list(context.template.goals)
    if criterion:
        score = context.template.score
        specs = list(score.criteria) if score is not None else []
    for spec in specs:
        if spec.id == goal_id and spec.metric.kind is MetricKind.VOLUME_AT_DOSE:
            return gy(spec.metric.dose_level_gy(context.prescription_gy))
    return NONE


def score_lines(ev: Evaluation) -> str:
    """``score: x of max`` (or that there is none) and the priority-1 status."""
    if ev.score is None or ev.max_score is None:
        score = "score: none (the protocol has no score)"
    else:
        score = f"score: {fixed(ev.score, 2)} of {fixed(ev.max_score, 2)}"
    p1 = "yes" if ev.all_priority1_met else "no"
    return f"{score}\nevery priority-1 goal met: {p1}"


def goals_table(context: PolicyContext) -> str:
    """Every evaluated goal with its limit, priority, status, value and margin."""
    header = [
        "goal", "structure", "metric", "level_gy", "comparator", "limit", "unit", "priority",
        "status", "value", "margin",
    ]  # fmt: skip
    rows = []
    for g in context.evaluation.goals:
        rows.append(
            [
                quote_cell(g.goal_id), quote_cell(g.structure_id), quote_cell(g.metric),
                _level_gy(context, g.goal_id), g.comparator, metric_value(g.limit, g.unit),
                g.unit or NONE, str(g.priority), g.status.value, metric_value(g.value, g.unit),
                metric_value(g.margin, g.unit, signed=True),
            ]
        )  # fmt: skip
    text = table(header, rows)
    if context.evaluation.skipped_goals:
        skipped = ", ".join(quote_cell(s) for s in context.evaluation.skipped_goals)
        text += f"\nnot evaluated (optional structure absent): {skipped}"
    return text


def criteria_table(context: PolicyContext) -> str:
    """Every score criterion with its current value and points."""
    header = [
        "criterion", "structure", "metric", "level_gy", "comparator", "full", "zero", "unit",
        "value", "points", "max_points",
    ]  # fmt: skip
    rows = [
        [
            quote_cell(c.criterion_id), quote_cell(c.structure_id), quote_cell(c.metric),
            _level_gy(context, c.criterion_id, criterion=True), c.comparator,
            metric_value(c.full, c.unit), metric_value(c.zero, c.unit), c.unit or NONE,
            metric_value(c.value, c.unit), fixed(c.points, 2), fixed(c.max_points, 2),
        ]
        for c in context.evaluation.criteria
    ]  # fmt: skip
    return table(header, rows)


# ----- objectives ----------------------------------------------------------------------
def _ranges(context: PolicyContext) -> dict[str, TppRange]:
    try:
        return context.template.tpp_ranges_for(context.structure_map, context.prescription_gy)
    except StructureMatchError:
        return {}


def _achieved(obj: Objective, dvhs: Mapping[str, DvhCurve]) -> str:
    if isinstance(obj, NormalTissueObjective | EudObjective):
        return NONE
    curve = dvhs.get(obj.structure_id)
    if curve is None:
        return NONE
    if isinstance(obj, PointObjective):
        return gy(curve.dose_at_volume_pct(obj.volume_pct))
    return gy(curve.mean_dose_gy)


def _details(obj: Objective) -> str:
    if isinstance(obj, NormalTissueObjective):
        return (
            f"distance {fixed(obj.distance_from_target_border_mm, 1)} mm, start "
            f"{pct(obj.start_dose_pct)} %, end {pct(obj.end_dose_pct)} %, fall-off "
            f"{fixed(obj.fall_off, 2)}"
        )
    if isinstance(obj, EudObjective):
        return f"a {fixed(obj.parameter_a, 2)}"
    return NONE


def objectives_table(context: PolicyContext) -> str:
    """The current objectives with ids O1..On, the TPS's values and the template ranges."""
    inverse = plan_to_canonical(context)
    ranges = _ranges(context)
    values: dict[str, float] = {}
    if context.optimization is not None:
        values = {v.key: v.value for v in context.optimization.objective_values}
    header = [
        "id", "kind", "structure", "operator", "dose_gy", "volume_pct", "priority",
        "achieved_gy", "tps_value", "dose_range_gy", "volume_range_pct", "priority_range",
        "details",
    ]  # fmt: skip
    rows = []
    for i, obj in enumerate(context.objectives):
        key = objective_key(obj)
        rng = ranges.get(key, TppRange())
        value = values.get(key)
        if isinstance(obj, NormalTissueObjective):
            where = [NONE, NONE, NONE]
            dose_range = NONE
        else:
            where = [structure_cell(obj.structure_id, inverse), obj.operator.value, gy(obj.dose_gy)]
            dose_range = span(rng.dose_gy, gy)
        point = isinstance(obj, PointObjective)
        rows.append(
            [
                objective_id(i), obj.kind, *where,
                pct(obj.volume_pct) if isinstance(obj, PointObjective) else NONE,
                prio(obj.priority), _achieved(obj, context.dvhs),
                NONE if value is None else f"{value:.4g}", dose_range,
                span(rng.volume_pct, pct) if point else NONE, span(rng.priority, prio),
                _details(obj),
            ]
        )  # fmt: skip
    return table(header, rows)


# ----- DVHs ----------------------------------------------------------------------------
def _dvh_structures(context: PolicyContext) -> list[tuple[str, DvhCurve]]:
    """(canonical id, curve) in template order, for mapped structures with a DVH."""
    out = []
    for canonical in context.template.structure_ids:
        plan = context.structure_map.get(canonical)
        if plan is not None and plan in context.dvhs:
            out.append((canonical, context.dvhs[plan]))
    return out


def key_doses_gy(context: PolicyContext, canonical: str) -> list[float]:
    """The goal and criterion doses of a structure: ``V`` dose levels and Gy limits."""
    rx = context.prescription_gy
    specs: list[GoalSpec | CriterionSpec] = list(context.template.goals)
    if context.template.score is not None:
        specs += list(context.template.score.criteria)
    doses: list[float] = []
    for spec in specs:
        if spec.structure != canonical:
            continue
        metric = spec.metric
        if metric.kind is MetricKind.VOLUME_AT_DOSE:
            doses.append(metric.dose_level_gy(rx))
        elif metric.unit == "Gy":
            limit = spec.limit if isinstance(spec, GoalSpec) else spec.full
            doses.append(limit.resolve("Gy", rx))
    out: list[float] = []
    for d in sorted(doses):
        if not out or abs(d - out[-1]) >= 0.005:
            out.append(d)
    return out


def dvh_table(context: PolicyContext) -> str:
    """Doses at standard volumes, mean and maximum per structure (Gy)."""
    header = ["structure", *(f"D{v:g}_gy" for v in DVH_VOLUMES_PCT), "Dmean_gy", "Dmax_gy"]
    rows = [
        [
            quote_cell(canonical),
            *(gy(curve.dose_at_volume_pct(v)) for v in DVH_VOLUMES_PCT),
            gy(curve.mean_dose_gy),
            gy(curve.max_dose_gy),
        ]
        for canonical, curve in _dvh_structures(context)
    ]
    return table(header, rows)


def volumes_table(context: PolicyContext) -> str:
    """Volume (%) receiving at least each key dose of each structure."""
    rows = [
        [quote_cell(canonical), gy(dose), pct(curve.volume_pct_at_dose(dose))]
        for canonical, curve in _dvh_structures(context)
        for dose in key_doses_gy(context, canonical)
    ]
    return table(["structure", "dose_gy", "volume_pct"], rows)


# ----- memory --------------------------------------------------------------------------
_FIELD_FMT = {"dose_gy": gy, "volume_pct": pct, "priority": prio, "parameter_a": prio}


def _change_text(change: ObjectiveChange, inverse: Mapping[str, str]) -> str:
    if change.structure_id is None:
        what = "NTO"
    else:
        rest = change.key.removeprefix(change.structure_id + ":").split(":")
        if len(rest) == 3 and rest[0] == "point":
            rest[2] = f"{pct(float(rest[2]))} %"
        what = structure_cell(change.structure_id, inverse) + " " + " ".join(rest)
    if change.field in ("added", "removed"):
        return f"{what} {change.field}"
    fmt = _FIELD_FMT.get(change.field, prio)
    before = NONE if change.before is None else fmt(change.before)
    after = NONE if change.after is None else fmt(change.after)
    return f"{what} {change.field} {before} -> {after}"


def _failing(margin: float, unit: str) -> bool:
    return margin < -STATUS_TOLERANCE.get(unit, 0.0)


def memory_line(step: MemoryStep, inverse: Mapping[str, str], units: Mapping[str, str]) -> str:
    """``- iteration i: changes: ...; effects: ...`` (canonical ids, fixed formats).

    Effects are the score and the goals whose margin moved by at least 0.005; ``(now met)``
    and ``(now failing)`` mark goals that crossed their limit (within the evaluator's
    tolerance; ``units`` gives each goal's unit).
    """
    changes = "; ".join(_change_text(c, inverse) for c in step.changes) or "none"
    effects: list[str] = []
    if step.score_before is not None and step.score_after is not None:
        effects.append(f"score {fixed(step.score_before, 2)} -> {fixed(step.score_after, 2)}")
    for d in step.goal_deltas:
        if d.margin_before is None or d.margin_after is None or d.margin_delta is None:
            continue
        if abs(d.margin_delta) < 0.005:
            continue
        unit = units.get(d.goal_id, "")
        was, now = _failing(d.margin_before, unit), _failing(d.margin_after, unit)
        flip = " (now met)" if was and not now else " (now failing)" if now and not was else ""
        effects.append(
            f"{quote_cell(d.goal_id)} margin {fixed(d.margin_before, 2, True)} -> "
            f"{fixed(d.margin_after, 2, True)}{flip}"
        )
    return f"- iteration {step.iteration}: changes: {changes}; effects: " + (
        "; ".join(effects) or "nothing moved"
    )


def memory_lines(context: PolicyContext, length: int) -> str:
    """The last ``length`` remembered iterations, oldest first."""
    steps = context.memory.steps[-length:] if length > 0 else []
    if not steps:
        return "(no earlier iterations)"
    inverse = plan_to_canonical(context)
    units = {g.goal_id: g.unit for g in context.evaluation.goals}
    return "\n".join(memory_line(s, inverse, units) for s in steps)
