"""The seed sets shared by the benchmarks of knowledge-guided planning, DRL and the cohort.

Evaluation seeds are the cohort's (``rtplan cohort run``, ``bench.agent_cohort``: 0-9); training and knowledge
extraction use seeds the evaluation never sees.
"""

from __future__ import annotations

#: Cases every policy is compared on (10 per scenario, paired).
EVALUATION_SEEDS: tuple[int, ...] = tuple(range(10))
#: Cases DRL training, knowledge extraction and the non-DRL prior may use.
TRAINING_SEEDS: tuple[int, ...] = tuple(range(1000, 1050))


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0-9"``, ``"3"`` or ``"0-4,20,30-31"`` -> the seeds, in order, without repeats.

    Raises
    ------
    ValueError
        For anything else, naming the part that is not a seed or a range.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        low, sep, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if sep else first
        except ValueError:
            raise ValueError(f"seeds {text!r}: {part!r} is not a seed or a range A-B") from None
        if first < 0 or last < first:
            raise ValueError(f"seeds {text!r}: {part!r} must be A-B with 0 <= A <= B")
        seeds.extend(s for s in range(first, last + 1) if s not in seeds)
    return tuple(seeds)
