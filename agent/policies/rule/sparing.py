"""Sparing (ALARA) steps of the rule policy, once no open goal can be improved (every goal
met, or the failing ones no longer respond) on a template without score.

Each step tightens the objectives of one organ-at-risk goal, or the normal tissue objective
of a conformity / gradient goal (priority 1-3), by one step (then, if that did not help,
by half a step), starting from
the objectives of the best plan so far. Candidates are failing priority-3 goals (most
urgent first), then met goals in order of increasing slack (the most constrained first); a step that did not make the plan better (see
:func:`agent.session.stopping.better`) moves on to the next candidate. At most ``max_sparing``
steps in a row.
"""

from __future__ import annotations

from dataclasses import replace

from agent.policies.base import PolicyContext
from agent.policies.rule.demands import PUSH, collect_demands, responsible_objectives
from agent.policies.rule.steps import RuleSteps
from agent.session.records import IterationRecord, Proposal
from agent.session.stopping import MARGIN_CAP, better
from agent.templates import TppRange
from esapi_bridge.dto import objective_key

#: Rationale prefix of sparing steps.
ALARA_PREFIX = "ALARA: "


def _best(records: list[IterationRecord]) -> int:
    best = 0
    for i, rec in enumerate(records):
        prev = records[best].evaluation
        assert rec.evaluation is not None and prev is not None
        if better(rec.evaluation, prev, 0.0):
            best = i
    return best


def sparing_proposal(
    steps: RuleSteps, policy_name: str, context: PolicyContext, ranges: dict[str, TppRange]
) -> Proposal | None:
    """The next sparing step, or ``None`` when sparing is over (see the module docstring)."""
    records = [r for r in context.history if r.evaluation is not None]
    if not records:
        return None
    trailing = 0
    for r in reversed(records):
        if not r.proposal.rationale.startswith(ALARA_PREFIX):
            break
        trailing += 1
    if trailing >= steps.settings.max_sparing:
        return None
    base_index = _best(records)
    base = records[base_index]
    failures = min(trailing, len(records) - 1 - base_index)
    assert base.evaluation is not None
    if not base.evaluation.all_priority1_met:
        return None
    base_context = replace(
        context, evaluation=base.evaluation, objectives=list(base.applied_objectives)
    )
    candidates = []
    demands = collect_demands(base_context, max_priority=3)
    # failing priority-3 goals first (most urgent first), then met goals, least slack first
    ordered = sorted(demands, key=lambda d: (d.deficit <= 0, -d.urgency, d.slack))
    for d in ordered:
        spareable = (not d.on_target and d.upper) or d.is_index
        if not spareable or d.slack >= MARGIN_CAP or (d.deficit > 0 and d.priority < 3):
            continue
        keys = [k for k, role in responsible_objectives(base_context, d).items() if role == PUSH]
        if keys:
            candidates.append((d, keys))
    current = {objective_key(o): o for o in base_context.objectives}
    # each candidate gets a full step, then (if that did not help) a half step
    attempts = [(c, scale) for c in candidates for scale in (1.0, 0.5)]
    for (demand, keys), scale in attempts[failures:]:
        updates: dict[str, dict[str, float]] = {}
        for key in keys:
            rng = ranges.get(key) or steps.default_range(base_context, current[key])
            change = steps.tighten(base_context, current[key], rng, scale, demand, PUSH)
            if change:
                updates[key] = change
        if not updates:
            continue
        notes = "; ".join(f"{k} {_fmt_change(current[k], c)}" for k, c in updates.items())
        origin = "" if base_index == len(records) - 1 else f" (from iteration {base.iteration})"
        return Proposal(
            objectives=[
                o.model_copy(update=updates[k]) if k in updates else o for k, o in current.items()
            ],
            rationale=f"{ALARA_PREFIX}no open goal left to improve; spare "
            f"{demand.describe()}{origin}: " + notes,
            policy=policy_name,
        )
    return None


def _fmt_change(obj: object, change: dict[str, float]) -> str:
    parts = [f"{f} {float(getattr(obj, f)):g}->{v:g}" for f, v in change.items()]
    return "(" + ", ".join(parts) + ")"
