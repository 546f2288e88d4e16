"""Validation of the port's DTOs at the boundary."""

from __future__ import annotations

import math

import pytest
from pydantic import TypeAdapter, ValidationError

from esapi_bridge.dto import (
    EudObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PlanInfo,
    PointObjective,
    Technique,
    objective_key,
)

OBJECTIVE = TypeAdapter(Objective)


def test_objectives_round_trip_through_json() -> None:
    objs = [
        PointObjective(
            structure_id="PTV",
            operator=ObjectiveOperator.LOWER,
            dose_gy=78.0,
            volume_pct=100,
            priority=120,
        ),
        EudObjective(
            structure_id="Rectum",
            operator=ObjectiveOperator.UPPER,
            dose_gy=40.0,
            parameter_a=8.0,
            priority=50,
        ),
        NormalTissueObjective(
            priority=100,
            distance_from_target_border_mm=3,
            start_dose_pct=105,
            end_dose_pct=60,
            fall_off=0.05,
        ),
    ]
    for obj in objs:
        assert OBJECTIVE.validate_json(obj.model_dump_json()) == obj
    assert objective_key(objs[0]) == "PTV:point:lower:100"
    assert objective_key(objs[2]) == "NTO"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("dose_gy", -1.0, "greater than or equal to 0"),
        ("dose_gy", math.nan, "finite"),
        ("volume_pct", 101.0, "less than or equal to 100"),
        ("priority", -5.0, "greater than or equal to 0"),
    ],
)
def test_point_objective_rejects_out_of_range(field: str, value: float, needle: str) -> None:
    data = {
        "structure_id": "PTV",
        "operator": "upper",
        "dose_gy": 70.0,
        "volume_pct": 5.0,
        "priority": 50.0,
    }
    data[field] = value
    with pytest.raises(ValidationError) as err:
        PointObjective(**data)
    assert field in str(err.value) and needle in str(err.value)


def test_nto_end_above_start_is_rejected() -> None:
    with pytest.raises(ValidationError, match="end_dose_pct"):
        NormalTissueObjective(
            priority=100,
            distance_from_target_border_mm=3,
            start_dose_pct=60,
            end_dose_pct=100,
            fall_off=0.1,
        )


def test_plan_info_dose_per_fraction() -> None:
    info = PlanInfo(plan_id="P1", technique=Technique.IMRT, total_dose_gy=79.2, fractions=44)
    assert info.dose_per_fraction_gy == pytest.approx(1.8)
    with pytest.raises(ValidationError, match="fractions"):
        PlanInfo(plan_id="P1", technique=Technique.IMRT, total_dose_gy=79.2, fractions=0)
