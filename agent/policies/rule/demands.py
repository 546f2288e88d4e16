"""Demands of the rule policy: what the evaluation asks for, and which objective answers it."""

from __future__ import annotations

from dataclasses import dataclass

from agent.evaluation import GoalStatus
from agent.policies.base import PolicyContext
from agent.templates import Metric, MetricKind, SiteTemplate
from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
    objective_key,
)

GOAL_WEIGHT = {1: 3.0, 2: 2.0, 3: 1.0}
CRITERION_WEIGHT = 2.0
_INDEX_KINDS = (MetricKind.CI_PADDICK, MetricKind.CI_RTOG, MetricKind.HI, MetricKind.GI)


@dataclass(frozen=True)
class Demand:
    """A goal or score criterion as a demand on the plan.

    ``deficit`` > 0: failing by that many scales; ``slack`` > 0: met with that much room.
    ``upper``: the value must go down. ``objective_structures``: plan ids whose objectives
    act on it (the structure and structures derived from it).
    """

    id: str
    source: str  # "goal" or "criterion"
    plan_structure_id: str
    canonical_id: str
    metric: Metric
    upper: bool
    deficit: float
    slack: float
    weight: float
    priority: int
    on_target: bool
    objective_structures: tuple[str, ...]
    value: float
    limit: float
    unit: str

    @property
    def urgency(self) -> float:
        """Weighted deficit: the most urgent demand drives an objective."""
        return self.weight * max(self.deficit, 0.0)

    @property
    def is_index(self) -> bool:
        """Whether the metric is CI / GI / HI."""
        return self.metric.kind in _INDEX_KINDS

    @property
    def kind(self) -> str:
        """The metric kind's value (``dose_at_volume``, ``mean``, ...)."""
        return self.metric.kind.value

    @property
    def dose_level_gy(self) -> float | None:
        """Dose the demand is about: the V level, or the limit of a dose metric."""
        if self.metric.kind is MetricKind.VOLUME_AT_DOSE:
            return self.v_level_gy
        if self.unit == "Gy":
            return self.limit
        return None

    @property
    def volume_pct(self) -> float | None:
        """Volume the demand is about (%): the D volume, or the limit of a V% metric."""
        m = self.metric
        if m.kind is MetricKind.DOSE_AT_VOLUME:
            return m.volume if m.volume_unit == "%" else 0.0
        if m.kind is MetricKind.VOLUME_AT_DOSE and self.unit == "%":
            return self.limit
        if m.kind is MetricKind.MAX:
            return 0.0
        return None

    v_level_gy: float | None = None  # dose level of a V metric
    scale: float = 1.0  # metric units per goal scale (deficit and slack are in scales)

    def describe(self) -> str:
        """``Rectum V94.7%Rx 18.20 > 15.00 (p1)``; a demand met: ``... 69.77 < 70.00 (p2, met)``.

        The comparison shown is that of the two numbers shown: it follows the value and the
        limit, not the direction of the demand, with as many decimals as it takes to tell
        them apart (at least 2; 3 for indices, which lie near 0 or 1).
        """
        tag = f"p{self.priority}" if self.source == "goal" else "score"
        if self.deficit <= 0:
            tag += ", met"
        value, op, limit = compare_text(self.value, self.limit, 3 if self.is_index else 2)
        return f"{self.canonical_id} {self.metric.text} {value} {op} {limit} ({tag})"


def compare_text(value: float, limit: float, digits: int = 2) -> tuple[str, str, str]:
    """``value`` and ``limit`` as text and the true comparison between them (``>``, ``<``
    or ``=``), with ``digits`` decimals or more, up to 6, until the two texts differ."""
    op = ">" if value > limit else "<" if value < limit else "="
    d = digits
    while f"{value:.{d}f}" == f"{limit:.{d}f}" and op != "=" and d < 6:
        d += 1
    a, b = f"{value:.{d}f}", f"{limit:.{d}f}"
    return a, (op if a != b else "="), b


def _unit_scale(unit: str, limit: float, rx_gy: float) -> float:
    if unit == "Gy":
        return 0.02 * rx_gy
    if unit == "%":
        return 2.0
    if unit == "cm3":
        return max(0.1, 0.1 * abs(limit))
    return max(0.02, 0.05 * abs(limit))


def _derived_from(template: SiteTemplate, canonical: str) -> list[str]:
    return [
        s.id for s in template.structures if s.derive is not None and s.derive.source == canonical
    ]


