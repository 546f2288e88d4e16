"""Knowledge extraction: the final TPP values of successful plans (and, from DRL episodes, the
moves that helped) summarized as a :class:`~agent.policies.knowledge.card.KnowledgeCard`.

The same summary serves every source: DRL episodes (:func:`card_from_episodes`), the optima of
the calibration search (:func:`card_from_objective_lists`, the non-DRL prior) and synthetic
values in tests (:func:`card_from_finals`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from agent.policies.drl.episodes import EpisodeRecord
from agent.policies.drl.tpps import Tpp, read_values, tpps_of
from agent.policies.knowledge.card import (
    ActionGain,
    CardProvenance,
    CardSource,
    KnowledgeCard,
    TppStats,
    TppUnit,
)
from agent.session.identity import clinical_hash
from agent.templates import SiteTemplate
from esapi_bridge.dto import Objective

#: Most helpful actions kept per situation, and in all.
ACTIONS_PER_SITUATION = 2
MAX_ACTIONS = 16


@dataclass(frozen=True)
class StepGain:
    """One move of one TPP and what it did: the score change, and which score criteria (or
    goals) were deficient before it."""

    tpp: str
    direction: str  # "up" or "down"
    gain: float
    deficient: tuple[str, ...]


_UNITS: dict[str, TppUnit] = {"dose_gy": "Rx", "volume_pct": "%", "priority": "priority"}


def unit_of(tpp: Tpp) -> TppUnit:
    """How a card stores the TPP's values (doses as fractions of Rx)."""
    return _UNITS.get(tpp.parameter, "value")


def tpp_stats(
    tpps: Sequence[Tpp], finals: Sequence[Mapping[str, float]], prescription_gy: float
) -> list[TppStats]:
    """Median, quartiles and range of every TPP over ``finals`` (TPP name -> value in the
    TPP's unit, Gy for doses); doses are stored as fractions of ``prescription_gy``."""
    if not finals:
        raise ValueError("no successful plans to extract knowledge from")
    out: list[TppStats] = []
    for t in tpps:
        raw = [float(f[t.name]) for f in finals if t.name in f]
        if not raw:
            raise ValueError(f"no final value of TPP {t.name!r} in the plans")
        unit = unit_of(t)
        values = np.array(raw) / (prescription_gy if unit == "Rx" else 1.0)
        q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
        out.append(
            TppStats(
                name=t.name,
                parameter=t.parameter,
                unit=unit,
                count=len(raw),
                median=round(median, 6),
                q1=round(q1, 6),
                q3=round(q3, 6),
                low=round(float(values.min()), 6),
                high=round(float(values.max()), 6),
            )
        )
    return out


def priority_hierarchy(stats: Iterable[TppStats]) -> list[str]:
    """The priority TPPs, highest median first (ties: card order)."""
    priorities = [s for s in stats if s.parameter == "priority"]
    return [s.name for s in sorted(priorities, key=lambda s: -s.median)]


def helpful_actions(steps: Iterable[StepGain]) -> list[ActionGain]:
    """Per deficient criterion, the TPP moves with the largest mean score gain (only moves
    whose mean gain is positive; at most :data:`ACTIONS_PER_SITUATION` each)."""
    gains: dict[tuple[str, str, str], list[float]] = {}
    for step in steps:
        for situation in step.deficient:
            gains.setdefault((situation, step.tpp, step.direction), []).append(step.gain)
    by_situation: dict[str, list[ActionGain]] = {}
    for (situation, tpp, direction), values in gains.items():
        mean = statistics.fmean(values)
        if mean > 0:
            by_situation.setdefault(situation, []).append(
                ActionGain(
                    situation=situation,
                    tpp=tpp,
                    direction="up" if direction == "up" else "down",
                    mean_gain=round(mean, 4),
                    count=len(values),
                )
            )
    out: list[ActionGain] = []
    for situation in sorted(by_situation):
        best = sorted(by_situation[situation], key=lambda a: (-a.mean_gain, a.tpp))
        out += best[:ACTIONS_PER_SITUATION]
    return sorted(out, key=lambda a: -a.mean_gain)[:MAX_ACTIONS]


