"""The knowledge-guided rule policy (``--policy knowledge``): start values and bounds from a card.

1. **Start.** The first proposal sets the card's TPPs to the card's medians (doses at the
   plan's prescription, clipped to the template's TPP ranges). A move larger than the
   guardrails' per-iteration step (:class:`agent.session.guardrails.GuardLimits`) is made as
   far as the step allows, never beyond, so the guardrails never clip it; the next proposal
   then continues toward the medians, as long as the plan still fails something and a TPP is
   short of its median.
2. **Rule moves within the card's bounds.** After that the unchanged rule policy
   (:class:`agent.policies.rule.RulePolicy`) proposes; each TPP it moves is kept within the
   card's bounds (``range``: lowest-highest final value, ``iqr``: interquartile range,
   ``none``: the template's ranges only). A TPP already outside those bounds may move back
   toward them but not further away. When the bounds would stop every move of a proposal,
   the rule's own proposal (within the template's ranges) goes through: the card is a
   prior, not a wall.

The card is the installed one of the plan's site unless one is given; it is loaded at the
first proposal and refused (:class:`~agent.policies.base.PolicyError`) when it belongs to
another site, another clinical template or another engine version.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agent.policies.base import PolicyContext, PolicyError
from agent.policies.drl.tpps import Tpp, read_values, tpps_of, write_values
from agent.policies.knowledge.card import (
    KnowledgeCard,
    KnowledgeCardError,
    TppStats,
    check_card,
    load_installed_card,
    read_card,
)
from agent.policies.rule import RulePolicy, RuleSettings
from agent.session.guardrails import GuardLimits
from agent.session.records import Proposal

#: First words of a start proposal's rationale (how the next proposal knows the phase).
START_TAG = "knowledge start:"
#: Margin kept below the guardrails' step bounds (values are rounded to 4 decimals).
_STEP_MARGIN = 1e-3
Bounds = Literal["range", "iqr", "none"]


@dataclass(frozen=True)
class KnowledgeSettings:
    """What the journal records of the policy.

    Attributes
    ----------
    card : ``installed`` (the site's installed card) or the given card's label and sha256.
    bounds : which bounds of the card the rule's moves are kept in.
    engine_version : the engine the card is checked against (``None``: not checked).
    rule : the rule policy's settings.
    """

    card: str
    bounds: Bounds
    engine_version: str | None
    rule: RuleSettings


def card_digest(card: KnowledgeCard) -> str:
    """16 hex digits of the sha256 of the card's JSON."""
    return hashlib.sha256(card.model_dump_json().encode("utf-8")).hexdigest()[:16]


class KnowledgePolicy:
    """The rule policy started from, and bounded by, a knowledge card (module docstring).

    Parameters
    ----------
    card
        A card, or the path of a card file; ``None``: the installed card of the plan's site.
    engine_version
        The TPS's dose-engine version the card must match (the composition root passes it;
        ``None`` leaves the engine unchecked).
    bounds
        ``range``, ``iqr`` or ``none`` (module docstring).
    rule_settings, limits
        The rule policy's settings and the session's guard limits (default ones).
    """

    name = "knowledge"

    def __init__(
        self,
        card: KnowledgeCard | str | Path | None = None,
        *,
        engine_version: str | None = None,
        bounds: Bounds = "range",
        rule_settings: RuleSettings | None = None,
        limits: GuardLimits | None = None,
    ) -> None:
        if bounds not in ("range", "iqr", "none"):
            raise PolicyError(f"unknown knowledge bounds {bounds!r}: use range, iqr or none")
        try:
            self._given = read_card(card) if isinstance(card, str | Path) else card
        except KnowledgeCardError as exc:
            raise PolicyError(str(exc)) from exc
        self.rule = RulePolicy(rule_settings)
        self.limits = limits or GuardLimits()
        label = "installed" if self._given is None else self._given.label
        digest = "" if self._given is None else f" sha256 {card_digest(self._given)}"
        self.settings = KnowledgeSettings(
            card=label + digest,
            bounds=bounds,
            engine_version=engine_version,
            rule=self.rule.settings,
        )
        self._card: KnowledgeCard | None = None
        self._card_template: str | None = None

    def card_for(self, context: PolicyContext) -> KnowledgeCard:
        """The checked card for the context's template (loaded once per template)."""
        template = context.template
        if self._card is None or self._card_template != template.name:
            engine = self.settings.engine_version
            try:
                if self._given is None:
                    self._card = load_installed_card(template, engine)
                else:
                    check_card(self._given, template, engine)
                    self._card = self._given
            except KnowledgeCardError as exc:
                raise PolicyError(str(exc)) from exc
            self._card_template = template.name
        return self._card

    def propose(self, context: PolicyContext) -> Proposal:
        """The start toward the card's medians, then the rule's moves within its bounds."""
        card = self.card_for(context)
        try:
            tpps = tpps_of(
                context.template,
                context.prescription_gy,
                self.limits,
                selection=[t.name for t in card.tpps],
            )
        except ValueError as exc:
            raise PolicyError(f"knowledge card {card.label}: {exc}") from exc
        if self._starting(context):
            start = self._start(context, card, tpps)
            if start is not None:
                return start
        proposal = self.rule.propose(context)
        if self.settings.bounds != "none" and not proposal.done:
            proposal = self._bounded(context, card, tpps, proposal)
        return proposal.model_copy(update={"policy": self.name})

    # ----- start --------------------------------------------------------------------------
    @staticmethod
    def _starting(context: PolicyContext) -> bool:
        if context.attempt > 0:
            return False  # a re-ask after a rejection: let the rule policy answer
        if context.iteration == 1:
            return True
        last = context.history[-1] if context.history else None
        return last is not None and last.proposal.rationale.startswith(START_TAG)

    def _step(self, tpp: Tpp, old: float, rx: float) -> float:
        lim = self.limits
        if tpp.parameter == "dose_gy":
            return lim.max_dose_step_rx * rx - _STEP_MARGIN
        if tpp.parameter == "volume_pct":
            return lim.max_volume_step_pct - _STEP_MARGIN
        if tpp.parameter == "priority":
            return max(lim.max_priority_step_abs, lim.max_priority_step_factor * old) - _STEP_MARGIN
        return math.inf

    def _start(
        self, context: PolicyContext, card: KnowledgeCard, tpps: list[Tpp]
    ) -> Proposal | None:
        """Toward the medians within the step bounds; ``None`` when already there."""
        rx = context.prescription_gy
        current = read_values(tpps, context.objectives, context.structure_map)
        values: dict[str, float] = {}
        held: list[str] = []
        for t in tpps:
            stats = card.stats(t.name)
            target = t.clip(stats.to_tpp_units(stats.median, rx))
            old = current[t.name]
            step = self._step(t, old, rx)
            new = min(max(target, old - step), old + step)
            if abs(new - old) > 1e-6:
                values[t.name] = new
            if abs(new - target) > 1e-6:
                held.append(f"{t.name} {old:g} -> {new:g} (median {target:g})")
        if not values:
            return None
        if context.iteration > 1 and not _open(context):
            return None  # the plan meets its goals: no need to go on toward the medians
        objectives = write_values(tpps, context.objectives, values, context.structure_map)
        moved = ", ".join(f"{n} {current[n]:g} -> {v:g}" for n, v in values.items())
        text = f"{START_TAG} the TPPs toward the medians of the card {card.label}: {moved}"
        if held:
            text += "; held back by the guardrails' step bounds (continued next): " + "; ".join(
                held
            )
        return Proposal(objectives=objectives, rationale=text, done=False, policy=self.name)

    # ----- bounds -------------------------------------------------------------------------
    def _limits_of(self, stats: TppStats, rx: float) -> tuple[float, float]:
        lo, hi = (stats.q1, stats.q3) if self.settings.bounds == "iqr" else (stats.low, stats.high)
        return stats.to_tpp_units(lo, rx), stats.to_tpp_units(hi, rx)

    def _bounded(
        self, context: PolicyContext, card: KnowledgeCard, tpps: list[Tpp], proposal: Proposal
    ) -> Proposal:
        """The rule's proposal with each moved TPP kept within the card's bounds."""
        rx = context.prescription_gy
        before = read_values(tpps, context.objectives, context.structure_map)
        try:
            after = read_values(tpps, proposal.objectives, context.structure_map)
        except ValueError:
            return proposal  # the rule changed the objectives' layout: leave it as it is
        values: dict[str, float] = {}
        notes: list[str] = []
        moved = 0
        for t in tpps:
            old, new = before[t.name], after[t.name]
            if abs(new - old) < 1e-9:
                continue
            moved += 1
            lo, hi = self._limits_of(card.stats(t.name), rx)
            kept = min(max(new, min(lo, old)), max(hi, old))
            if abs(kept - new) > 1e-9:
                values[t.name] = kept
                notes.append(f"{t.name} {new:g} -> {kept:g}")
        if not values:
            return proposal
        stopped = sum(1 for n, v in values.items() if abs(v - before[n]) < 1e-9)
        others = _other_changes(context, proposal, tpps)
        if stopped == moved and not others:
            text = "the card's bounds would stop every move: the rule's own move. "
            return proposal.model_copy(update={"rationale": text + proposal.rationale})
        objectives = write_values(tpps, proposal.objectives, values, context.structure_map)
        text = f"{proposal.rationale}; within the card's {self.settings.bounds}: " + "; ".join(
            notes
        )
        return proposal.model_copy(update={"objectives": objectives, "rationale": text})


def _other_changes(context: PolicyContext, proposal: Proposal, tpps: list[Tpp]) -> bool:
    """Whether the proposal changes anything besides the card's TPPs."""
    if len(proposal.objectives) != len(context.objectives):
        return True
    reset = write_values(
        tpps,
        proposal.objectives,
        read_values(tpps, context.objectives, context.structure_map),
        context.structure_map,
    )
    return any(a != b for a, b in zip(reset, context.objectives, strict=True))


def _open(context: PolicyContext) -> bool:
    """Whether the plan still misses something (score below its maximum, or a goal of
    priority 1-2)."""
    ev = context.evaluation
    short = ev.score is not None and ev.max_score is not None and ev.score < ev.max_score - 5e-3
    return short or bool(ev.failed_goals(max_priority=2))
