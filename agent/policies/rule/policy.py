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
   one on (:mod:`agent.policies.rule.additions`), and that demand pushes nothing else in
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

from agent.evaluation import Evaluation, GoalStatus
from agent.policies.base import PolicyContext
from agent.policies.rule.additions import (
    CONFORMITY_KINDS,
    has_nto,
    new_conformity_nto,
    new_goal_objective,
    nto_text,
)
from agent.policies.rule.demands import (
    Demand,
    collect_demands,
    needs_goal_objective,
    responsible_objectives,
)
from agent.policies.rule.history import is_futile, pushed, reversals
from agent.policies.rule.sparing import sparing_proposal
from agent.policies.rule.steps import RuleSettings, RuleSteps, clamp, effective
from agent.session.outcome import goals_not_met
from agent.session.records import Proposal
from esapi_bridge.dto import (
    Objective,
    objective_key,
)


class RulePolicy:
    """The deterministic expert-rule planner (see the module docstring)."""

    name = "rule"

    def __init__(self, settings: RuleSettings | None = None) -> None:
        self.settings = settings or RuleSettings()
        self.steps = RuleSteps(self.settings)

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
                spare = sparing_proposal(self.steps, self.name, context, ranges)
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
                spare = sparing_proposal(self.steps, self.name, context, ranges)
                if spare is not None:
                    return spare
            return Proposal(
                objectives=list(context.objectives),
                rationale=_done_text(ev),
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
            scale = self.steps.scale(demand, history)
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
            rng = ranges.get(key) or self.steps.default_range(context, current[key])
            change = self.steps.tighten(context, current[key], rng, scale, demand, role)
            if change:
                updates[key] = change
                notes.append(f"{demand.describe()}: tighten {key} {_fmt(current[key], change)}")
            wanted = self.steps.wanted_priority_factor(current[key], rng, scale, role)
            if wanted is not None:
                saturated[key] = wanted
        if saturated:
            # the driven objectives are at their priority ceiling: lower the others instead
            # (the optimizer only sees priority ratios)
            factor = max(saturated.values())
            for key, obj in current.items():
                if key in driven or key in blocked:
                    continue
                rng = ranges.get(key) or self.steps.default_range(context, obj)
                if rng.priority is None:
                    continue
                low = effective(obj, {"priority": clamp(obj.priority / factor, rng.priority)})
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
            scale = self.steps.scale(driver, history)
            for key, obj in current.items():
                if key in driven or key in updates or key in blocked:
                    continue
                if not self.steps.relaxable(context, obj, demands, yield_p2=bool(p1_failing)):
                    continue
                rng = ranges.get(key) or self.steps.default_range(context, obj)
                step = max(self.settings.min_scale, scale * 0.5 ** reversals(context.history, key))
                change = self.steps.relax(context, obj, rng, step)
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


def _fmt(obj: Objective, change: dict[str, float]) -> str:
    parts = [f"{f} {float(getattr(obj, f)):g}->{v:g}" for f, v in change.items()]
    return "(" + ", ".join(parts) + ")"


def _met_text(ev: Evaluation) -> str:
    met = sum(1 for g in ev.goals if g.status is GoalStatus.MET)
    score = "" if ev.score is None else f", score {ev.score:.2f}/{ev.max_score:g}"
    return f"{met}/{len(ev.goals)} goals met{score}"


def _done_text(ev: Evaluation) -> str:
    """Why the policy is done with no demand open: "every goal is met" only when it is
    (priority-3 goals are no demands; those not met are named)."""
    rest = (
        "every score criterion is at full points"
        if ev.score is not None
        else "further sparing of the organs at risk did not help"
    )
    missing = goals_not_met(ev)
    if not missing:
        return f"every goal is met and {rest}"
    return (
        f"every priority-1 and priority-2 goal is met and {rest}; not pursued by the rule "
        "policy (priority 3), not met: " + "; ".join(missing)
    )


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
