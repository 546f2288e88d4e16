"""How demands and objectives evolved over a session: met/failed flips, futility, pushes and
reversals (the rule policy's memory of its own moves)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from agent.evaluation import Evaluation, GoalStatus
from agent.policies.rule.demands import Demand
from agent.session.records import IterationRecord
from esapi_bridge.dto import Objective, ObjectiveOperator, objective_key


def demand_met(evaluation: Evaluation, demand: Demand) -> bool | None:
    """Whether ``demand`` was met in ``evaluation`` (``None`` if not evaluated there)."""
    kind, _, ident = demand.id.partition(":")
    if kind == "goal":
        for g in evaluation.goals:
            if g.goal_id == ident:
                return g.status is GoalStatus.MET
        return None
    for c in evaluation.criteria:
        if c.criterion_id == ident:
            return c.points >= c.max_points - 1e-9
    return None


def demand_margin(evaluation: Evaluation, demand: Demand) -> float | None:
    """The demand's signed margin in ``evaluation`` (metric unit; > 0 met)."""
    kind, _, ident = demand.id.partition(":")
    if kind == "goal":
        return next((g.margin for g in evaluation.goals if g.goal_id == ident), None)
    for c in evaluation.criteria:
        if c.criterion_id == ident:
            return (c.full - c.value) if c.comparator == "<=" else (c.value - c.full)
    return None


def is_futile(history: Sequence[Evaluation], demand: Demand, window: int = 4) -> bool:
    """A demand that failed in each of the last ``window`` plans while its best margin in
    the later ones beat the first by less than a tenth of its scale (no progress), or
    whose margin got worse twice in a row (pushing it is counterproductive)."""
    recent = [demand_margin(ev, demand) for ev in history[-3:]]
    if len(recent) == 3 and all(m is not None and m < 0 for m in recent):
        a, b, c = (float(m) for m in recent if m is not None)
        if c < b < a:  # pushing made it worse twice in a row
            return True
    if len(history) < window:
        return False
    margins = [demand_margin(ev, demand) for ev in history[-window:]]
    if any(m is None or m >= 0 for m in margins):
        return False
    first, later = margins[0], [m for m in margins[1:] if m is not None]
    assert first is not None
    return max(later) - first < 0.1 * demand.scale


def sign_flips(history: Sequence[Evaluation], demand: Demand) -> int:
    """How many times the demand switched between met and failed over ``history``."""
    states = [s for s in (demand_met(ev, demand) for ev in history) if s is not None]
    return sum(1 for a, b in itertools.pairwise(states) if a != b)


def _direction(before: Objective, after: Objective) -> int:
    """+1 if ``after`` is a tighter version of ``before``, -1 if looser, 0 if neither."""
    score = 0.0
    if after.priority != before.priority and before.priority > 0:
        score += 1.0 if after.priority > before.priority else -1.0
    old_dose, new_dose = getattr(before, "dose_gy", None), getattr(after, "dose_gy", None)
    if old_dose is not None and new_dose is not None and new_dose != old_dose:
        lower = getattr(after, "operator", None) is ObjectiveOperator.LOWER
        score += 1.0 if (new_dose > old_dose) == lower else -1.0
    return (score > 0) - (score < 0)


def pushed(history: Sequence[IterationRecord], keys: Sequence[str], window: int = 3) -> bool:
    """Whether one of the objectives ``keys`` changed in each of the last ``window``
    iterations (the demand they serve was being worked on, not waiting)."""
    records = list(history)[-(window + 1) :]
    if len(records) < window + 1 or not keys:
        return False
    for before, after in itertools.pairwise(records):
        old = {objective_key(o): o for o in before.applied_objectives}
        new = {objective_key(o): o for o in after.applied_objectives}
        if all(old.get(k) == new.get(k) for k in keys):
            return False
    return True


def reversals(history: Sequence[IterationRecord], key: str) -> int:
    """How many times objective ``key`` switched between being tightened and relaxed."""
    directions: list[int] = []
    previous: Objective | None = None
    for record in history:
        current = next((o for o in record.applied_objectives if objective_key(o) == key), None)
        if previous is not None and current is not None:
            d = _direction(previous, current)
            if d:
                directions.append(d)
        previous = current
    return sum(1 for a, b in itertools.pairwise(directions) if a != b)
