"""``EsapiSession``: the ``TpsSession`` port over the C# ``PlanBridge``.

Python never touches an ESAPI object: every call goes to a ``PlanBridge`` method, which answers
with a JSON envelope in Gy and percent. Errors are mapped in :mod:`esapi_bridge.esapi.error_map`.
The session must be used from the thread that created its bridge (the bridge refuses others).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

from esapi_bridge.dto import (
    ApprovalStatus,
    BackendInfo,
    CaseSource,
    CaseSourceKind,
    DoseSlice,
    DvhCurve,
    EudObjective,
    MeanDoseObjective,
    NormalizationMode,
    NormalizationRule,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    OptimizationResult,
    OptimizeRequest,
    PlanInfo,
    PointObjective,
    SlicePlane,
    StructureInfo,
    Technique,
    VolumeUnit,
)
from esapi_bridge.errors import (
    CapabilityUnavailable,
    DoseUnavailable,
    InvalidObjective,
    OptimizationFailed,
)
from esapi_bridge.esapi.error_map import dotnet_boundary, port_values, raise_for_error

#: Default DVH bin width (Gy), converted to the system unit by the bridge.
DEFAULT_DVH_BIN_GY = 0.01

_OPERATORS = {
    "Upper": ObjectiveOperator.UPPER,
    "Lower": ObjectiveOperator.LOWER,
    "Exact": ObjectiveOperator.EXACT,
}
_OPERATOR_NAMES = {v: k for k, v in _OPERATORS.items()}
_APPROVAL = {s.value: s for s in ApprovalStatus}


def _approval(name: str) -> ApprovalStatus:
    """ESAPI's ``PlanSetupApprovalStatus`` name as the port's status.

    The port names five statuses; the others (Rejected, Completed, CompletedEarly,
    UnPlannedTreatment, ExternallyApproved, Unknown) are all locked and read as ``Retired``.
    """
    return _APPROVAL.get(name, ApprovalStatus.RETIRED)


def _pseudonym(plan_id: str) -> str:
    """A stable label of the plan that does not carry its Eclipse id into journals or prompts."""
    return "esapi-plan-" + hashlib.sha256(plan_id.encode("utf-8")).hexdigest()[:10]


def objective_from_record(data: dict[str, Any]) -> Objective | None:
    """One objective record of the bridge (doses in Gy) as a DTO; ``None`` for a line objective.

    Line objectives stay in the plan: the port has no kind for them.
    """
    kind = data["kind"]
    if kind == "line":
        return None
    if kind == "nto":
        return NormalTissueObjective(
            priority=data["priority"],
            distance_from_target_border_mm=data.get("distance_from_target_border_mm", 0.0),
            start_dose_pct=data.get("start_dose_pct", 0.0),
            end_dose_pct=data.get("end_dose_pct", 0.0),
            fall_off=data.get("fall_off", 0.0),
        )
    sid, op = data["structure_id"], data.get("operator", "None")
    common: dict[str, Any] = {
        "structure_id": sid,
        "dose_gy": data["dose_gy"],
        "priority": data["priority"],
    }
    if kind == "mean":
        if op not in ("None", "Upper"):
            raise InvalidObjective(
                f"mean objective on {sid!r} with operator {op}: the port has none"
            )
        return MeanDoseObjective(**common)
    if op not in _OPERATORS:
        raise InvalidObjective(f"{kind} objective on {sid!r} has operator {op}: the port has none")
    if kind == "point":
        return PointObjective(**common, operator=_OPERATORS[op], volume_pct=data["volume_pct"])
    if kind == "geud":
        return EudObjective(**common, operator=_OPERATORS[op], parameter_a=data["parameter_a"])
    raise InvalidObjective(f"objective kind {kind!r} on {sid!r} is not known to the port")


def _objective_to_bridge(objective: Objective) -> dict[str, Any]:
    """A DTO as the bridge's objective record (doses in Gy)."""
    if isinstance(objective, NormalTissueObjective):
        return {
            "kind": "nto",
            "priority": objective.priority,
            "is_automatic": False,
            "distance_from_target_border_mm": objective.distance_from_target_border_mm,
            "start_dose_pct": objective.start_dose_pct,
            "end_dose_pct": objective.end_dose_pct,
            "fall_off": objective.fall_off,
        }
    out: dict[str, Any] = {
        "kind": objective.kind,
        "structure_id": objective.structure_id,
        "dose_gy": objective.dose_gy,
        "priority": objective.priority,
    }
    if isinstance(objective, PointObjective):
        out |= {"operator": _OPERATOR_NAMES[objective.operator], "volume_pct": objective.volume_pct}
    elif isinstance(objective, EudObjective):
        out |= {
            "operator": _OPERATOR_NAMES[objective.operator],
            "parameter_a": objective.parameter_a,
        }
    return out


