"""Python -> pythonnet -> PlanBridge (C#) -> ESAPI 15.6 stubs, on Mono, with mock_tps dose behind.

The plan is the small water box of ``test_session`` (PTV, OAR, BODY, an empty structure; Rx
60 Gy in 30 fractions), opened twice: in a Gy system and in a cGy system.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest
from esapi_helpers import build_dir, stub_assemblies, stub_namespace, stub_plan_for
from test_session import OBJECTIVES, RX, small_case

from esapi_bridge import (
    DoseUnavailable,
    EmptyStructure,
    EudObjective,
    InvalidObjective,
    MeanDoseObjective,
    NormalizationRule,
    NormalTissueObjective,
    ObjectiveOperator,
    OptimizationFailed,
    OptimizationMode,
    OptimizeRequest,
    PlanLocked,
    PointObjective,
    TpsError,
    TpsSession,
    TpsUnavailable,
    UnknownStructure,
    VolumeUnit,
)
from esapi_bridge.esapi import EsapiSession, WrongThread
from esapi_bridge.esapi.runtime import current_managed_thread_id
from mock_tps.session import MockTpsSession

UNITS = ["Gy", "cGy"]
D95 = NormalizationRule(structure_id="PTV", dose_gy=RX, volume_pct=95.0)
EVERY_KIND = [
    *OBJECTIVES,  # point Lower and Upper, NTO
    PointObjective(
        structure_id="OAR",
        operator=ObjectiveOperator.EXACT,
        dose_gy=12.5,
        volume_pct=30.0,
        priority=7,
    ),
    MeanDoseObjective(structure_id="OAR", dose_gy=18.25, priority=45),
    EudObjective(
        structure_id="OAR",
        operator=ObjectiveOperator.UPPER,
        dose_gy=22.0,
        parameter_a=8.0,
        priority=33,
    ),
    EudObjective(
        structure_id="PTV",
        operator=ObjectiveOperator.LOWER,
        dose_gy=59.5,
        parameter_a=-12.0,
        priority=80,
    ),
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("esapi-dij")


class Opened:
    """One stub plan with its bridge, the adapter over it and the simulated TPS behind."""

    def __init__(self, cache_dir: Path, dose_unit: str, *, vmat: bool = False) -> None:
        self.mock = MockTpsSession(small_case(), cache_dir=cache_dir)
        self.stub, self.backend = stub_plan_for(self.mock, dose_unit=dose_unit, vmat=vmat)
        technique = "VMAT" if vmat else "IMRT"
        self.bridge = stub_assemblies().new_bridge(self.stub.Patient, self.stub.Plan, technique)
        self.session = EsapiSession(self.bridge)

    def raw(self, method: str, *args: Any) -> dict[str, Any]:
        return dict(json.loads(str(getattr(self.bridge, method)(*args))))

    def plan_dose(self) -> None:
        self.session.set_objectives(OBJECTIVES)
        self.session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
        self.session.calculate_dose()


@pytest.fixture(params=UNITS)
def opened(request: pytest.FixtureRequest, cache_dir: Path) -> Opened:
    return Opened(cache_dir, request.param)


def test_stubs_and_bridge_compile_with_mcs(tmp_path: Path) -> None:
    from esapi_helpers import build_module

    out = build_module().build(tmp_path, force=True)
    names = sorted(p.name for p in out.glob("*.dll"))
    assert names == [
        "Python.Runtime.dll",
        "RtPlanAgent.esapi.dll",
        "Rtplan.EsapiStubs.Testing.dll",
        "Rtplan.PlanBridge.dll",
        "VMS.TPS.Common.Model.API.dll",
        "VMS.TPS.Common.Model.Types.dll",
    ]
    assert (out / "Rtplan.PluginTestHost.exe").is_file()
    assert stub_assemblies().runtime == "mono"


def test_the_adapter_implements_the_port(opened: Opened) -> None:
    assert isinstance(opened.session, TpsSession)
    info = opened.session.plan_info()
    assert (info.total_dose_gy, info.fractions, info.beam_count) == (pytest.approx(RX), 30, 5)
    assert info.dose_unit == opened.raw("PlanInfo")["value"]["dose_unit"]
    assert "PLAN-1" not in info.plan_id and info.plan_id.startswith("esapi-plan-")
    by_id = {s.structure_id: s for s in opened.session.structures()}
    assert set(by_id) == {"PTV", "OAR", "BODY", "Empty"} and by_id["Empty"].is_empty


@pytest.mark.parametrize("dose_unit", UNITS)
def test_every_objective_kind_round_trips(cache_dir: Path, dose_unit: str) -> None:
    opened = Opened(cache_dir, dose_unit)
    opened.session.set_objectives(EVERY_KIND)
    back = opened.session.get_objectives()
    assert [o.kind for o in back] == [o.kind for o in EVERY_KIND if o.kind != "nto"] + ["nto"]
    want = [o for o in EVERY_KIND if o.kind != "nto"] + [OBJECTIVES[3]]
    for got, expected in zip(back, want, strict=True):
        assert got.model_dump() == pytest.approx(expected.model_dump(), abs=1e-10)
    # inside ESAPI the doses are in the system unit
    point = next(iter(opened.stub.Plan.OptimizationSetup.Objectives))
    assert str(point.Dose.Unit) == dose_unit
    assert point.Dose.Dose == pytest.approx(RX * (100.0 if dose_unit == "cGy" else 1.0))
    assert point.Priority == 100.0 and point.Volume == 100.0


def test_operators_round_trip_including_none(opened: Opened) -> None:
    ns = stub_namespace()
    raw = [
        {
            "kind": "point",
            "structure_id": "OAR",
            "operator": op,
            "dose_gy": 10.0,
            "volume_pct": 5.0,
            "priority": 1.0,
        }
        for op in ("Upper", "Lower", "Exact", "None")
    ]
    answer = opened.raw("SetObjectives", json.dumps(raw))
    assert answer["ok"], answer
    assert [o["operator"] for o in opened.raw("GetObjectives")["value"]] == [
        "Upper",
        "Lower",
        "Exact",
        "None",
    ]
    stub_ops = [int(o.Operator) for o in opened.stub.Plan.OptimizationSetup.Objectives]
    assert stub_ops == [0, 1, 2, 99]
    # a point objective without operator has no place in the port: refused by name
    with pytest.raises(InvalidObjective, match="operator None"):
        opened.session.get_objectives()
    # mean objectives carry operator None (the stubs' AddMeanDoseObjective) or Upper: both read
    opened.session.set_objectives([])
    ns.StubFactory.AddMeanObjectiveWithOperator(opened.stub, "OAR", "Upper", 20.0, 10.0)
    mean = MeanDoseObjective(structure_id="OAR", dose_gy=20.0, priority=10.0)
    assert [o["operator"] for o in opened.raw("GetObjectives")["value"]] == ["Upper"]
    assert opened.session.get_objectives() == [mean]
    opened.session.set_objectives([mean])  # re-added through AddMeanDoseObjective: no operator
    assert [o["operator"] for o in opened.raw("GetObjectives")["value"]] == ["None"]
    assert opened.session.get_objectives() == [mean]


def test_the_nto_is_a_parameter_and_other_parameters_stay(opened: Opened) -> None:
    ns = stub_namespace()
    ns.StubFactory.AddOtherParameter(opened.stub, "IMRTBeam")
    ns.StubFactory.AddOtherParameter(opened.stub, "JawTrackingUsed")
    opened.session.set_objectives(OBJECTIVES)
    opened.session.set_objectives(OBJECTIVES)  # replaced, not doubled
    kinds = sorted(ns.StubFactory.ParameterKinds(opened.stub))
    assert kinds == [
        "OptimizationIMRTBeamParameter",
        "OptimizationJawTrackingUsedParameter",
        "OptimizationNormalTissueParameter",
    ]
    names = [type(o).__name__ for o in opened.stub.Plan.OptimizationSetup.Objectives]
    assert names == ["OptimizationPointObjective"] * 3
    nto = next(o for o in opened.session.get_objectives() if isinstance(o, NormalTissueObjective))
    assert nto == OBJECTIVES[3]
    opened.session.set_objectives(OBJECTIVES[:3])  # the NTO removed with RemoveParameter
    assert "OptimizationNormalTissueParameter" not in list(
        ns.StubFactory.ParameterKinds(opened.stub)
    )


def test_line_objectives_are_read_and_kept(opened: Opened) -> None:
    stub_namespace().StubFactory.AddLineObjective(
        opened.stub, "OAR", "Upper", [0.0, 20.0, 40.0], [100.0, 30.0, 0.0], 25.0
    )
    opened.session.set_objectives(OBJECTIVES)
    opened.session.set_objectives(OBJECTIVES[:2])
    line = [o for o in opened.raw("GetObjectives")["value"] if o["kind"] == "line"]
    assert len(line) == 1 and opened.session.line_objective_count() == 1
    assert line[0]["curve_dose_gy"] == pytest.approx([0.0, 20.0, 40.0])  # Gy in a cGy system too
    assert line[0]["curve_volume_pct"] == [100.0, 30.0, 0.0] and line[0]["priority"] == 25.0
    # not an objective of the port (doses through cGy: equal to 1e-10 Gy)
    got = [o.model_dump() for o in opened.session.get_objectives()]
    assert got == [pytest.approx(o.model_dump(), abs=1e-10) for o in OBJECTIVES[:2]]


def test_dvh_bin_width_is_converted_to_the_system_unit(cache_dir: Path) -> None:
    gy, cgy = Opened(cache_dir, "Gy"), Opened(cache_dir, "cGy")
    gy.plan_dose()
    cgy.plan_dose()
    # both stub plans show the dose of one simulated TPS
    cgy.backend.attach(gy.stub)
    raw_gy = gy.raw("GetDvh", "PTV", 0.01)["value"]
    raw_cgy = cgy.raw("GetDvh", "PTV", 0.01)["value"]
    # GetDVHCumulativeData's bin width is in the system unit: 0.01 Gy = 1 cGy
    assert (raw_gy["bin_width_system"], raw_cgy["bin_width_system"]) == (0.01, pytest.approx(1.0))
    assert raw_gy["dose_gy"] == pytest.approx(raw_cgy["dose_gy"], abs=1e-9)
    assert raw_gy["volume_pct"] == pytest.approx(raw_cgy["volume_pct"], abs=1e-9)
    steps = [b - a for a, b in zip(raw_cgy["dose_gy"], raw_cgy["dose_gy"][1:], strict=False)]
    assert steps == pytest.approx([0.01] * len(steps))
    curve = cgy.session.get_dvh("PTV")
    direct = cgy.mock.get_dvh("PTV")  # the same dose, straight from the simulated TPS
    for v in (2.0, 50.0, 95.0, 98.0):
        assert curve.dose_at_volume_pct(v) == pytest.approx(direct.dose_at_volume_pct(v), abs=0.01)
    assert curve.mean_dose_gy == pytest.approx(direct.mean_dose_gy, abs=1e-9)
    # point queries of the bridge in Gy and cm3
    d95 = cgy.session.dose_at_volume_gy("PTV", 95.0, VolumeUnit.PERCENT)
    assert d95 == pytest.approx(direct.dose_at_volume_pct(95.0), abs=0.01)
    v_cm3 = cgy.session.volume_at_dose("PTV", d95, VolumeUnit.CM3)
    assert v_cm3 == pytest.approx(0.95 * curve.volume_cm3, rel=0.01)


def test_a_null_dvh_is_an_error_not_a_zero_curve(opened: Opened) -> None:
    with pytest.raises(DoseUnavailable, match="GetDVHCumulativeData gave null"):
        opened.session.get_dvh("PTV")  # no dose yet
    opened.plan_dose()
    assert opened.session.get_dvh("PTV").max_dose_gy > RX
    opened.backend.dvh = lambda structure_id: None  # type: ignore[method-assign]
    opened.backend.attach(opened.stub)
    with pytest.raises(DoseUnavailable, match="null"):
        opened.session.get_dvh("OAR")
    with pytest.raises(EmptyStructure, match="Empty"):
        opened.session.get_dvh("Empty")


def test_normalization_set_twice_replaces_and_optimization_resets_it(opened: Opened) -> None:
    """``PlanNormalizationValue``: "the plan normalization value in percentage ... Double.NaN if
    it is not defined" (Varian's API doc comment); V shows the unnormalized dose times 100 / V,
    and setting 100 shows it unscaled (VarianAPIs/Varian-Code-Samples, Research Symposium 2015
    AutomatedPlanningDemo/PlanGeneration.cs; esimiele/VMAT-TBI-CSI, NormalizePlan). A successful
    optimization resets it to "no plan normalization" (docs/ESAPI.md)."""
    opened.plan_dose()
    assert math.isnan(opened.session.normalization_value_pct())
    unnormalized_d95 = opened.mock.get_dvh("PTV").dose_at_volume_pct(95.0)
    first = opened.session.normalize(D95)
    value = opened.session.normalization_value_pct()
    # value (%) = 100 * D95(unnormalized) / Rx; the dose shown scales by 100 / value
    assert value == pytest.approx(100.0 * unnormalized_d95 / RX, abs=0.02)
    assert first == pytest.approx(100.0 / value)
    assert opened.session.get_dvh("PTV").dose_at_volume_pct(95.0) == pytest.approx(RX, abs=0.01)
    again = opened.session.normalize(D95)  # relative to the unnormalized dose: no compounding
    assert again == pytest.approx(1.0, abs=1e-9)
    assert opened.session.normalization_value_pct() == pytest.approx(value, abs=1e-9)
    half = opened.session.normalize(D95.model_copy(update={"dose_gy": RX / 2}))
    assert half == pytest.approx(0.5) and opened.session.normalization_value_pct() == pytest.approx(
        2 * value
    )
    assert opened.session.get_dvh("PTV").dose_at_volume_pct(95.0) == pytest.approx(RX / 2, abs=0.01)
    # the simulated TPS, normalized by its own rule, agrees within a DVH bin
    opened.mock.normalize(D95)
    opened.session.normalize(D95)
    assert opened.session.get_dvh("PTV").dose_at_volume_pct(50.0) == pytest.approx(
        opened.mock.get_dvh("PTV").dose_at_volume_pct(50.0), abs=0.02
    )
    opened.session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
    assert math.isnan(opened.session.normalization_value_pct())


def test_optimizer_failures_are_mapped(opened: Opened) -> None:
    with pytest.raises(OptimizationFailed, match="no optimization objectives"):
        opened.session.optimize(OptimizeRequest())
    opened.session.set_objectives(OBJECTIVES)
    opened.backend.fail_next = "Optimization stopped: license unavailable"
    with pytest.raises(OptimizationFailed, match="InvalidOperationException: Optimization stopped"):
        opened.session.optimize(OptimizeRequest())
    opened.backend.report_failure = True
    with pytest.raises(OptimizationFailed, match="no success"):
        opened.session.optimize(OptimizeRequest())
    with pytest.raises(OptimizationFailed, match="optimized IMRT fluence"):
        opened.session.calculate_dose()


def test_esapi_exceptions_come_back_typed(opened: Opened) -> None:
    opened.plan_dose()

    def broken(structure_id: str) -> str:
        raise RuntimeError("dose matrix unreadable")

    opened.backend.dvh = broken  # type: ignore[method-assign]
    opened.backend.attach(opened.stub)
    with pytest.raises(TpsError, match="dose matrix unreadable") as info:
        opened.session.get_dvh("PTV")
    assert "PythonException" in str(info.value)  # the .NET exception type, caught in C#
    with pytest.raises(UnknownStructure) as unknown:
        opened.session.set_objectives(
            [OBJECTIVES[0].model_copy(update={"structure_id": "Bladder"})]
        )
    assert unknown.value.structure_id == "Bladder" and "PTV" in unknown.value.available
    assert len(opened.session.get_objectives()) == 4  # all-or-nothing


def test_locked_plans_and_modifications(opened: Opened) -> None:
    ns = stub_namespace()
    ns.StubFactory.EndModifications(opened.stub)
    opened.session.set_objectives(OBJECTIVES)  # the bridge calls BeginModifications first
    assert opened.stub.Patient.CanModifyData()
    ns.StubFactory.SetApprovalStatus(opened.stub, "PlanningApproved")
    with pytest.raises(PlanLocked, match="PlanningApproved"):
        opened.session.set_objectives(OBJECTIVES[:1])
    with pytest.raises(PlanLocked):
        opened.session.optimize(OptimizeRequest())
    assert opened.session.plan_info().approval_status.value == "PlanningApproved"


def test_a_call_from_another_thread_is_refused(opened: Opened) -> None:
    outcome: dict[str, Any] = {}

    def other() -> None:
        outcome["thread"] = current_managed_thread_id()
        try:
            opened.session.plan_info()
        except WrongThread as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=other)
    worker.start()
    worker.join(30)
    assert outcome["thread"] != opened.bridge.OwnerThreadId
    assert "created on managed thread" in str(outcome["error"])
    assert opened.session.plan_info().fractions == 30  # the owner thread still works


def test_imrt_and_vmat_take_their_own_paths(cache_dir: Path) -> None:
    imrt = Opened(cache_dir, "Gy")
    imrt.session.set_objectives(OBJECTIVES)
    result = imrt.session.optimize(
        OptimizeRequest(max_iterations=40, mode=OptimizationMode.RESTART)
    )
    assert result.message == "Optimize(int, OptimizationOption)" and result.success
    assert (
        imrt.backend.requests[-1]["vmat"] is False
        and imrt.backend.requests[-1]["max_iterations"] == 40
    )
    assert set(result.structure_objective_values) <= {"PTV", "OAR", "BODY"}
    vmat = Opened(cache_dir, "cGy", vmat=True)
    vmat.session.set_objectives(OBJECTIVES)
    assert vmat.session.optimize(OptimizeRequest()).message == "OptimizeVMAT()"
    vmat.session.calculate_dose()  # CalculateDose(), no leaf motions for VMAT
    vmat.bridge.MlcId = "MLC-120"
    continued = vmat.session.optimize(OptimizeRequest(mode=OptimizationMode.CONTINUE))
    assert continued.message == "OptimizeVMAT(OptimizationOptionsVMAT)"
    assert vmat.backend.requests[-1]["option"] == "ContinueOptimization"
    assert vmat.backend.requests[-1]["vmat"] is True


def test_the_hosted_entry_never_loads_a_runtime(tmp_path: Path, mocker: Any) -> None:
    from esapi_bridge.esapi import runtime

    standalone = stub_assemblies()
    load = mocker.patch("pythonnet.load", side_effect=AssertionError("load() called"))
    hosted = runtime.attach_hosted()  # the plugin has loaded the runtime and the assemblies
    assert hosted.plan_bridge_type is standalone.plan_bridge_type and hosted.runtime == "hosted"
    standalone_dir = build_dir()
    again = runtime.load_standalone(standalone_dir, runtime="mono")
    assert again.runtime == "mono" and load.call_count == 0  # loaded once per process
    assert standalone_dir.is_dir()
    with pytest.raises(TpsUnavailable, match=r"Rtplan\.Missing"):
        runtime.load_standalone(tmp_path, extra_assemblies=["Rtplan.Missing"])
