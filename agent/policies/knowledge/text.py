"""A knowledge card as text for an LLM's prompt (``rtplan plan --policy llm --knowledge``)."""

from __future__ import annotations

from agent.policies.knowledge.card import KnowledgeCard, TppStats


def _value(stats: TppStats, value: float, prescription_gy: float) -> str:
    if stats.unit == "Rx":
        return f"{value:.3f} Rx ({value * prescription_gy:.1f} Gy)"
    if stats.unit == "%":
        return f"{value:.1f} %"
    return f"{value:g}"


def _seeds(seeds: list[int]) -> str:
    if not seeds:
        return "none"
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


def card_text(card: KnowledgeCard, prescription_gy: float | None = None) -> str:
    """The card as plain text: provenance, the TPP distributions (doses also in Gy at
    ``prescription_gy``, default the card's), the priority hierarchy and the helpful actions."""
    rx = card.prescription_gy if prescription_gy is None else prescription_gy
    p = card.provenance
    lines = [
        f"Knowledge card of {card.scenario} (template {card.template}), learnt on the "
        f"simulated TPS (dose engine {card.engine_version}) from {p.successful} successful "
        f"plans ({p.episodes} plans in the source: {p.source}; case seeds {_seeds(p.seeds)}).",
        "TPP names: <structure>.<operator>[<rank among that structure's objectives of that "
        "operator>].<parameter>; NTO = normal tissue objective.",
        "",
        "Final values of each TPP in the successful plans: median [interquartile range] "
        "(lowest-highest):",
    ]
    for t in card.tpps:
        lines.append(
            f"- {t.name}: {_value(t, t.median, rx)} [{_value(t, t.q1, rx)} - "
            f"{_value(t, t.q3, rx)}] ({_value(t, t.low, rx)} - {_value(t, t.high, rx)})"
        )
    if card.priority_hierarchy:
        lines += ["", "Priority hierarchy (highest median priority first):"]
        lines.append(" > ".join(card.priority_hierarchy))
    if card.helpful_actions:
        lines += ["", "Moves that helped most (mean score gain per move while the goal failed):"]
        for a in card.helpful_actions:
            lines.append(
                f"- while {a.situation} failed: {a.tpp} {a.direction} "
                f"(+{a.mean_gain:.2f} score on average, {a.count} moves)"
            )
    lines += [
        "",
        "Use these as starting values and ranges; the plan's own goals and DVHs decide.",
    ]
    return "\n".join(lines)