def _rings_of(template: SiteTemplate, canonical: str) -> list[str]:
    return [
        s.id
        for s in template.structures
        if s.derive is not None and s.derive.op == "ring" and s.derive.source == canonical
    ]


def _demand_structures(context: PolicyContext, canonical: str, plan_id: str) -> tuple[str, ...]:
    ids = [plan_id]
    for c in _derived_from(context.template, canonical):
        if c in context.structure_map and context.structure_map[c] not in ids:
            ids.append(context.structure_map[c])
    return tuple(ids)


def collect_demands(context: PolicyContext, max_priority: int = 2) -> list[Demand]:
    """Goals up to ``max_priority`` and score criteria of the current evaluation as demands."""
    t = context.template
    ev = context.evaluation
    rx = context.prescription_gy
    goals = {g.id: g for g in t.goals}
    criteria = {c.id: c for c in t.score.criteria} if t.score is not None else {}
    out: list[Demand] = []
    for g in ev.goals:
        spec = goals.get(g.goal_id)
        if spec is None or g.priority > max_priority:
            continue
        scale = g.variation if g.variation > 0 else _unit_scale(g.unit, g.limit, rx)
        failing = g.status is not GoalStatus.MET
        out.append(
            _make(
                context, g.goal_id, "goal", g.structure_id, g.plan_structure_id, spec.metric,
                upper=g.comparator in ("<=", "<"),
                deficit=max(-g.margin, 0.01 * scale) / scale if failing else 0.0,
                slack=g.margin / scale if not failing else 0.0, scale=scale,
                weight=GOAL_WEIGHT.get(g.priority, 1.0), priority=g.priority,
                value=g.value, limit=g.limit, unit=g.unit,
            )
        )  # fmt: skip
    for c in ev.criteria:
        cspec = criteria.get(c.criterion_id)
        if cspec is None:
            continue
        scale = abs(c.zero - c.full) or _unit_scale(c.unit, c.full, rx)
        upper = c.comparator == "<="
        room = (c.full - c.value) if upper else (c.value - c.full)
        short = c.points < c.max_points - 1e-9
        out.append(
            _make(
                context, c.criterion_id, "criterion", c.structure_id, c.plan_structure_id,
                cspec.metric, upper=upper,
                deficit=max(-room, 0.01 * scale) / scale if short else 0.0,
                slack=room / scale if not short else 0.0, scale=scale,
                weight=CRITERION_WEIGHT * c.max_points, priority=2,
                value=c.value, limit=c.full, unit=c.unit,
            )
        )  # fmt: skip
    return out


def _make(
    context: PolicyContext,
    demand_id: str,
    source: str,
    canonical: str,
    plan_id: str,
    metric: Metric,
    **kw: object,
) -> Demand:
    t = context.template
    on_target = t.structure(canonical).is_target
    level = None
    if metric.kind is MetricKind.VOLUME_AT_DOSE:
        level = metric.dose_level_gy(context.prescription_gy)
    return Demand(
        id=f"{source}:{demand_id}",
        source=source,
        plan_structure_id=plan_id,
        canonical_id=canonical,
        metric=metric,
        on_target=on_target,
        objective_structures=_demand_structures(context, canonical, plan_id),
        v_level_gy=level,
        **kw,  # type: ignore[arg-type]
    )


def _is_upper(obj: Objective) -> bool:
    if isinstance(obj, NormalTissueObjective):
        return False
    return obj.operator is ObjectiveOperator.UPPER


def _closeness(obj: Objective, demand: Demand, rx_gy: float) -> float:
    """Smaller = better fit of an upper objective to an OAR / hot-spot demand."""
    kind = demand.metric.kind
    if kind is MetricKind.MEAN:
        if isinstance(obj, MeanDoseObjective):
            return 0.0
        if isinstance(obj, EudObjective):
            return 0.5
        return 1.0 + (100.0 - getattr(obj, "volume_pct", 0.0)) / 100.0
    if isinstance(obj, MeanDoseObjective | EudObjective):
        return 1.5
    assert isinstance(obj, PointObjective)
    d = 0.0
    level = demand.dose_level_gy
    if level is not None:
        d += abs(obj.dose_gy - level) / rx_gy
    vol = demand.volume_pct
    if vol is not None:
        d += abs(obj.volume_pct - vol) / 100.0
    return d


