"""Expert-rule policy: deterministic moves of dose goals and priorities, as planners make them.

Each iteration:

1. *Demands* are read from the evaluation: every clinical goal (priority 1-2) not met
   and every score criterion short of full points, with its deficit in goal scales
   (the goal's acceptable variation, or a unit default), and the slack of those met.
2. Each demand is traced to the *responsible objective*: for an OAR, the upper
   objective of that structure (or of a structure derived from it) closest to the
   metric's dose level or volume; for a target hot spot or homogeneity, the target's
   upper objectives; for coverage, its lower objectives; for conformity and gradient,
   the normal tissue objective and ring structures.
3. Responsible objectives are *tightened*: an inactive upper objective is first
   brought down to the current DVH, then pushed ``step`` below it, and its priority
   raised. OAR objectives whose goals are all met with room to spare are *relaxed*
   (half steps) when a target demand fails, since they compete with it.
   A failing conformity goal on a plan without a normal tissue objective first switches
   one on (:mod:`agent.policies.rule_additions`), and that demand pushes nothing else in
   that iteration; a ``D``/``V`` goal no objective is near gets one at its goal point.
4. Steps start big; they halve when the driving demand's margin has just changed sign,
   and each time the objective's own direction of change reversed in the session
   (tighten <-> relax: bisection on the trade-off), down to ``min_scale``.
5. Everything is clamped to the template's TPP ranges; a parameter without a range is
   not moved. A driven objective at its priority ceiling lowers the others instead.
6. A failing demand whose margin did not improve over the last four plans is left alone.
   When no open goal is left to improve and the template has no score, organs at risk
   are spared further (ALARA) while that makes the plan better (margin sum).
   ``done`` when nothing is failing and nothing more helps, or nothing can move.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.evaluation import Evaluation, GoalStatus
from agent.policies.base import PolicyContext
from agent.policies.rule_additions import (
    CONFORMITY_KINDS,
    has_nto,
    new_conformity_nto,
    new_goal_objective,
    nto_text,
)
from agent.policies.rule_demands import (
    PRIORITY,
    PUSH,
    Demand,
    collect_demands,
    is_futile,
    needs_goal_objective,
    pushed,
    responsible_objectives,
    reversals,
    sign_flips,
)
from agent.policies.rule_sparing import sparing_proposal
from agent.records import Proposal
from agent.templates import TppRange
from esapi_bridge.dto import (
    DvhCurve,
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
    objective_key,
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


class RulePolicy:
    """The deterministic expert-rule planner (see the module docstring)."""

    name = "rule"

    def __init__(self, settings: RuleSettings | None = None) -> None:
        self.settings = settings or RuleSettings()

    def propose(self, context: PolicyContext) -> Proposal:
        """Tighten what fails, relax what has room, within the TPP ranges."""
        ev = context.evaluation
        demands = collect_demands(context)
        ranges = context.template.tpp_ranges_for(context.structure_map, context.prescription_gy)
        history = [r.evaluation for r in context.history if r.evaluation is not None]
        # a demand pushed for several plans without progress is left alone
        futile = [
            d
            for d in demands
            if d.deficit > 0
            and is_futile(history, d)
            and pushed(context.history, list(responsible_objectives(context, d)))
        ]
        failing = [d for d in demands if d.deficit > 0 and d not in futile]
        if not failing and futile:
            spare = None
            if ev.all_priority1_met and ev.score is None:
                spare = sparing_proposal(self, context, ranges)
            if spare is not None:
                return spare
            return Proposal(
                objectives=list(context.objectives),
                rationale="no progress on: "
                + "; ".join(d.describe() for d in futile)
                + ", and nothing else to improve",
                done=True,
                policy=self.name,
            )
        if not failing:
            if ev.score is None:
                spare = sparing_proposal(self, context, ranges)
                if spare is not None:
                    return spare
            return Proposal(
                objectives=list(context.objectives),
                rationale="every goal is met and every score criterion is at full points"
                if ev.score is not None
                else "every goal is met; further sparing of the organs at risk did not help",
                done=True,
                policy=self.name,
            )
        blocked = _rejected_keys(context)
        current = {objective_key(o): o for o in context.objectives}
        updates: dict[str, dict[str, float]] = {}
        notes: list[str] = []
        additions: list[Objective] = []

        driven: dict[str, tuple[Demand, float, str]] = {}
        saturated: dict[str, float] = {}
        # priority-1 goals first: while one fails, lower-priority demands wait (and yield)
        p1_failing = [d for d in failing if d.source == "goal" and d.priority == 1]
        active = p1_failing or failing
        for demand in sorted(active, key=lambda d: -d.urgency):
            scale = self._scale(demand, history)
            roles = responsible_objectives(context, demand)
            if (
                demand.is_index
                and demand.metric.kind in CONFORMITY_KINDS
                and not has_nto(context.objectives, additions)
            ):
                # a conformity goal fails and nothing shapes the fall-off around the target:
                # planners switch the normal tissue objective on
                nto = new_conformity_nto(context)
                additions.append(nto)
                notes.append(f"{demand.describe()}: add {objective_key(nto)} {nto_text(nto)}")
                continue  # one change at a time: see what the NTO does before pushing rings
            if needs_goal_objective(context, demand) or not roles:
                new = new_goal_objective(context, demand)
                known = set(current) | {objective_key(a) for a in additions}
                if new is not None and objective_key(new) not in known:
                    additions.append(new)
                    notes.append(f"{demand.describe()}: add {objective_key(new)}")
            for key, role in roles.items():
                if key not in driven or driven[key][0].urgency < demand.urgency:
                    step = scale * 0.5 ** reversals(context.history, key)
                    driven[key] = (demand, max(self.settings.min_scale, step), role)
        for key, (demand, scale, role) in driven.items():
            if key in blocked:
                continue
            rng = ranges.get(key) or self._default_range(context, current[key])
            change = self._tighten(context, current[key], rng, scale, demand, role)
            if change:
                updates[key] = change
                notes.append(f"{demand.describe()}: tighten {key} {_fmt(current[key], change)}")
            wanted = self._wanted_priority_factor(current[key], rng, scale, role)
            if wanted is not None:
                saturated[key] = wanted
        if saturated:
            # the driven objectives are at their priority ceiling: lower the others instead
            # (the optimizer only sees priority ratios)
            factor = max(saturated.values())
            for key, obj in current.items():
                if key in driven or key in blocked:
                    continue
                rng = ranges.get(key) or self._default_range(context, obj)
                if rng.priority is None:
                    continue
                low = _effective(obj, {"priority": _clamp(obj.priority / factor, rng.priority)})
                if low:
                    updates.setdefault(key, {}).update(low)
                    notes.append(
                        f"{', '.join(sorted(saturated))} at the priority ceiling: "
                        f"lower {key} {_fmt(obj, low)}"
                    )
        # coverage / hot spot / homogeneity compete with the OARs; conformity does not
        target_failing = [d for d in active if d.on_target and not d.is_index]
        if target_failing:
            driver = max(target_failing, key=lambda d: d.urgency)
            scale = self._scale(driver, history)
            for key, obj in current.items():
                if key in driven or key in updates or key in blocked:
                    continue
                if not self._relaxable(context, obj, demands, yield_p2=bool(p1_failing)):
                    continue
                rng = ranges.get(key) or self._default_range(context, obj)
                step = max(self.settings.min_scale, scale * 0.5 ** reversals(context.history, key))
                change = self._relax(context, obj, rng, step)
                if change:
                    updates[key] = change
                    notes.append(f"{driver.describe()}: relax {key} {_fmt(obj, change)}")
        objectives: list[Objective] = [
            o.model_copy(update=updates[k]) if k in updates else o for k, o in current.items()
        ]
        objectives += additions
        if not updates and not additions:
            return Proposal(
                objectives=list(context.objectives),
                rationale="failing: "
                + "; ".join(d.describe() for d in failing)
                + ". No objective can move further within the template's TPP ranges.",
                done=True,
                policy=self.name,
            )
        summary = f"{len(failing)} demand(s) open, {_met_text(ev)}"
        return Proposal(
            objectives=objectives,
            rationale=summary + ". " + "; ".join(notes),
            done=False,
            policy=self.name,
        )

    # ----------------------------------------------------------------- steps
    def _scale(self, demand: Demand, history: Sequence[Evaluation]) -> float:
        """Halve the step if the demand's margin just changed sign (met <-> failed)."""
        recent = sign_flips(history[-2:], demand)
        return max(self.settings.min_scale, 0.5**recent)

    def _tighten(
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
                change["priority"] = _clamp(new_p, rng.priority)
            return _effective(obj, change)
        step_gy = s.dose_step_rx * context.prescription_gy * scale * boost
        if isinstance(obj, NormalTissueObjective):
            # a steeper, lower fall-off outside the target (priority alone does nothing
            # while the NTO is already satisfied)
            if rng.priority is not None:
                new_p = obj.priority * (1 + s.priority_factor * scale) + s.min_priority_step
                change["priority"] = _clamp(new_p, rng.priority)
            if rng.fall_off is not None:
                change["fall_off"] = _clamp(obj.fall_off * (1 + scale), rng.fall_off)
            if rng.end_dose_pct is not None:
                end = min(obj.end_dose_pct - 10.0 * scale, obj.start_dose_pct)
                change["end_dose_pct"] = _clamp(end, rng.end_dose_pct)
            return _effective(obj, change)
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
            change["dose_gy"] = _clamp(new_d, rng.dose_gy)
        if rng.priority is not None:
            new_p = obj.priority * (1 + s.priority_factor * scale) + s.min_priority_step * scale
            change["priority"] = _clamp(new_p, rng.priority)
        return _effective(obj, change)

    def _wanted_priority_factor(
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

    def _relax(
        self, context: PolicyContext, obj: Objective, rng: TppRange | None, scale: float
    ) -> dict[str, float]:
        s = self.settings
        if rng is None or isinstance(obj, NormalTissueObjective):
            return {}
        change: dict[str, float] = {}
        f = s.relax_fraction * scale
        if rng.dose_gy is not None:
            change["dose_gy"] = _clamp(
                obj.dose_gy + s.dose_step_rx * context.prescription_gy * f, rng.dose_gy
            )
        if rng.priority is not None:
            change["priority"] = _clamp(obj.priority / (1 + s.priority_factor * f), rng.priority)
        return _effective(obj, change)

    def _relaxable(
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
    def _default_range(context: PolicyContext, obj: Objective) -> TppRange:
        """Range of an objective the template does not define (one the policy added)."""
        rx = context.prescription_gy
        if isinstance(obj, NormalTissueObjective):
            return TppRange(priority=(0.0, 300.0))
        canonical = {p: c for c, p in context.structure_map.items()}.get(obj.structure_id)
        if canonical is not None and context.template.structure(canonical).is_target:
            level = context.template.prescription.level_gy(canonical, rx)
            return TppRange(dose_gy=(1.0 * level, 1.12 * level), priority=(0.0, 300.0))
        return TppRange(dose_gy=(0.05 * rx, 1.05 * rx), priority=(0.0, 300.0))


# --------------------------------------------------------------------- helpers


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return float(min(max(value, bounds[0]), bounds[1]))


def _effective(obj: Objective, change: dict[str, float]) -> dict[str, float]:
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


def _fmt(obj: Objective, change: dict[str, float]) -> str:
    parts = [f"{f} {float(getattr(obj, f)):g}->{v:g}" for f, v in change.items()]
    return "(" + ", ".join(parts) + ")"


def _met_text(ev: Evaluation) -> str:
    met = sum(1 for g in ev.goals if g.status is GoalStatus.MET)
    score = "" if ev.score is None else f", score {ev.score:.2f}/{ev.max_score:g}"
    return f"{met}/{len(ev.goals)} goals met{score}"


_KEY_RE = re.compile(r"^(?P<key>[^ ]+?):? ")


def _rejected_keys(context: PolicyContext) -> set[str]:
    """Objective keys named by the guardrails' reasons: leave those untouched on a re-ask."""
    if context.rejection is None:
        return set()
    keys = {objective_key(o) for o in context.objectives}
    out: set[str] = set()
    for reason in context.rejection.reasons:
        for key in keys:
            if reason.startswith(key + ":"):
                out.add(key)
    return out
