"""A simple, bounded search over a template's TPP ranges (used by ``bench.calibration``).

(1+1) local search with an adaptive step: each candidate moves one to three TPPs of the
current best objectives. A share of candidates (``SNAP_PROBABILITY``) makes a planner's
first move on a deficient upper limit: an organ's DVH objective goes onto the limit's
dose level and volume, or an upper objective onto a dose limit, with a higher priority (a
target hot spot also raises the coverage priorities). Most other moves are directed by a
deficient goal or criterion (one not met / not at full points): the objectives of its
structure move so as to lower (``<=``) or raise (``>=``) the dose there (dose goal,
volume, priority; the NTO for organs at risk). The rest are random Gaussian moves.

Every candidate is optimized (warm start), normalized and evaluated; it replaces the
current best when it is better (the score first, then the priority-1, -2 and -3 goals,
compared lexicographically). All moves stay inside the template's ranges; some moves give
up margin where a goal is met with room to spare. The search stops when the target is
reached (max score, or every priority-1 goal met for templates without a score) and every
priority-2 goal is met, or when the budget of optimizations is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from agent.evaluation import Evaluation, GoalStatus
from agent.templates import SiteTemplate
from agent.templates.metric import MetricKind, parse_metric
from esapi_bridge.dto import (
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    objective_key,
)

#: Weights of deficient goals by priority when choosing what to move (must, should, report).
PRIORITY_WEIGHT = {1: 100.0, 2: 10.0, 3: 1.0}
#: Share of candidates that put an upper objective onto a deficient limit (:func:`_snap`).
SNAP_PROBABILITY = 0.4
#: A score within this of the maximum counts as the maximum.
SCORE_TOLERANCE = 0.005
#: How an NTO parameter moves to lower the dose outside the target.
_NTO_TIGHTEN = {
    "priority": 1.0,
    "fall_off": 1.0,
    "end_dose_pct": -1.0,
    "start_dose_pct": -1.0,
    "distance_from_target_border_mm": -1.0,
}


@dataclass(frozen=True)
class Dim:
    """One movable TPP: ``field`` of objective ``index``, within ``[lo, hi]``."""

    index: int
    field: str
    lo: float
    hi: float
    structure: str | None  # plan structure id; None for the NTO


def tpp_dims(objectives: list[Objective], ranges: Mapping[str, object]) -> list[Dim]:
    """The movable TPPs of ``objectives`` (ranges keyed by ``objective_key``)."""
    dims: list[Dim] = []
    for i, obj in enumerate(objectives):
        r = ranges.get(objective_key(obj))
        if r is None:
            continue
        for name, bounds in r.model_dump().items():  # type: ignore[attr-defined]
            if bounds is not None and bounds[1] > bounds[0]:
                sid = None if isinstance(obj, NormalTissueObjective) else obj.structure_id
                dims.append(Dim(i, name, float(bounds[0]), float(bounds[1]), sid))
    return dims


def goal_shortfalls(ev: Evaluation) -> tuple[float, float, float]:
    """Minus the summed relative shortfalls of the priority-1, -2 and -3 goals (0 = all met)."""
    totals = {1: 0.0, 2: 0.0, 3: 0.0}
    for g in ev.goals:
        if g.margin < 0 and g.status is not GoalStatus.MET:
            totals[g.priority] -= (-g.margin) / max(abs(g.limit), 1e-6)
    return totals[1], totals[2], totals[3]


def fitness(ev: Evaluation) -> tuple[float, ...]:
    """Compared lexicographically: the score (if any), then the priority-1, -2, -3 goals.

    A candidate never trades a must (priority 1) for a should (priority 2).
    """
    goals = goal_shortfalls(ev)
    return (ev.score, *goals) if ev.score is not None else goals


def target_reached(ev: Evaluation) -> bool:
    """Max score for scored templates; every priority-1 goal met otherwise."""
    if ev.score is not None and ev.max_score is not None:
        return ev.score >= ev.max_score - SCORE_TOLERANCE
    return ev.all_priority1_met


def search_done(ev: Evaluation, stop_priority: int = 2) -> bool:
    """When the search stops early: the target reached and every goal of priority
    ``stop_priority`` or more important met (default: priority 2)."""
    return target_reached(ev) and not ev.failed_goals(max_priority=stop_priority)


def _deficits(ev: Evaluation) -> list[tuple[str, float, float]]:
    """(plan structure id, desired dose direction, weight) of every deficient item."""
    out: list[tuple[str, float, float]] = []
    for c in ev.criteria:
        if c.points < c.max_points - 1e-9:
            out.append((c.plan_structure_id, -1.0 if c.comparator == "<=" else 1.0, 100.0))
    for g in ev.goals:
        if g.status is not GoalStatus.MET:
            direction = -1.0 if g.comparator in ("<=", "<") else 1.0
            out.append((g.plan_structure_id, direction, PRIORITY_WEIGHT[g.priority]))
    return out


def _surpluses(ev: Evaluation) -> list[tuple[str, float, float]]:
    """(plan structure id, dose direction that gives up margin, weight) of over-met items."""
    out: list[tuple[str, float, float]] = []
    for g in ev.goals:
        if g.status is GoalStatus.MET and g.margin > 0.1 * max(abs(g.limit), 1e-6):
            direction = 1.0 if g.comparator in ("<=", "<") else -1.0
            out.append((g.plan_structure_id, direction, PRIORITY_WEIGHT[g.priority]))
    return out


def _sense(obj: Objective, name: str, desired: float) -> float:
    """Sign of the move of TPP ``name`` of ``obj`` that shifts its structure's dose by ``desired``."""
    if isinstance(obj, NormalTissueObjective):
        return -desired * _NTO_TIGHTEN.get(name, 0.0)  # desired -1: tighten
    if name in ("dose_gy", "volume_pct"):
        return desired
    if name == "priority":
        lower = getattr(obj, "operator", ObjectiveOperator.UPPER) is ObjectiveOperator.LOWER
        return desired if lower else -desired
    return 0.0  # parameter_a: no fixed sense


