"""The rule policy's rationale states true comparisons (issue #8, item 16: "D0.03cc 69.77 > 70.00").

The sparing (ALARA) steps describe goals that are met; the text used to print the failing
comparator whatever the numbers were. The comparison shown now follows the two numbers shown.
"""

from __future__ import annotations

import re

import pytest

from agent.policies.rule.demands import Demand, compare_text
from agent.templates import parse_metric


def _demand(
    value: float, limit: float, *, upper: bool, met: bool, metric: str = "D0.03cc"
) -> Demand:
    return Demand(
        id="goal:mandible_max",
        source="goal",
        plan_structure_id="Bone_Mandible",
        canonical_id="Bone_Mandible",
        metric=parse_metric(metric),
        upper=upper,
        deficit=0.0 if met else 1.0,
        slack=1.0 if met else 0.0,
        weight=2.0,
        priority=2,
        on_target=False,
        objective_structures=("Bone_Mandible",),
        value=value,
        limit=limit,
        unit="Gy",
    )


def _claim_is_true(text: str) -> bool:
    m = re.search(r"(-?\d+\.\d+) ([<>=]) (-?\d+\.\d+)", text)
    assert m is not None, text
    a, op, b = float(m[1]), m[2], float(m[3])
    return {"<": a < b, ">": a > b, "=": a == b}[op]


def test_a_met_upper_goal_is_not_described_as_exceeded() -> None:
    text = _demand(69.77, 70.0, upper=True, met=True).describe()
    assert text == "Bone_Mandible D0.03cc 69.77 < 70.00 (p2, met)"
    assert _claim_is_true(text)


def test_a_failing_goal_reads_as_before() -> None:
    assert _demand(72.41, 70.0, upper=True, met=False).describe() == (
        "Bone_Mandible D0.03cc 72.41 > 70.00 (p2)"
    )
    lower = _demand(55.26, 56.0, upper=False, met=False, metric="D95%")
    assert lower.describe() == "Bone_Mandible D95% 55.26 < 56.00 (p2)"


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (70.004, 70.0, ("70.004", ">", "70.000")),  # rounding to 2 decimals would say 70.00 > 70.00
        (69.996, 70.0, ("69.996", "<", "70.000")),
        (70.0, 70.0, ("70.00", "=", "70.00")),
        (70.0 + 1e-9, 70.0, ("70.000000", "=", "70.000000")),
    ],
)
def test_the_comparison_follows_the_numbers_shown(
    value: float, limit: float, expected: tuple[str, str, str]
) -> None:
    assert compare_text(value, limit) == expected
    for upper in (True, False):
        for met in (True, False):
            assert _claim_is_true(_demand(value, limit, upper=upper, met=met).describe())