class EsapiSession:
    """One plan open in Eclipse (or in the ESAPI stubs), through a ``PlanBridge``.

    Parameters
    ----------
    bridge
        A ``Rtplan.Bridge.PlanBridge`` (.NET object), made by the plugin (hosted) or by
        :meth:`esapi_bridge.esapi.runtime.BridgeAssemblies.new_bridge` (standalone).
    dvh_bin_width_gy
        Bin width of the DVH curves (Gy; the bridge converts it to the system unit).
    """

    def __init__(self, bridge: Any, *, dvh_bin_width_gy: float = DEFAULT_DVH_BIN_GY) -> None:
        if not 0.0 < dvh_bin_width_gy <= 1.0:
            raise ValueError(f"dvh_bin_width_gy must be within (0, 1] Gy, got {dvh_bin_width_gy}")
        self._bridge = bridge
        self._bin_gy = float(dvh_bin_width_gy)

    def _call(self, method: str, *args: Any) -> Any:
        """Call one bridge method and return the envelope's value (or raise the mapped error)."""
        with dotnet_boundary(method):
            answer = str(getattr(self._bridge, method)(*args))
        envelope = json.loads(answer)
        if not envelope.get("ok"):
            raise_for_error(envelope.get("error") or {})
        return envelope.get("value")

    # ----------------------------------------------------------------- plan
    def plan_info(self) -> PlanInfo:
        """Technique, prescription (Gy), system dose unit and approval; the plan id pseudonymized."""
        info = self._call("PlanInfo")
        with port_values("PlanInfo"):
            return self._plan_info(info)

    @staticmethod
    def _plan_info(info: dict[str, Any]) -> PlanInfo:
        return PlanInfo(
            plan_id=_pseudonym(info["plan_id"]),
            technique=Technique(info["technique"]),
            total_dose_gy=info["total_dose_gy"],
            fractions=info["fractions"],
            dose_unit=info["dose_unit"],
            approval_status=_approval(info["approval_status"]),
            beam_count=info["beam_count"],
            backend=BackendInfo(name="esapi", case_source=CaseSource(kind=CaseSourceKind.ESAPI)),
        )

    def normalization_value_pct(self) -> float:
        """``PlanSetup.PlanNormalizationValue`` (percent; NaN: no plan normalization)."""
        value = self._call("PlanInfo")["normalization_value_pct"]
        return math.nan if value is None else float(value)

    def structures(self) -> list[StructureInfo]:
        """Every structure of the plan's structure set."""
        answer = self._call("Structures")
        with port_values("Structures"):
            return [
                StructureInfo(
                    structure_id=s["structure_id"],
                    dicom_type=s["dicom_type"] or "NONE",
                    volume_cm3=s["volume_cm3"],
                    is_empty=s["is_empty"],
                )
                for s in answer
            ]

    # ----------------------------------------------------------- objectives
    def get_objectives(self) -> list[Objective]:
        """Point, mean and gEUD objectives and the NTO; line objectives stay in the plan unread."""
        out = []
        for data in self._call("GetObjectives"):
            with port_values("GetObjectives", InvalidObjective):
                objective = objective_from_record(data)
            if objective is not None:
                out.append(objective)
        return out

    def line_objective_count(self) -> int:
        """How many line objectives the plan holds (kept by :meth:`set_objectives`)."""
        return sum(1 for d in self._call("GetObjectives") if d["kind"] == "line")

    def set_objectives(self, objectives: Sequence[Objective]) -> None:
        """Replace the objectives and the NTO (all-or-nothing, in the bridge)."""
        payload = json.dumps([_objective_to_bridge(o) for o in objectives])
        self._call("SetObjectives", payload)

    # --------------------------------------------------------- optimization
    def optimize(self, request: OptimizeRequest) -> OptimizationResult:
        """IMRT: ``Optimize(int, OptimizationOption)``; VMAT: ``OptimizeVMAT``."""
        value = self._call("Optimize", int(request.max_iterations), request.mode.value)
        with port_values("Optimize", OptimizationFailed):
            return OptimizationResult(
                success=value["success"],
                total_objective_value=value["total_objective_value"],
                structure_objective_values={
                    v["structure_id"]: v["value"] for v in value["structure_values"]
                },
                iterations=value["iterations"],
                wall_time_s=value["wall_time_s"],
                message=value["path"],
            )

    def calculate_dose(self) -> None:
        """IMRT: ``CalculateLeafMotionsAndDose()``; VMAT: ``CalculateDose()``."""
        self._call("CalculateDose")

    def normalize(self, rule: NormalizationRule) -> float:
        """Set ``PlanNormalizationValue`` so the rule holds; the factor relative to the shown dose."""
        mode = "none" if rule.mode is NormalizationMode.NONE else rule.mode.value
        value = self._call(
            "Normalize", rule.structure_id, mode, float(rule.dose_gy), float(rule.volume_pct)
        )
        return float(value["factor"])

    # ------------------------------------------------------------------ dose
    def get_dvh(self, structure_id: str) -> DvhCurve:
        """Cumulative DVH (Gy, %) from ``GetDVHCumulativeData``; a null DVH is an error."""
        value = self._call("GetDvh", structure_id, self._bin_gy)
        with port_values("GetDvh", DoseUnavailable):
            return DvhCurve(
                structure_id=value["structure_id"],
                volume_cm3=value["volume_cm3"],
                dose_gy=value["dose_gy"],
                volume_pct=value["volume_pct"],
                min_dose_gy=value["min_dose_gy"],
                mean_dose_gy=value["mean_dose_gy"],
                max_dose_gy=value["max_dose_gy"],
            )

    def dose_at_volume_gy(self, structure_id: str, volume: float, unit: VolumeUnit) -> float:
        """``GetDoseAtVolume``: dose (Gy) of the hottest ``volume`` (% or cm3)."""
        return float(self._call("DoseAtVolume", structure_id, float(volume), unit.value)["number"])

    def volume_at_dose(self, structure_id: str, dose_gy: float, unit: VolumeUnit) -> float:
        """``GetVolumeAtDose``: volume (% or cm3) receiving at least ``dose_gy``."""
        return float(self._call("VolumeAtDose", structure_id, float(dose_gy), unit.value)["number"])

    def dose_slice(self, plane: SlicePlane, index: int | None = None) -> DoseSlice:
        """Not offered by the bridge yet."""
        raise CapabilityUnavailable("dose slices are not available through the ESAPI bridge")
