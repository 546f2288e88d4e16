"""MockTpsSession: the TpsSession port over the simulated TPS, on a small water phantom."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytest_mock import MockerFixture

from esapi_bridge import (
    ApprovalStatus,
    DoseUnavailable,
    EmptyStructure,
    InvalidInput,
    InvalidObjective,
    NormalizationRule,
    NormalTissueObjective,
    ObjectiveOperator,
    OptimizationFailed,
    OptimizationMode,
    OptimizeRequest,
    PlanLocked,
    PointObjective,
    SlicePlane,
    Technique,
    TpsSession,
    UnknownStructure,
)
from mock_tps.case import BeamSet, Case, Prescription, Structure
from mock_tps.grid import Grid
from mock_tps.session import MockTpsSession

RX = 60.0


def small_case() -> Case:
    """A 16 x 16 x 8 cm water box (4 mm voxels) with a 4 cm cubic PTV and an OAR beside it."""
    grid = Grid.covering((160.0, 160.0, 80.0), 4.0)
    x, y, z = grid.coordinates_mm()
    body = (np.abs(x) < 75) & (np.abs(y) < 75) & (np.abs(z) < 38)
    ptv = (np.abs(x) < 20) & (np.abs(y) < 20) & (np.abs(z) < 20)
    oar = (x > 26) & (x < 50) & (np.abs(y) < 15) & (np.abs(z) < 15)
    structures = {
        "PTV": Structure("PTV", "PTV", ptv),
        "OAR": Structure("OAR", "ORGAN", oar),
        "BODY": Structure("BODY", "EXTERNAL", body),
        "Empty": Structure("Empty", "ORGAN", np.zeros(grid.shape, dtype=bool)),
    }
    return Case(
        name="water-box",
        grid=grid,
        density=np.where(body, 1.0, 0.0).astype(np.float32),
        structures=structures,
        prescription=Prescription(RX, 30, "PTV"),
        beams=BeamSet.imrt(5, (0.0, 0.0, 0.0)),
    )


OBJECTIVES = [
    PointObjective(
        structure_id="PTV",
        operator=ObjectiveOperator.LOWER,
        dose_gy=RX,
        volume_pct=100,
        priority=100,
    ),
    PointObjective(
        structure_id="PTV",
        operator=ObjectiveOperator.UPPER,
        dose_gy=RX * 1.03,
        volume_pct=0,
        priority=100,
    ),
    PointObjective(
        structure_id="OAR",
        operator=ObjectiveOperator.UPPER,
        dose_gy=20.0,
        volume_pct=10,
        priority=60,
    ),
    NormalTissueObjective(
        priority=50,
        distance_from_target_border_mm=5,
        start_dose_pct=100,
        end_dose_pct=50,
        fall_off=0.1,
    ),
]
D95 = NormalizationRule(structure_id="PTV", dose_gy=RX, volume_pct=95.0)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> MockTpsSession:
    session = MockTpsSession(small_case(), OBJECTIVES, cache_dir=tmp_path_factory.mktemp("dij"))
    session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
    session.calculate_dose()
    session.normalize(D95)
    return session


def test_implements_the_port(tmp_path: Path) -> None:
    session = MockTpsSession(small_case(), cache_dir=tmp_path)
    assert isinstance(session, TpsSession)
    info = session.plan_info()
    assert info.technique is Technique.IMRT and info.total_dose_gy == RX and info.beam_count == 5
    vols = {s.structure_id: s for s in session.structures()}
    # 40 mm cube on a 4 mm grid: 10^3 voxels of 0.064 cm3 (hand-computed)
    assert vols["PTV"].volume_cm3 == pytest.approx(64.0, rel=0.02)
    assert vols["Empty"].is_empty


def test_optimized_plan_is_normalized_and_spares_the_oar(planned: MockTpsSession) -> None:
    ptv = planned.get_dvh("PTV")
    # normalization D95 = Rx, exact to within one DVH bin (0.01 Gy)
    assert ptv.dose_at_volume_pct(95.0) == pytest.approx(RX, abs=0.02)
    assert ptv.max_dose_gy < 1.15 * RX
    assert planned.get_dvh("OAR").mean_dose_gy < 0.6 * RX


def test_dose_slice_through_target(planned: MockTpsSession) -> None:
    axial = planned.dose_slice(SlicePlane.AXIAL)
    assert (axial.row_axis, axial.col_axis) == ("y", "x")
    dose = np.asarray(axial.dose_gy)
    assert dose.shape == (40, 40)
    assert dose.max() > 0.9 * RX
    assert np.asarray(axial.masks["PTV"]).sum() > 0
    sagittal = planned.dose_slice(SlicePlane.SAGITTAL)
    assert np.asarray(sagittal.dose_gy).shape == (20, 40)


def test_bad_objectives_leave_the_plan_unchanged(tmp_path: Path) -> None:
    session = MockTpsSession(small_case(), OBJECTIVES, cache_dir=tmp_path)
    bad = [
        *OBJECTIVES[:2],
        PointObjective(
            structure_id="Bladder",
            operator=ObjectiveOperator.UPPER,
            dose_gy=50,
            volume_pct=10,
            priority=50,
        ),
    ]
    with pytest.raises(UnknownStructure, match=r"Bladder.*PTV"):
        session.set_objectives(bad)
    negative = {**OBJECTIVES[0].model_dump(), "dose_gy": -5.0}
    with pytest.raises(InvalidObjective, match=r"dose_gy[\s\S]*greater than or equal to 0"):
        session.set_objectives([negative])
    with pytest.raises(InvalidObjective, match="at most one normal tissue"):
        session.set_objectives([*OBJECTIVES, OBJECTIVES[-1]])
    empty = [
        PointObjective(
            structure_id="Empty",
            operator=ObjectiveOperator.UPPER,
            dose_gy=5,
            volume_pct=0,
            priority=5,
        )
    ]
    with pytest.raises(EmptyStructure, match="Empty"):
        session.set_objectives(empty)
    assert session.get_objectives() == OBJECTIVES


def test_dose_lifecycle_follows_eclipse(tmp_path: Path) -> None:
    session = MockTpsSession(small_case(), OBJECTIVES, cache_dir=tmp_path)
    with pytest.raises(DoseUnavailable):
        session.get_dvh("PTV")
    with pytest.raises(DoseUnavailable):
        session.calculate_dose()
    session.optimize()
    with pytest.raises(DoseUnavailable):  # optimization invalidates the dose until it is calculated
        session.get_dvh("PTV")
    session.calculate_dose()
    assert session.get_dvh("PTV").mean_dose_gy > 0


def test_locked_plan_refuses_changes(tmp_path: Path) -> None:
    session = MockTpsSession(
        small_case(), cache_dir=tmp_path, approval_status=ApprovalStatus.PLANNING_APPROVED
    )
    with pytest.raises(PlanLocked, match="PlanningApproved"):
        session.set_objectives(OBJECTIVES)
    with pytest.raises(PlanLocked):
        session.optimize()


def test_optimizer_crash_is_mapped_to_our_error(tmp_path: Path, mocker: MockerFixture) -> None:
    session = MockTpsSession(small_case(), OBJECTIVES, cache_dir=tmp_path)
    mocker.patch(
        "mock_tps.session.run_fluence_optimizer", side_effect=FloatingPointError("overflow")
    )
    with pytest.raises(OptimizationFailed, match="FloatingPointError: overflow"):
        session.optimize()
    with pytest.raises(InvalidObjective, match="no optimization objectives"):
        MockTpsSession(small_case(), cache_dir=tmp_path).optimize()


def test_objective_values_name_their_structure_even_with_a_colon_in_its_id(
    tmp_path: Path,
) -> None:
    case = small_case()
    oar = case.structures.pop("OAR")
    case.structures["OAR:L"] = Structure("OAR:L", "ORGAN", oar.mask)
    objectives = [
        o.model_copy(update={"structure_id": "OAR:L"})
        if getattr(o, "structure_id", None) == "OAR"
        else o
        for o in OBJECTIVES
    ]
    session = MockTpsSession(case, objectives, cache_dir=tmp_path)
    result = session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
    by_key = {v.key: v.structure_id for v in result.objective_values}
    assert by_key == {
        "PTV:point:lower:100": "PTV",
        "PTV:point:upper:0": "PTV",
        "OAR:L:point:upper:10": "OAR:L",
        "NTO": None,
    }


@pytest.mark.parametrize(
    ("structure_id", "reason"),
    [("\x1b[2JRectum", "U\\+001B \\(ESC\\)"), ("R" * 65, "65 characters; 1 to 64")],
)
def test_a_structure_id_the_port_cannot_carry_is_refused_when_the_case_is_built(
    structure_id: str, reason: str
) -> None:
    """An ESC sequence in a structure id would reach the terminal raw; the case refuses it
    with our error (the CLI prints it as bad input), not a pydantic traceback later."""
    case = small_case()
    oar = case.structures.pop("OAR")
    case.structures[structure_id] = Structure(structure_id, "ORGAN", oar.mask)
    with pytest.raises(InvalidInput, match=reason):
        Case(
            name=case.name,
            grid=case.grid,
            density=case.density,
            structures=case.structures,
            prescription=case.prescription,
            beams=case.beams,
        )