@dataclass(frozen=True)
class Origin:
    """How the plans a card summarizes were made: ``source``, the case ``seeds``, how many
    plans (``episodes``) were made in all, the dose engine, and the creating commit."""

    source: CardSource
    seeds: tuple[int, ...]
    episodes: int
    engine_version: str
    note: str = ""
    commit: str = ""  # the commit of the code that made the plans and the card


def card_from_finals(
    template: SiteTemplate,
    finals: Sequence[Mapping[str, float]],
    origin: Origin,
    *,
    steps: Iterable[StepGain] = (),
    tpps: Sequence[Tpp] | None = None,
) -> KnowledgeCard:
    """A card from the final TPP values (TPP name -> value, Gy for doses) of the successful
    plans of ``origin``; ``steps`` give the helpful actions (DRL episodes)."""
    chosen = list(tpps) if tpps is not None else tpps_of(template)
    rx = template.prescription.dose_gy
    stats = tpp_stats(chosen, finals, rx)
    return KnowledgeCard(
        scenario=template.scenario,
        template=template.name,
        clinical_hash=clinical_hash(template),
        engine_version=origin.engine_version,
        prescription_gy=rx,
        tpps=stats,
        priority_hierarchy=priority_hierarchy(stats),
        helpful_actions=helpful_actions(steps),
        provenance=CardProvenance(
            source=origin.source,
            seeds=sorted(set(origin.seeds)),
            episodes=origin.episodes,
            successful=len(finals),
            engine_version=origin.engine_version,
            created=datetime.now(UTC).strftime("%Y-%m-%d"),
            commit=origin.commit,
            note=origin.note,
        ),
    )


def card_from_objective_lists(
    template: SiteTemplate,
    structure_map: Mapping[str, str],
    objective_lists: Sequence[Sequence[Objective]],
    origin: Origin,
) -> KnowledgeCard:
    """A card from the final objectives of successful plans (plan structure ids mapped by
    ``structure_map``, canonical -> plan)."""
    tpps = tpps_of(template)
    finals = [read_values(tpps, objs, structure_map) for objs in objective_lists]
    return card_from_finals(template, finals, origin, tpps=tpps)


def episode_steps(episodes: Iterable[EpisodeRecord]) -> list[StepGain]:
    """Every step of ``episodes`` as a :class:`StepGain` (the goals with a negative margin
    before the step are its situation)."""
    out: list[StepGain] = []
    for episode in episodes:
        for step in episode.steps:
            deficient = tuple(sorted(g for g, m in step.goal_margins.items() if m < 0))
            out.append(
                StepGain(
                    tpp=step.action.tpp,
                    direction=step.action.direction,
                    gain=step.score_after - step.score_before,
                    deficient=deficient,
                )
            )
    return out


def card_from_episodes(
    template: SiteTemplate,
    episodes: Sequence[EpisodeRecord],
    engine_version: str,
    commit: str = "",
) -> KnowledgeCard:
    """A card from the successful training episodes of ``template``'s scenario on
    ``engine_version`` (evaluation episodes are left out: their seeds are the evaluation's).

    Raises
    ------
    ValueError
        When no episode qualifies (naming how many were of another scenario or engine).
    """
    train = [e for e in episodes if e.source == "train"]
    mine = [
        e for e in train if e.scenario == template.scenario and e.engine_version == engine_version
    ]
    good = [e for e in mine if e.success]
    if not good:
        raise ValueError(
            f"no successful training episode of {template.scenario} on engine {engine_version} "
            f"among {len(episodes)} episodes ({len(train)} training, {len(mine)} of this "
            "scenario and engine): train the DRL planner first"
        )
    tpps = tpps_of(template)
    origin = Origin(
        source="drl-episodes",
        seeds=tuple(e.seed for e in mine),
        episodes=len(mine),
        engine_version=engine_version,
        note="final TPP values of the successful training episodes, helpful actions from "
        "every training episode in the file",
        commit=commit,
    )
    finals = [e.final_tpp_values for e in good]
    return card_from_finals(template, finals, origin, steps=episode_steps(mine), tpps=tpps)