@dataclass
class SearchResult:
    """Outcome of :func:`search`: initial and best evaluations and objectives."""

    initial: Evaluation
    best: Evaluation
    best_objectives: list[Objective]
    evaluations: int
    accepted: int
    history: list[tuple[float, ...]] = field(default_factory=list)


def search(
    evaluate_objectives: Callable[[list[Objective]], Evaluation],
    template: SiteTemplate,
    structure_map: Mapping[str, str],
    budget: int,
    seed: int,
    stop_priority: int = 2,
) -> SearchResult:
    """Search the TPP ranges from the template's initial objectives.

    ``evaluate_objectives`` sets the objectives, optimizes, normalizes and evaluates; it is
    called once for the initial objectives and at most ``budget`` more times. The search stops
    early when :func:`search_done` (``stop_priority`` 3: the report-only goals too).
    """
    rng = np.random.default_rng(seed)
    current = template.initial_objectives(structure_map)
    ranges = template.tpp_ranges_for(structure_map)
    dims = tpp_dims(current, ranges)
    initial = best = evaluate_objectives(current)
    best_fit = fitness(best)
    history = [best_fit]
    sigma, accepted, used = 0.2, 0, 0
    targets = {s for s in structure_map.values() if template_is_target(template, structure_map, s)}
    invalid = 0
    while dims and used < budget and invalid < 100 and not search_done(best, stop_priority):
        snap = rng.random() < SNAP_PROBABILITY
        moves = _snap(rng, dims, current, best, targets) if snap else {}
        moves = moves or _propose(rng, dims, current, best, sigma, targets)
        candidate = _apply(current, dims, moves)
        if candidate is None:
            invalid += 1
            continue
        invalid = 0
        used += 1
        ev = evaluate_objectives(candidate)
        fit = fitness(ev)
        history.append(fit)
        if _better(fit, best_fit):
            current, best, best_fit = candidate, ev, fit
            accepted += 1
            sigma = min(0.5, sigma * 1.3)
        else:
            sigma = max(0.03, sigma * 0.85)
    return SearchResult(initial, best, current, used, accepted, history)


def _better(a: tuple[float, ...], b: tuple[float, ...], tol: float = 1e-9) -> bool:
    """Whether ``a`` beats ``b`` lexicographically (differences below ``tol`` are ties)."""
    for x, y in zip(a, b, strict=True):
        if x > y + tol:
            return True
        if x < y - tol:
            return False
    return False


def template_is_target(template: SiteTemplate, structure_map: Mapping[str, str], pid: str) -> bool:
    """Whether plan structure ``pid`` maps to a target of the template."""
    for canonical, plan_id in structure_map.items():
        if plan_id == pid:
            return template.structure(canonical).is_target
    return False


def _propose(
    rng: np.random.Generator,
    dims: list[Dim],
    current: list[Objective],
    best: Evaluation,
    sigma: float,
    targets: set[str],
) -> dict[int, float]:
    """Moves as {dim index: new value}."""
    n_moves = int(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2]))
    deficits = _deficits(best)
    moves: dict[int, float] = {}
    surpluses = _surpluses(best)
    u = rng.random()
    items = deficits if u < 0.6 else (surpluses if u < 0.8 else [])
    if items:
        weights = np.array([w for _, _, w in items])
        sid, desired, _ = items[int(rng.choice(len(items), p=weights / weights.sum()))]
        pool = [
            k
            for k, d in enumerate(dims)
            if d.structure == sid or (d.structure is None and sid not in targets and desired < 0)
        ]
        for k in rng.permutation(pool)[:n_moves]:
            d = dims[int(k)]
            sense = _sense(current[d.index], d.field, desired)
            step = abs(rng.normal(0.0, sigma)) * (d.hi - d.lo)
            if sense == 0.0:
                step *= float(rng.choice([-1.0, 1.0]))
            else:
                step *= sense
            moves[int(k)] = _value(current[d.index], d.field) + step
    if not moves:
        for k in rng.choice(len(dims), size=min(n_moves, len(dims)), replace=False):
            d = dims[int(k)]
            step = rng.normal(0.0, sigma) * (d.hi - d.lo)
            moves[int(k)] = _value(current[d.index], d.field) + step
    return {k: float(np.clip(v, dims[k].lo, dims[k].hi)) for k, v in moves.items()}


