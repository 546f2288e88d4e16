"""Helpers of the C# layer's tests: the Mono build, the stub plan, and mock_tps behind the stubs.

``stub_assemblies()`` builds what ``make plugin`` builds (when missing or stale) and loads it
on Mono through :func:`esapi_bridge.esapi.runtime.load_standalone`, once per process.
:class:`MockBackend` answers the stubs' optimizer, dose and DVH callbacks with a
:class:`mock_tps.session.MockTpsSession`, so real dose flows through the C# layer.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from esapi_bridge.dto import (
    NormalizationMode,
    NormalizationRule,
    OptimizationMode,
    OptimizeRequest,
)
from esapi_bridge.errors import DoseUnavailable, TpsError
from esapi_bridge.esapi.runtime import BridgeAssemblies, load_standalone
from esapi_bridge.esapi.session import objective_from_record
from mock_tps.session import MockTpsSession

ROOT = Path(__file__).resolve().parents[2]
TESTING_ASSEMBLY = "Rtplan.EsapiStubs.Testing"
PLUGIN_ASSEMBLY = "RtPlanAgent.esapi"


@functools.cache
def build_module() -> Any:
    """``plugin_csharp/build_mono.py`` as a module (it is a script, not a package)."""
    path = ROOT / "plugin_csharp" / "build_mono.py"
    spec = importlib.util.spec_from_file_location("build_mono", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def build_dir() -> Path:
    """The Mono build's output folder, built when missing or stale (as ``make plugin``)."""
    return Path(build_module().build())


@functools.cache
def stub_assemblies() -> BridgeAssemblies:
    """Build (if needed) and load the stubs, their test assembly and the bridge on Mono."""
    return load_standalone(build_dir(), runtime="mono", extra_assemblies=[TESTING_ASSEMBLY])


@functools.cache
def plugin_assemblies() -> BridgeAssemblies:
    """The stubs, the bridge and the plugin (``RtPlanAgent.esapi``) loaded in this process."""
    return load_standalone(
        build_dir(), runtime="mono", extra_assemblies=[TESTING_ASSEMBLY, PLUGIN_ASSEMBLY]
    )


def stub_namespace() -> Any:
    """The ``Rtplan.EsapiStubs.Testing`` namespace (StubFactory, handler delegate types)."""
    stub_assemblies()
    from Rtplan.EsapiStubs import Testing

    return Testing


class MockBackend:
    """The stubs' optimizer, dose calculation and DVHs, answered by a ``MockTpsSession``.

    ``fail_next`` makes the next optimization throw (as ESAPI does) with that message;
    ``report_failure`` makes it return an ``OptimizerResult`` with ``Success`` false.
    """

    def __init__(self, mock: MockTpsSession, *, target_id: str) -> None:
        self.mock = mock
        self.target_id = target_id
        self.requests: list[dict[str, Any]] = []
        self.fail_next: str | None = None
        self.report_failure = False
        self.dose_calls = 0

    def optimize(self, request_json: str) -> str:
        request = json.loads(request_json)
        self.requests.append(request)
        if self.fail_next is not None:
            message, self.fail_next = self.fail_next, None
            return json.dumps({"success": False, "total": 0, "iterations": 0, "error": message})
        if self.report_failure:
            return json.dumps({"success": False, "total": 0, "iterations": 0, "error": None})
        # the stubs' request uses the bridge's objective records (Gy); line objectives are skipped
        read = (objective_from_record(o) for o in request["objectives"])
        objectives = [o for o in read if o is not None]
        self.mock.set_objectives(objectives)
        mode = (
            OptimizationMode.RESTART
            if request["option"] == "RestartOptimization"
            else OptimizationMode.CONTINUE
        )
        norm = request["normalization_value_pct"]
        if mode is OptimizationMode.CONTINUE and norm is not None:
            # continue from the fluence as normalized (the simulated TPS scales it when it normalizes)
            mean = self.mock.get_dvh(self.target_id).mean_dose_gy
            self.mock.normalize(
                NormalizationRule(
                    mode=NormalizationMode.MEAN,
                    structure_id=self.target_id,
                    dose_gy=mean * 100.0 / norm,
                )
            )
        limit = request["max_iterations"]
        args = {"mode": mode} | ({"max_iterations": limit} if limit > 0 else {})
        try:
            result = self.mock.optimize(OptimizeRequest(**args))
        except TpsError as exc:
            return json.dumps({"success": False, "total": 0, "iterations": 0, "error": str(exc)})
        return json.dumps(
            {
                "success": result.success,
                "total": result.total_objective_value,
                "iterations": result.iterations,
                "structure_values": [
                    {"structure_id": k, "value": v}
                    for k, v in result.structure_objective_values.items()
                ],
                "error": None,
            }
        )

    def calculate_dose(self) -> bool:
        self.dose_calls += 1
        self.mock.calculate_dose()
        return True

    def dvh(self, structure_id: str) -> str | None:
        try:
            curve = self.mock.get_dvh(structure_id)
        except DoseUnavailable:
            return None
        return json.dumps(
            {
                "dose_gy": curve.dose_gy,
                "volume_pct": curve.volume_pct,
                "min_gy": curve.min_dose_gy,
                "mean_gy": curve.mean_dose_gy,
                "max_gy": curve.max_dose_gy,
            }
        )

    def attach(self, stub_plan: Any) -> None:
        """Set this backend's methods as the stub plan's handlers."""
        ns = stub_namespace()
        ns.StubFactory.SetHandlers(
            stub_plan,
            ns.OptimizeHandler(self.optimize),
            ns.DoseHandler(self.calculate_dose),
            ns.DvhHandler(self.dvh),
        )


def stub_plan_for(
    mock: MockTpsSession,
    *,
    dose_unit: str,
    vmat: bool = False,
) -> tuple[Any, MockBackend]:
    """A stub plan mirroring a simulated case (structures, prescription, beams), wired to it.

    ``vmat`` makes it a VMAT plan of the stubs whatever the case's technique (the dose engine
    behind stays the same).
    """
    ns = stub_namespace()
    info = mock.plan_info()
    plan = ns.StubFactory.CreatePlan(
        "PLAN-1",
        vmat or info.technique.value == "VMAT",
        dose_unit,
        float(info.dose_per_fraction_gy),
        int(info.fractions),
        int(info.beam_count),
    )
    for s in mock.structures():
        ns.StubFactory.AddStructure(
            plan, s.structure_id, s.dicom_type, float(s.volume_cm3), bool(s.is_empty)
        )
    backend = MockBackend(mock, target_id=mock.case.prescription.target_id)
    backend.attach(plan)
    return plan, backend
