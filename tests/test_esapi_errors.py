"""The ESAPI adapter's one error mapping: bridge error kinds, .NET failures and answers that do
not fit the port's DTOs all become errors of ``esapi_bridge.errors``."""

from __future__ import annotations

from pathlib import Path

import pytest
from esapi_helpers import stub_assemblies, stub_plan_for
from test_session import OBJECTIVES, small_case

from esapi_bridge.dto import OptimizationMode, OptimizeRequest
from esapi_bridge.errors import (
    DoseUnavailable,
    EmptyStructure,
    InvalidInput,
    InvalidObjective,
    OptimizationFailed,
    PlanLocked,
    TpsError,
    TpsUnavailable,
    UnknownStructure,
)
from esapi_bridge.esapi import EsapiSession, WrongThread
from esapi_bridge.esapi.error_map import dotnet_boundary, raise_for_error
from mock_tps.session import MockTpsSession


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("WrongThread", WrongThread),
        ("PlanLocked", PlanLocked),
        ("EmptyStructure", EmptyStructure),
        ("InvalidObjective", InvalidObjective),
        ("InvalidInput", InvalidInput),
        ("UnitError", InvalidInput),
        ("OptimizationFailed", OptimizationFailed),
        ("DoseUnavailable", DoseUnavailable),
        ("EsapiError", TpsError),
        ("SomethingNew", TpsError),
    ],
)
def test_every_bridge_kind_has_its_error(kind: str, expected: type[TpsError]) -> None:
    with pytest.raises(expected) as info:
        raise_for_error({"kind": kind, "message": "what happened", "exception_type": "System.X"})
    assert type(info.value) is expected
    assert "what happened (System.X)" in str(info.value)


def test_an_unknown_structure_names_what_the_plan_has() -> None:
    with pytest.raises(UnknownStructure) as info:
        raise_for_error(
            {
                "kind": "UnknownStructure",
                "message": "m",
                "structure_id": "Bladder",
                "available": ["PTV"],
            }
        )
    assert (info.value.structure_id, info.value.available) == ("Bladder", ["PTV"])


def test_a_dotnet_failure_outside_the_bridge_is_unavailable() -> None:
    failure = pytest.raises(TpsUnavailable, match="Optimize failed: TypeError: no overload")
    with failure as info, dotnet_boundary("Optimize"):
        raise TypeError("no overload matches")
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(PlanLocked), dotnet_boundary("SetObjectives"):
        raise PlanLocked("kept as it is")


def test_an_answer_the_port_refuses_is_mapped(tmp_path: Path) -> None:
    mock = MockTpsSession(small_case(), cache_dir=tmp_path)
    stub, backend = stub_plan_for(mock, dose_unit="Gy")
    session = EsapiSession(stub_assemblies().new_bridge(stub.Patient, stub.Plan, "IMRT"))
    session.set_objectives(OBJECTIVES)
    session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
    session.calculate_dose()

    def rising(structure_id: str) -> str:  # a DVH whose volume rises with dose
        return '{"dose_gy": [0, 1, 2], "volume_pct": [10, 50, 100], "min_gy": 0, "mean_gy": 1, "max_gy": 2}'

    backend.dvh = rising  # type: ignore[method-assign]
    backend.attach(stub)
    with pytest.raises(DoseUnavailable, match="does not fit the port"):
        session.get_dvh("PTV")


def test_a_bridge_that_cannot_be_made_is_unavailable(tmp_path: Path) -> None:
    stub, _ = stub_plan_for(MockTpsSession(small_case(), cache_dir=tmp_path), dose_unit="Gy")
    with pytest.raises(TpsUnavailable, match="technique must be IMRT or VMAT, got Proton"):
        stub_assemblies().new_bridge(stub.Patient, stub.Plan, "Proton")