def _snap(
    rng: np.random.Generator,
    dims: list[Dim],
    current: list[Objective],
    best: Evaluation,
    targets: set[str],
) -> dict[int, float]:
    """Move an upper objective onto a deficient upper limit, as a planner does first.

    An organ's ``V<dose> <= <volume>`` limit: an upper DVH objective of the organ goes to the
    limit's dose level and a volume at or below the limit. A dose limit (``D<x>``, max,
    mean): an upper objective of the structure goes to or below that dose (a target's just
    below: it is the hot spot, and the target's coverage priorities rise with it). Either
    way the objective's priority rises. Empty when no deficient item has such an objective
    to move.
    """
    limits: list[tuple[str, str, float]] = []
    for c in best.criteria:
        if c.points < c.max_points - 1e-9 and c.comparator == "<=":
            limits.append((c.plan_structure_id, c.metric, c.full))
    for g in best.goals:
        if g.status is not GoalStatus.MET and g.comparator in ("<=", "<"):
            limits.append((g.plan_structure_id, g.metric, g.limit))
    candidates: list[dict[int, float]] = []
    for sid, metric_text, limit in limits:
        metric = parse_metric(metric_text)
        organ_v = sid not in targets and metric.kind is MetricKind.VOLUME_AT_DOSE
        dose_limit = metric.kind in (MetricKind.DOSE_AT_VOLUME, MetricKind.MAX, MetricKind.MEAN)
        if not (organ_v or dose_limit):
            continue
        # a target's dose limit is its hot spot: only just below it, or coverage suffers
        low = 0.97 if sid in targets else 0.8
        for fields in _fields(dims, current, sid, ObjectiveOperator.UPPER).values():
            if "dose_gy" not in fields or (organ_v and "volume_pct" not in fields):
                continue
            if organ_v:
                moves = {
                    fields["dose_gy"]: metric.dose_level_gy(best.prescription_gy)
                    * float(rng.uniform(0.95, 1.0)),
                    fields["volume_pct"]: limit * float(rng.uniform(0.3, 1.0)),
                }
            else:
                moves = {fields["dose_gy"]: limit * float(rng.uniform(low, 1.0))}
            priorities = [fields]
            if sid in targets:
                # after normalization a hot spot is an inhomogeneity: coverage objectives
                # pull the cold side up, so they gain priority too
                priorities += list(_fields(dims, current, sid, ObjectiveOperator.LOWER).values())
            for f in priorities:
                if "priority" in f:
                    k = f["priority"]
                    old = _value(current[dims[k].index], "priority")
                    moves[k] = max(old, 10.0) * float(rng.uniform(1.5, 3.0))
            candidates.append(moves)
    if not candidates:
        return {}
    moves = candidates[int(rng.integers(len(candidates)))]
    return {k: float(np.clip(v, dims[k].lo, dims[k].hi)) for k, v in moves.items()}


def _fields(
    dims: list[Dim], current: list[Objective], sid: str, operator: ObjectiveOperator
) -> dict[int, dict[str, int]]:
    """{objective index: {TPP name: dim index}} of the ``operator`` objectives on ``sid``."""
    out: dict[int, dict[str, int]] = {}
    for k, d in enumerate(dims):
        obj = current[d.index]
        if d.structure == sid and getattr(obj, "operator", None) is operator:
            out.setdefault(d.index, {})[d.field] = k
    return out


def _value(obj: Objective, name: str) -> float:
    return float(getattr(obj, name))


def _apply(
    current: list[Objective], dims: list[Dim], moves: dict[int, float]
) -> list[Objective] | None:
    """The objectives with the moves applied (validated), or None if a move is invalid."""
    updates: dict[int, dict[str, float]] = {}
    for k, value in moves.items():
        updates.setdefault(dims[k].index, {})[dims[k].field] = value
    out = list(current)
    for i, upd in updates.items():
        obj = current[i]
        data = obj.model_dump() | upd
        if isinstance(obj, NormalTissueObjective):
            data["end_dose_pct"] = min(data["end_dose_pct"], data["start_dose_pct"])
        try:
            out[i] = type(obj).model_validate(data)
        except ValueError:
            return None
    return out
