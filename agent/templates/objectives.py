"""Optimization objectives of a site template (TPPs) and the ranges a policy may move them in."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer

from agent.templates.metric import Metric, Quantity, parse_metric, parse_quantity
from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
)
from rtplan_common.models import FrozenModel, Identifier, SafeText


def _to_metric(value: Any) -> Any:
    return parse_metric(value) if isinstance(value, str) else value


def _to_quantity(value: Any) -> Any:
    return parse_quantity(value)


MetricField = Annotated[Metric, BeforeValidator(_to_metric), PlainSerializer(str)]
QuantityField = Annotated[Quantity, BeforeValidator(_to_quantity), PlainSerializer(str)]
Bounds = tuple[float, float]
QuantityBounds = tuple[QuantityField, QuantityField]

# the values each TPP may take (those of the port's DTOs)
VolumePct = Annotated[float, Field(ge=0.0, le=100.0)]
PriorityValue = Annotated[float, Field(ge=0.0, le=1000.0)]
ParameterA = Annotated[float, Field(ge=-100.0, le=100.0)]
DistanceMm = Annotated[float, Field(ge=0.0, le=100.0)]
DosePct = Annotated[float, Field(ge=0.0, le=200.0)]
FallOff = Annotated[float, Field(ge=0.0, le=10.0)]


class Spec(FrozenModel):
    """Base of template models: frozen; unknown fields, NaN and infinity refused; names checked."""


class TppRangeSpec(Spec):
    """Bounds a policy may move an objective's parameters in (as written in the template)."""

    dose: QuantityBounds | None = None
    volume_pct: tuple[VolumePct, VolumePct] | None = None
    priority: tuple[PriorityValue, PriorityValue] | None = None
    parameter_a: tuple[ParameterA, ParameterA] | None = None
    distance_from_target_border_mm: tuple[DistanceMm, DistanceMm] | None = None
    start_dose_pct: tuple[DosePct, DosePct] | None = None
    end_dose_pct: tuple[DosePct, DosePct] | None = None
    fall_off: tuple[FallOff, FallOff] | None = None


class TppRange(Spec):
    """Resolved bounds (absolute Gy) of an objective's TPPs; ``None`` = the policy may not move it."""

    dose_gy: Bounds | None = None
    volume_pct: Bounds | None = None
    priority: Bounds | None = None
    parameter_a: Bounds | None = None
    distance_from_target_border_mm: Bounds | None = None
    start_dose_pct: Bounds | None = None
    end_dose_pct: Bounds | None = None
    fall_off: Bounds | None = None


class ObjectiveSpec(Spec):
    """An initial optimization objective (the DTO kinds point / mean / geud / nto) and its range."""

    kind: Literal["point", "mean", "geud", "nto"]
    structure: Identifier | None = None
    operator: ObjectiveOperator | None = None
    dose: QuantityField | None = None
    volume_pct: VolumePct | None = None
    priority: PriorityValue
    parameter_a: ParameterA | None = None
    distance_from_target_border_mm: DistanceMm | None = None
    start_dose_pct: DosePct | None = None
    end_dose_pct: DosePct | None = None
    fall_off: FallOff | None = None
    range: TppRangeSpec = TppRangeSpec()
    note: SafeText = ""

    def to_objective(self, structure_id: str | None, rx_gy: float) -> Objective:
        """The DTO objective on plan structure ``structure_id`` with doses resolved at ``rx_gy``."""
        dose_gy = self.dose.resolve("Gy", rx_gy) if self.dose is not None else 0.0
        sid = structure_id or ""
        if self.kind == "point":
            assert self.operator is not None and self.volume_pct is not None
            return PointObjective(
                structure_id=sid,
                operator=self.operator,
                dose_gy=dose_gy,
                volume_pct=self.volume_pct,
                priority=self.priority,
            )
        if self.kind == "mean":
            return MeanDoseObjective(structure_id=sid, dose_gy=dose_gy, priority=self.priority)
        if self.kind == "geud":
            assert self.operator is not None and self.parameter_a is not None
            return EudObjective(
                structure_id=sid,
                operator=self.operator,
                dose_gy=dose_gy,
                parameter_a=self.parameter_a,
                priority=self.priority,
            )
        return NormalTissueObjective(
            priority=self.priority,
            distance_from_target_border_mm=self.distance_from_target_border_mm or 0.0,
            start_dose_pct=self.start_dose_pct or 0.0,
            end_dose_pct=self.end_dose_pct or 0.0,
            fall_off=self.fall_off or 0.0,
        )

    def resolved_range(self, rx_gy: float) -> TppRange:
        """The TPP range with dose bounds in Gy at ``rx_gy``."""
        r = self.range
        dose = None
        if r.dose is not None:
            dose = (r.dose[0].resolve("Gy", rx_gy), r.dose[1].resolve("Gy", rx_gy))
        return TppRange(
            dose_gy=dose,
            volume_pct=r.volume_pct,
            priority=r.priority,
            parameter_a=r.parameter_a,
            distance_from_target_border_mm=r.distance_from_target_border_mm,
            start_dose_pct=r.start_dose_pct,
            end_dose_pct=r.end_dose_pct,
            fall_off=r.fall_off,
        )