#: How a responsible objective answers a demand: move its dose and priority, or only
#: raise its priority (a target's lower objectives for homogeneity demands).
PUSH = "push"
PRIORITY = "priority"


def is_normal_tissue(template: SiteTemplate, canonical: str) -> bool:
    """A structure made by subtracting targets from an organ (``Brain-PTV``) or the body."""
    spec = template.structure(canonical)
    if spec.dicom_type == "EXTERNAL":
        return True
    derive = spec.derive
    return bool(
        derive is not None
        and derive.op == "subtract"
        and any(
            template.structure(o).is_target for o in derive.others if o in template.structure_ids
        )
    )


def goal_point(demand: Demand) -> tuple[float, float] | None:
    """The DVH point (dose Gy, volume %) a ``D<x>%`` or ``V<x>[%]`` demand is about."""
    m = demand.metric
    if m.kind is MetricKind.DOSE_AT_VOLUME and m.volume_unit == "%" and m.volume is not None:
        return (demand.limit, m.volume) if demand.unit == "Gy" else None
    if m.kind is MetricKind.VOLUME_AT_DOSE and demand.unit == "%" and demand.v_level_gy:
        return (demand.v_level_gy, demand.limit)
    return None


def needs_goal_objective(context: PolicyContext, demand: Demand) -> bool:
    """A priority 1-2 upper DVH-point demand that no upper point objective is near.

    Targets: a hot-volume goal (``D10%``, volume >= 1 %) with no upper objective within
    5 % volume. Organs at risk: a ``V``/``D`` goal with no upper objective within 10 %
    volume and 0.1 Rx dose of the goal point: planners put one right at the constraint.
    """
    point = goal_point(demand)
    if not demand.upper or demand.priority > 2 or point is None:
        return False
    dose_gy, volume = point
    rx = context.prescription_gy
    uppers = [
        o
        for o in context.objectives
        if isinstance(o, PointObjective)
        and _is_upper(o)
        and o.structure_id in demand.objective_structures
    ]
    if demand.on_target:
        if demand.metric.kind is not MetricKind.DOSE_AT_VOLUME or volume < 1.0:
            return False
        return not any(abs(o.volume_pct - volume) <= 5.0 for o in uppers)
    return not any(
        abs(o.volume_pct - volume) <= 10.0 and abs(o.dose_gy - dose_gy) <= 0.1 * rx for o in uppers
    )


def responsible_objectives(context: PolicyContext, demand: Demand) -> dict[str, str]:
    """Keys of the objectives that act on ``demand`` and how (:data:`PUSH`, :data:`PRIORITY`)."""
    objs = list(context.objectives)
    rx = context.prescription_gy
    structures = set(demand.objective_structures)
    kind = demand.metric.kind
    nto = [objective_key(o) for o in objs if isinstance(o, NormalTissueObjective)]
    if kind in (MetricKind.CI_PADDICK, MetricKind.CI_RTOG, MetricKind.GI):
        rings = {
            context.structure_map[c]
            for c in _rings_of(context.template, demand.canonical_id)
            if c in context.structure_map
        }
        ring_keys = [
            objective_key(o)
            for o in objs
            if _is_upper(o) and getattr(o, "structure_id", None) in rings
        ]
        return dict.fromkeys([*nto, *ring_keys], PUSH)
    mine = [
        o for o in objs if not isinstance(o, NormalTissueObjective) and o.structure_id in structures
    ]
    lowers = [objective_key(o) for o in mine if not _is_upper(o)]
    if demand.on_target and not demand.upper:
        return dict.fromkeys(lowers, PUSH)
    if not demand.upper:
        return {}
    out: dict[str, str] = {}
    uppers = [o for o in mine if _is_upper(o)]
    if demand.on_target:
        # a hot spot or heterogeneity: pull the cold part up too (after normalization the
        # hot part comes down), and push the closest upper objective unless a new one is due
        out.update(dict.fromkeys(lowers, PRIORITY))
        if kind is MetricKind.HI:
            out.update(dict.fromkeys((objective_key(o) for o in uppers), PUSH))
            return out
    if needs_goal_objective(context, demand):
        return out  # a new objective at the goal point is due instead (see the rule policy)
    if uppers:
        best = min(uppers, key=lambda o: _closeness(o, demand, rx))
        out[objective_key(best)] = PUSH
    if not demand.on_target and is_normal_tissue(context.template, demand.canonical_id):
        out.update(dict.fromkeys(nto, PUSH))
    return out
