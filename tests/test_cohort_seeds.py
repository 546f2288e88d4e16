"""The one seed syntax of the cohort runner and the benchmarks (agent.cohort.seeds)."""

import pytest

from agent.cohort.seeds import EVALUATION_SEEDS, TRAINING_SEEDS, parse_seeds


def test_ranges_lists_and_single_seeds_in_order_without_repeats() -> None:
    assert parse_seeds("0-4,20,3") == (0, 1, 2, 3, 4, 20)
    assert parse_seeds("7") == (7,)
    assert parse_seeds(" 2 - 3 ".replace(" ", "")) == (2, 3)


@pytest.mark.parametrize("text", ["a", "5-3", "-1", "1-x", ""])
def test_bad_seed_text_names_the_part(text: str) -> None:
    with pytest.raises(ValueError, match="seeds"):
        parse_seeds(text)


def test_training_and_evaluation_seeds_are_disjoint() -> None:
    assert not set(TRAINING_SEEDS) & set(EVALUATION_SEEDS)
    assert len(EVALUATION_SEEDS) == 10
