"""Validation of the port's DTOs at the boundary."""

from __future__ import annotations

import math

import pytest
from fakes import PROSTATE_STRUCTURES, FakeStructure, FakeTpsSession
from pydantic import TypeAdapter, ValidationError

from agent.templates import load_template, match_structures
from esapi_bridge.dto import (
    DvhCurve,
    EudObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    OptimizationResult,
    PlanInfo,
    PointObjective,
    StructureInfo,
    Technique,
    objective_key,
)
from rtplan_common.models import FrozenModel, validation_problems

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


def test_every_dto_is_on_the_strict_frozen_base() -> None:
    for model in (PlanInfo, StructureInfo, PointObjective, DvhCurve, OptimizationResult):
        assert issubclass(model, FrozenModel), model


def test_non_finite_numbers_are_refused_in_lists_and_dicts_too() -> None:
    with pytest.raises(ValidationError, match="finite"):
        DvhCurve(
            structure_id="PTV",
            volume_cm3=math.inf,
            dose_gy=[0.0, 1.0],
            volume_pct=[100.0, 0.0],
            min_dose_gy=0.0,
            mean_dose_gy=0.5,
            max_dose_gy=1.0,
        )
    with pytest.raises(ValidationError) as info:
        OptimizationResult(
            success=True,
            total_objective_value=1.0,
            structure_objective_values={"PTV": math.nan},
            iterations=1,
            wall_time_s=0.0,
        )
    assert validation_problems(info.value)[0][0] == "structure_objective_values.PTV"


def test_an_escape_sequence_in_a_structure_id_from_the_tps_is_refused() -> None:
    tps = FakeTpsSession(
        structures_spec=[*PROSTATE_STRUCTURES, FakeStructure("\x1b[2J\x1b[HRectum_2")]
    )
    with pytest.raises(ValidationError) as info:
        tps.structures()
    [(field, reason)] = validation_problems(info.value)
    assert field == "structure_id" and "U+001B (ESC)" in reason
    assert "\\x1b[2J" in reason  # shown escaped, never raw
    with pytest.raises(ValidationError, match="control character"):
        PlanInfo(plan_id="P\x9b1", technique=Technique.IMRT, total_dose_gy=70.0, fractions=35)
    with pytest.raises(ValidationError, match="at most 64 characters"):
        StructureInfo(structure_id="S" * 65, dicom_type="ORGAN", volume_cm3=1.0)
    # the ids that pass are matched as before
    template = load_template("prostate-basic")
    ids = [s.structure_id for s in FakeTpsSession().structures()]
    assert match_structures(template, ids)["Rectum"] == "Rectum"


def test_tps_messages_lose_their_control_characters() -> None:
    result = OptimizationResult(
        success=False,
        total_objective_value=0.0,
        structure_objective_values={},
        iterations=0,
        wall_time_s=0.0,
        message="\x1b]0;owned\x07optimizer\nfailed",
    )
    assert result.message == "]0;ownedoptimizer failed"
