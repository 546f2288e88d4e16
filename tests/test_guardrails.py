"""Guardrails: rejections with reasons, step clipping, and the target-objective rule."""

from __future__ import annotations

import math

import pytest
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.session.guardrails import GuardLimits, Guardrails
from agent.session.records import Proposal, VerdictStatus
from agent.templates import match_structures
from esapi_bridge.dto import (
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
    StructureInfo,
    objective_key,
)

RX = 79.2


@pytest.fixture(scope="module")
def setup() -> tuple[Guardrails, list[Objective]]:
    template = frozen_prostate_template()
    fake = FakeTpsSession()
    structures = fake.structures()
    smap = match_structures(template, structures)
    guard = Guardrails(template, smap, structures, RX)
    return guard, template.initial_objectives(smap, RX)


def _replace(objs: list[Objective], key: str, **update: float) -> list[Objective]:
    return [o.model_copy(update=update) if objective_key(o) == key else o for o in objs]


def _check(guard: Guardrails, objs: list[Objective], current: list[Objective] | None = None):
    return guard.check(Proposal(objectives=objs, rationale="t", policy="test"), current)


def test_template_objectives_are_accepted_unchanged(setup) -> None:
    guard, objs = setup
    verdict, applied = _check(guard, objs, objs)
    assert verdict.status is VerdictStatus.ACCEPTED
    assert applied == objs


def test_unknown_structure_is_rejected_naming_it(setup) -> None:
    guard, objs = setup
    bad = [
        *objs,
        PointObjective(
            structure_id="Bowel",
            operator=ObjectiveOperator.UPPER,
            dose_gy=40,
            volume_pct=10,
            priority=50,
        ),
    ]
    verdict, applied = _check(guard, bad, objs)
    assert applied is None and verdict.status is VerdictStatus.REJECTED
    assert any("'Bowel' does not exist" in r for r in verdict.reasons)


def test_empty_structure_is_rejected() -> None:
    template = frozen_prostate_template()
    structures = [
        s
        if s.structure_id != "Rectum"
        else StructureInfo(
            structure_id="Rectum", dicom_type="ORGAN", volume_cm3=0.0, is_empty=False
        )
        for s in FakeTpsSession().structures()
    ]
    smap = match_structures(template, structures)
    empty = [
        s.model_copy(update={"is_empty": s.structure_id == "Femur_Head_L"}) for s in structures
    ]
    guard = Guardrails(template, smap, empty, RX)
    objs = [
        *template.initial_objectives(smap, RX),
        PointObjective(
            structure_id="Femur_Head_L",
            operator=ObjectiveOperator.UPPER,
            dose_gy=40,
            volume_pct=5,
            priority=30,
        ),
    ]
    verdict, applied = _check(guard, objs)
    assert applied is None
    assert any("'Femur_Head_L' is empty" in r for r in verdict.reasons)


def test_non_finite_and_out_of_range_numbers_are_rejected(setup) -> None:
    guard, objs = setup
    key = "Bladder:point:upper:30"
    nan_obj = PointObjective.model_construct(
        structure_id="Bladder", operator=ObjectiveOperator.UPPER, dose_gy=math.nan, volume_pct=30.0,
        priority=40.0, kind="point",
    )  # fmt: skip
    objs_nan = [nan_obj if objective_key(o) == key else o for o in objs]
    verdict, _ = _check(guard, objs_nan, objs)
    assert any("not a finite number" in r for r in verdict.reasons)

    huge = PointObjective.model_construct(
        structure_id="Rectum", operator=ObjectiveOperator.UPPER, dose_gy=40.0, volume_pct=130.0,
        priority=2000.0, kind="point",
    )  # fmt: skip
    verdict, applied = _check(guard, [*objs, huge], objs)
    assert applied is None
    assert any("priority 2000 outside 0..1000" in r for r in verdict.reasons)
    assert any("volume_pct 130 outside 0..100" in r for r in verdict.reasons)


def test_target_dose_outside_template_range_is_rejected(setup) -> None:
    guard, objs = setup
    # template range of the PTV lower objective: 0.95-1.02 Rx = 75.24-80.78 Gy
    bad = _replace(objs, "PTV:point:lower:100", dose_gy=70.0)
    verdict, applied = _check(guard, bad, objs)
    assert applied is None
    assert any(
        "PTV:point:lower:100: dose_gy 70 outside the template range" in r for r in verdict.reasons
    )


def test_oar_dose_above_ceiling_is_rejected(setup) -> None:
    guard, objs = setup
    # an objective the template does not define: the generic ceiling 1.1 x Rx = 87.12 Gy applies
    extra = PointObjective(
        structure_id="Femur_Head_R",
        operator=ObjectiveOperator.UPPER,
        dose_gy=90.0,
        volume_pct=1,
        priority=10,
    )
    verdict, applied = _check(guard, [*objs, extra], objs)
    assert applied is None
    assert any("above the OAR ceiling 87.12 Gy" in r for r in verdict.reasons)


def test_removing_every_target_objective_is_rejected(setup) -> None:
    guard, objs = setup
    no_target = [o for o in objs if isinstance(o, NormalTissueObjective) or o.structure_id != "PTV"]
    verdict, applied = _check(guard, no_target, objs)
    assert applied is None
    assert any("no lower/exact objective on a target" in r for r in verdict.reasons)


def test_duplicate_objective_is_rejected(setup) -> None:
    guard, objs = setup
    verdict, applied = _check(guard, [*objs, objs[2]], objs)
    assert applied is None
    assert any("appears twice" in r for r in verdict.reasons)


def test_large_steps_are_clipped_and_recorded(setup) -> None:
    guard, objs = setup
    # dose step bound: 0.15 x 79.2 = 11.88 Gy; priority: max(150, 1.0 x old) = 150
    big = _replace(objs, "Bladder:point:upper:30", dose_gy=30.0, priority=300.0)
    verdict, applied = _check(guard, big, objs)
    assert verdict.status is VerdictStatus.CLIPPED and applied is not None
    moved = next(o for o in applied if objective_key(o) == "Bladder:point:upper:30")
    assert moved.dose_gy == pytest.approx(71.28 - 11.88, abs=1e-9)
    assert moved.priority == pytest.approx(40.0 + 150.0, abs=1e-9)
    assert len(verdict.adjustments) == 2


def test_volume_step_is_bounded_for_a_moved_point_objective(setup) -> None:
    guard, objs = setup
    moved_vol = _replace(objs, "Rectum:point:upper:55", volume_pct=5.0)
    verdict, applied = _check(guard, moved_vol, objs)
    assert applied is not None and verdict.status is VerdictStatus.CLIPPED
    rect = [o for o in applied if isinstance(o, PointObjective) and o.structure_id == "Rectum"]
    assert sorted(o.volume_pct for o in rect) == [30.0, 35.0]  # 55 - 20 points


def test_custom_limits_apply() -> None:
    template = frozen_prostate_template()
    structures = FakeTpsSession().structures()
    smap = match_structures(template, structures)
    guard = Guardrails(template, smap, structures, RX, GuardLimits(max_dose_step_rx=0.01))
    objs = template.initial_objectives(smap, RX)
    verdict, applied = _check(guard, _replace(objs, "Rectum:point:upper:30", dose_gy=69.0), objs)
    assert verdict.status is VerdictStatus.CLIPPED
    assert applied is not None
    assert min(o.dose_gy for o in applied if objective_key(o) == "Rectum:point:upper:30") == (
        pytest.approx(71.28 - 0.792)
    )
