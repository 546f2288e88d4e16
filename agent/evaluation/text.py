"""Compact fixed-width text of an :class:`~agent.evaluation.evaluator.Evaluation`."""

from __future__ import annotations

from agent.evaluation.evaluator import Evaluation

_DECIMALS = {"Gy": 2, "%": 1, "cm3": 2, "": 3}
_STATUS = {"met": "met", "within_variation": "within var", "failed": "FAILED"}


def fmt(value: float, unit: str, signed: bool = False) -> str:
    """``value`` with the decimals suited to ``unit`` and the unit appended."""
    text = (
        f"{value:+.{_DECIMALS.get(unit, 3)}f}" if signed else f"{value:.{_DECIMALS.get(unit, 3)}f}"
    )
    return f"{text} {unit}" if unit else text


def evaluation_table(ev: Evaluation) -> str:
    """Header line, one line per goal, then one line per score criterion."""
    p1 = [g for g in ev.goals if g.priority == 1]
    p1_met = sum(g.status.value == "met" for g in p1)
    head = f"{ev.template}  Rx {ev.prescription_gy:.2f} Gy"
    if ev.score is not None and ev.max_score is not None:
        head += f"  score {ev.score:.2f}/{ev.max_score:g}"
    head += f"  P1 goals met {p1_met}/{len(p1)}"
    rows = [["goal", "P", "structure", "metric", "value", "goal", "margin", "status"]]
    for g in ev.goals:
        limit = f"{g.comparator} {fmt(g.limit, g.unit)}"
        if g.variation > 0:
            limit += f" (±{fmt(g.variation, g.unit)})"
        rows.append(
            [
                g.goal_id,
                str(g.priority),
                g.plan_structure_id,
                g.metric,
                fmt(g.value, g.unit),
                limit,
                fmt(g.margin, g.unit, signed=True),
                _STATUS[g.status.value],
            ]
        )
    lines = [head, *_columns(rows)]
    if ev.skipped_goals:
        lines.append(f"not evaluated (structure absent): {', '.join(ev.skipped_goals)}")
    if ev.criteria:
        crit = [["criterion", "structure", "metric", "value", "full", "zero", "points"]]
        for c in ev.criteria:
            crit.append(
                [
                    c.criterion_id,
                    c.plan_structure_id,
                    c.metric,
                    fmt(c.value, c.unit),
                    f"{c.comparator} {fmt(c.full, c.unit)}",
                    fmt(c.zero, c.unit),
                    f"{c.points:.2f}/{c.max_points:g}",
                ]
            )
        lines += ["", *_columns(crit)]
    return "\n".join(lines)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
