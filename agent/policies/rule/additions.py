"""New objectives the rule policy adds where no objective serves a failing demand.

An upper DVH objective at the goal point of a ``D``/``V`` goal that no objective is near
(planners put one right at the constraint), an objective for an organ-at-risk goal on a
structure without objectives, and the normal tissue objective for a failing conformity
goal when the plan has none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agent.policies.base import PolicyContext
from agent.policies.rule.demands import Demand, goal_point, needs_goal_objective
from agent.templates.metric import MetricKind
from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
)

#: Metrics of conformity and dose fall-off around the target (the NTO acts on them).
CONFORMITY_KINDS = (MetricKind.CI_PADDICK, MetricKind.CI_RTOG, MetricKind.GI)


def has_nto(objectives: Sequence[Objective], additions: Sequence[Objective]) -> bool:
    """Whether ``objectives`` or ``additions`` hold a normal tissue objective."""
    return any(isinstance(o, NormalTissueObjective) for o in (*objectives, *additions))


def new_conformity_nto(context: PolicyContext) -> NormalTissueObjective:
    """The normal tissue objective a planner switches on for conformity.

    Conformity settings (from 5 mm outside the target, 100 % of Rx falling to 60 % at
    0.1/mm) at half the highest target-objective priority, so that it shapes the fall-off
    without competing with coverage.
    """
    targets = {
        sid
        for canonical, sid in context.structure_map.items()
        if context.template.structure(canonical).is_target
    }
    target_priorities = [
        o.priority
        for o in context.objectives
        if not isinstance(o, NormalTissueObjective) and o.structure_id in targets
    ]
    priority = 0.5 * max(target_priorities) if target_priorities else 50.0
    return NormalTissueObjective(
        priority=round(priority, 1),
        distance_from_target_border_mm=5.0,
        start_dose_pct=100.0,
        end_dose_pct=60.0,
        fall_off=0.1,
    )


def nto_text(nto: NormalTissueObjective) -> str:
    """The NTO's parameters for a rationale."""
    return (
        f"(priority {nto.priority:g}, {nto.distance_from_target_border_mm:g} mm, "
        f"{nto.start_dose_pct:g} -> {nto.end_dose_pct:g} %, fall-off {nto.fall_off:g}/mm)"
    )


def new_goal_objective(context: PolicyContext, demand: Demand) -> Objective | None:
    """An upper objective for a priority 1-2 demand no objective serves well: at the goal
    point of a ``D``/``V`` goal (:func:`needs_goal_objective`, a little tighter than the
    goal), or for an OAR goal on a structure without objectives."""
    if not demand.upper or demand.priority > 2 or demand.is_index:
        return None
    rx = context.prescription_gy
    mine = [
        o.priority
        for o in context.objectives
        if isinstance(o, PointObjective | MeanDoseObjective | EudObjective)
        and o.operator is ObjectiveOperator.UPPER
        and o.structure_id in demand.objective_structures
    ]
    if needs_goal_objective(context, demand):
        point = goal_point(demand)
        assert point is not None
        dose_gy, volume = point
        if demand.on_target:
            level = context.template.prescription.level_gy(demand.canonical_id, rx)
            dose_gy = min(max(dose_gy - 0.01 * rx, level), 1.12 * level)
        else:
            dose_gy, volume = min(dose_gy - 0.02 * rx, 1.05 * rx), 0.8 * volume
        return PointObjective(
            structure_id=demand.plan_structure_id,
            operator=ObjectiveOperator.UPPER,
            dose_gy=round(max(dose_gy, 0.05 * rx), 2),
            volume_pct=round(min(100.0, max(0.0, volume)), 2),
            priority=max(mine) if mine else 100.0 if demand.on_target else 50.0,
        )
    if mine or demand.on_target:
        return None
    oar = [
        o.priority
        for o in context.objectives
        if not isinstance(o, NormalTissueObjective) and o.operator is ObjectiveOperator.UPPER
    ]
    priority = float(sorted(oar)[len(oar) // 2]) if oar else 50.0
    goal_dose = demand.dose_level_gy
    if goal_dose is None or not math.isfinite(goal_dose) or goal_dose <= 0:
        return None
    dose_gy = round(min(goal_dose * 0.95, 1.05 * rx), 2)
    if demand.kind == "mean":
        return MeanDoseObjective(
            structure_id=demand.plan_structure_id, dose_gy=dose_gy, priority=priority
        )
    volume = demand.volume_pct if demand.volume_pct is not None else 0.0
    return PointObjective(
        structure_id=demand.plan_structure_id,
        operator=ObjectiveOperator.UPPER,
        dose_gy=dose_gy,
        volume_pct=round(min(100.0, max(0.0, volume)), 2),
        priority=priority,
    )
