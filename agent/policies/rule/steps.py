"""The rule policy's step sizes and its elementary moves on one objective.

:class:`RuleSteps` tightens, relaxes and bounds single objectives; the policy
(:mod:`agent.policies.rule.policy`) and the sparing steps (:mod:`agent.policies.rule.sparing`)
decide which objectives to move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.evaluation import Evaluation
from agent.policies.base import PolicyContext
from agent.policies.rule.demands import PRIORITY, PUSH, Demand
from agent.policies.rule.history import sign_flips
from agent.templates import TppRange
from esapi_bridge.dto import (
    DvhCurve,
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
)


@dataclass(frozen=True)
class RuleSettings:
    """Step sizes of the rule policy.

    Attributes
    ----------
    dose_step_rx : first dose step of a tightened objective, as a fraction of Rx.
    priority_factor : first priority step: ``priority *= 1 + priority_factor``.
    min_scale : smallest step multiplier after repeated halvings.
    relax_slack : slack (goal scales) an OAR needs before it is relaxed for a target.
    relax_fraction : relaxing steps are this fraction of tightening steps.
    min_priority_step : smallest priority increase when tightening.
    max_sparing : most consecutive sparing steps once every goal is met (no score).
    max_dose_move_rx : largest dose move of one objective per iteration (fraction of Rx;
        the guardrails' default step bound).
    """

    dose_step_rx: float = 0.05
    priority_factor: float = 0.5
    min_scale: float = 0.125
    relax_slack: float = 1.5
    relax_fraction: float = 0.5
    min_priority_step: float = 5.0
    max_sparing: int = 4
    max_dose_move_rx: float = 0.15


class RuleSteps:
    """Elementary moves of one objective under :class:`RuleSettings`."""

    def __init__(self, settings: RuleSettings) -> None:
        self.settings = settings

    def scale(self, demand: Demand, history: Sequence[Evaluation]) -> float:
        """Halve the step if the demand's margin just changed sign (met <-> failed)."""
        recent = sign_flips(history[-2:], demand)
        return max(self.settings.min_scale, 0.5**recent)

    def tighten(
        self,
        context: PolicyContext,
        obj: Objective,
        rng: TppRange | None,
        scale: float,
        demand: Demand,
        role: str = PUSH,
    ) -> dict[str, float]:
        s = self.settings
        if rng is None:
            return {}
        change: dict[str, float] = {}
        boost = min(2.0, max(0.5, demand.deficit))
        if role == PRIORITY:
            if rng.priority is not None:
                new_p = obj.priority * (1 + 0.5 * s.priority_factor * scale) + s.min_priority_step
                change["priority"] = clamp(new_p, rng.priority)
            return effective(obj, change)
        step_gy = s.dose_step_rx * context.prescription_gy * scale * boost
        if isinstance(obj, NormalTissueObjective):
            # a steeper, lower fall-off outside the target (priority alone does nothing
            # while the NTO is already satisfied)
            if rng.priority is not None:
                new_p = obj.priority * (1 + s.priority_factor * scale) + s.min_priority_step
                change["priority"] = clamp(new_p, rng.priority)
            if rng.fall_off is not None:
                change["fall_off"] = clamp(obj.fall_off * (1 + scale), rng.fall_off)
            if rng.end_dose_pct is not None:
                end = min(obj.end_dose_pct - 10.0 * scale, obj.start_dose_pct)
                change["end_dose_pct"] = clamp(end, rng.end_dose_pct)
            return effective(obj, change)
        lower = obj.operator is ObjectiveOperator.LOWER
        if rng.dose_gy is not None:
            if lower:
                new_d = obj.dose_gy + step_gy * 0.5
            else:
                achieved = _achieved_dose(obj, context.dvhs.get(obj.structure_id))
                start = obj.dose_gy if achieved is None else min(obj.dose_gy, achieved)
                new_d = start - step_gy
            reach = s.max_dose_move_rx * context.prescription_gy  # stay within the guardrails
            new_d = min(max(new_d, obj.dose_gy - reach), obj.dose_gy + reach)
            change["dose_gy"] = clamp(new_d, rng.dose_gy)
        if rng.priority is not None:
            new_p = obj.priority * (1 + s.priority_factor * scale) + s.min_priority_step * scale
            change["priority"] = clamp(new_p, rng.priority)
        return effective(obj, change)

    def wanted_priority_factor(
        self, obj: Objective, rng: TppRange, scale: float, role: str
    ) -> float | None:
        """The priority factor tightening wanted but the range ceiling denied (None: no need)."""
        s = self.settings
        if rng.priority is None or obj.priority <= 0:
            return None
        if obj.priority < rng.priority[1] - 0.01:
            return None
        step = s.priority_factor * scale * (0.5 if role == PRIORITY else 1.0)
        return 1.0 + step

    def relax(
        self, context: PolicyContext, obj: Objective, rng: TppRange | None, scale: float
    ) -> dict[str, float]:
        s = self.settings
        if rng is None or isinstance(obj, NormalTissueObjective):
            return {}
        change: dict[str, float] = {}
        f = s.relax_fraction * scale
        if rng.dose_gy is not None:
            change["dose_gy"] = clamp(
                obj.dose_gy + s.dose_step_rx * context.prescription_gy * f, rng.dose_gy
            )
        if rng.priority is not None:
            change["priority"] = clamp(obj.priority / (1 + s.priority_factor * f), rng.priority)
        return effective(obj, change)

    def relaxable(
        self,
        context: PolicyContext,
        obj: Objective,
        demands: Sequence[Demand],
        yield_p2: bool = False,
    ) -> bool:
        """An OAR upper objective whose structure's demands all have ample slack or, while a
        priority-1 target goal fails (``yield_p2``), are all of lower priority."""
        if isinstance(obj, NormalTissueObjective) or obj.operator is not ObjectiveOperator.UPPER:
            return False
        mine = [d for d in demands if obj.structure_id in d.objective_structures]
        if not mine or any(d.on_target for d in mine):
            return False
        if yield_p2 and all(d.priority >= 2 or d.source != "goal" for d in mine):
            return True
        return all(d.deficit <= 0 and d.slack >= self.settings.relax_slack for d in mine)

    @staticmethod
    def default_range(context: PolicyContext, obj: Objective) -> TppRange:
        """Range of an objective the template does not define (one the policy added)."""
        rx = context.prescription_gy
        if isinstance(obj, NormalTissueObjective):
            return TppRange(priority=(0.0, 300.0))
        canonical = {p: c for c, p in context.structure_map.items()}.get(obj.structure_id)
        if canonical is not None and context.template.structure(canonical).is_target:
            level = context.template.prescription.level_gy(canonical, rx)
            return TppRange(dose_gy=(1.0 * level, 1.12 * level), priority=(0.0, 300.0))
        return TppRange(dose_gy=(0.05 * rx, 1.05 * rx), priority=(0.0, 300.0))


def clamp(value: float, bounds: tuple[float, float]) -> float:
    return float(min(max(value, bounds[0]), bounds[1]))


def effective(obj: Objective, change: dict[str, float]) -> dict[str, float]:
    """Drop changes smaller than display precision (0.01)."""
    out = {}
    for field, value in change.items():
        value = round(value, 2)
        if abs(value - float(getattr(obj, field))) >= 0.01:
            out[field] = value
    return out


def _achieved_dose(obj: Objective, dvh: DvhCurve | None) -> float | None:
    if dvh is None:
        return None
    if isinstance(obj, PointObjective):
        return dvh.dose_at_volume_pct(obj.volume_pct)
    if isinstance(obj, MeanDoseObjective):
        return dvh.mean_dose_gy
    if isinstance(obj, EudObjective):
        return None
    return None
