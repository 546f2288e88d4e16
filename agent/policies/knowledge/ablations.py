"""Ablation cards of issue #14: the shuffled card (the knowledge's values on the wrong TPPs).

The non-DRL prior is an ordinary card made by :func:`agent.policies.knowledge.extract.
card_from_objective_lists` from the calibration search's optima (``bench.knowledge prior``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agent.policies.knowledge.card import ActionGain, KnowledgeCard, TppStats
from agent.policies.knowledge.extract import priority_hierarchy

_VALUES = ("count", "median", "q1", "q3", "low", "high")


def _derangement(n: int, rng: np.random.Generator) -> list[int]:
    """A seeded permutation of ``range(n)`` that moves every element (identity for n < 2)."""
    if n < 2:
        return list(range(n))
    for _ in range(1000):
        perm = [int(i) for i in rng.permutation(n)]
        if all(i != p for i, p in enumerate(perm)):
            return perm
    return [(i + 1) % n for i in range(n)]  # pragma: no cover - 1000 misses are unlikely


def shuffle_mapping(card: KnowledgeCard, seed: int) -> dict[str, str]:
    """TPP name -> the TPP whose values it gets: a seeded permutation within each parameter
    (doses among doses, volumes among volumes, priorities among priorities: the values keep
    their units) that moves every TPP whose parameter has at least two TPPs."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list[str]] = {}
    for t in card.tpps:
        groups.setdefault(t.parameter, []).append(t.name)
    mapping: dict[str, str] = {}
    for names in groups.values():
        perm = _derangement(len(names), rng)
        mapping |= {name: names[p] for name, p in zip(names, perm, strict=True)}
    return mapping


def shuffled_card(card: KnowledgeCard, seed: int) -> KnowledgeCard:
    """``card`` with its TPP statistics permuted across TPPs (:func:`shuffle_mapping`); the
    priority hierarchy follows the shuffled values, the helpful actions are renamed with the
    same permutation."""
    mapping = shuffle_mapping(card, seed)
    by_name = {t.name: t for t in card.tpps}
    tpps: list[TppStats] = []
    for t in card.tpps:
        donor = by_name[mapping[t.name]]
        tpps.append(t.model_copy(update={k: getattr(donor, k) for k in _VALUES}))
    inverse = {donor: name for name, donor in mapping.items()}
    actions: Sequence[ActionGain] = [
        a.model_copy(update={"tpp": inverse.get(a.tpp, a.tpp)}) for a in card.helpful_actions
    ]
    provenance = card.provenance.model_copy(
        update={
            "source": "shuffled",
            "derived_from": f"{card.provenance.source} card, values permuted across TPPs "
            f"(within each parameter), seed {seed}",
        }
    )
    return card.model_copy(
        update={
            "tpps": tpps,
            "priority_hierarchy": priority_hierarchy(tpps),
            "helpful_actions": list(actions),
            "provenance": provenance,
        }
    )
