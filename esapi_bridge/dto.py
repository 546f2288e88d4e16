"""Data transfer objects of the ``TpsSession`` port.

Every value that crosses the port is one of these pydantic models. Units are in
the field names (``dose_gy``, ``volume_pct``, ``volume_cm3``, ``distance_mm``);
doses are always absolute and in Gy at the port, whatever the backend uses.
"""

from __future__ import annotations

import itertools
import math
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from rtplan_common.models import FrozenModel, Identifier, Key, SafeText

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]
Priority = Annotated[float, Field(ge=0.0, le=1000.0, allow_inf_nan=False)]


class _Frozen(FrozenModel):
    """Base of every DTO: frozen; unknown fields, NaN and infinity refused; names checked."""


class Technique(StrEnum):
    """Delivery technique of a plan."""

    IMRT = "IMRT"
    VMAT = "VMAT"


class ApprovalStatus(StrEnum):
    """Plan approval status (ESAPI ``PlanSetupApprovalStatus`` names)."""

    UNAPPROVED = "UnApproved"
    REVIEWED = "Reviewed"
    PLANNING_APPROVED = "PlanningApproved"
    TREATMENT_APPROVED = "TreatmentApproved"
    RETIRED = "Retired"

    @property
    def is_locked(self) -> bool:
        """Whether objectives may no longer be changed in this status."""
        return self is not ApprovalStatus.UNAPPROVED


class CaseSourceKind(StrEnum):
    """Where a plan's case comes from."""

    SCENARIO = "scenario"  # a generated phantom (scenario name and seed)
    TG119 = "tg119"  # the AAPM TG-119 phantom file
    OPENKBP = "openkbp"  # a case of the public OpenKBP data set
    DICOM = "dicom"  # CT + RTSTRUCT files
    ESAPI = "esapi"  # a plan open in Eclipse


class CaseSource(_Frozen):
    """A case's origin: a kind and a content hash, never a path, folder or patient name.

    ``name`` and ``seed`` identify generated and public cases only (``"prostate-basic"``,
    ``"tg119"``); ``content_hash`` is a hex digest of the case's content: the sha256 of the
    file for file-based sources, a geometry hash for a generated phantom.
    """

    kind: CaseSourceKind
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] | None = None
    seed: int | None = None
    content_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16,64}$")] | None = None


class BackendInfo(_Frozen):
    """What answers the port: backend name, dose-engine version and the case's source."""

    name: str  # "mock_tps", "esapi"
    engine_version: str | None = None
    case_source: CaseSource | None = None


class PlanInfo(_Frozen):
    """Identity and prescription of the plan being optimized.

    ``backend`` (optional) describes the TPS behind the port, for the session's journal.
    """

    plan_id: Identifier
    technique: Technique
    total_dose_gy: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    fractions: Annotated[int, Field(ge=1)]
    dose_unit: Literal["Gy", "cGy"] = "Gy"
    approval_status: ApprovalStatus = ApprovalStatus.UNAPPROVED
    beam_count: Annotated[int, Field(ge=0)] = 0
    backend: BackendInfo | None = None

    @property
    def dose_per_fraction_gy(self) -> float:
        """Prescribed dose per fraction."""
        return self.total_dose_gy / self.fractions


class StructureInfo(_Frozen):
    """A structure of the plan's structure set."""

    structure_id: Identifier
    dicom_type: Identifier  # PTV, CTV, GTV, ORGAN, EXTERNAL, AVOIDANCE, CONTROL, ...
    volume_cm3: NonNegFloat
    is_empty: bool = False


class ObjectiveOperator(StrEnum):
    """``OptimizationObjectiveOperator`` of ESAPI (Upper = 0, Lower = 1, Exact = 2)."""

    UPPER = "upper"
    LOWER = "lower"
    EXACT = "exact"


class PointObjective(_Frozen):
    """DVH point objective: at most (upper) / at least (lower) ``volume_pct`` above ``dose_gy``."""

    kind: Literal["point"] = "point"
    structure_id: Identifier
    operator: ObjectiveOperator
    dose_gy: NonNegFloat
    volume_pct: Percent
    priority: Priority


class MeanDoseObjective(_Frozen):
    """Upper mean-dose objective (ESAPI ``AddMeanDoseObjective``)."""

    kind: Literal["mean"] = "mean"
    structure_id: Identifier
    operator: Literal[ObjectiveOperator.UPPER] = ObjectiveOperator.UPPER
    dose_gy: NonNegFloat
    priority: Priority


class EudObjective(_Frozen):
    """Generalized EUD objective with volume-effect parameter ``parameter_a``."""

    kind: Literal["geud"] = "geud"
    structure_id: Identifier
    operator: ObjectiveOperator
    dose_gy: NonNegFloat
    parameter_a: FiniteFloat
    priority: Priority

    @field_validator("parameter_a")
    @classmethod
    def _a_nonzero(cls, value: float) -> float:
        if value == 0.0 or abs(value) > 100.0:
            raise ValueError("parameter_a must be non-zero and within -100..100")
        return value


class NormalTissueObjective(_Frozen):
    """Normal tissue objective (ESAPI ``AddNormalTissueObjective``).

    Outside ``distance_from_target_border_mm`` the allowed dose falls from
    ``start_dose_pct`` to ``end_dose_pct`` of the prescription with ``fall_off`` (1/mm).
    """

    kind: Literal["nto"] = "nto"
    priority: Priority
    distance_from_target_border_mm: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]
    start_dose_pct: Annotated[float, Field(ge=0.0, le=200.0, allow_inf_nan=False)]
    end_dose_pct: Annotated[float, Field(ge=0.0, le=200.0, allow_inf_nan=False)]
    fall_off: Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _end_below_start(self) -> NormalTissueObjective:
        if self.end_dose_pct > self.start_dose_pct:
            raise ValueError("end_dose_pct must not exceed start_dose_pct")
        return self


Objective = Annotated[
    PointObjective | MeanDoseObjective | EudObjective | NormalTissueObjective,
    Field(discriminator="kind"),
]


def objective_key(objective: Objective) -> str:
    """A stable, human-readable key of an objective (structure, kind, operator, volume)."""
    if isinstance(objective, NormalTissueObjective):
        return "NTO"
    if isinstance(objective, PointObjective):
        return f"{objective.structure_id}:point:{objective.operator.value}:{objective.volume_pct:g}"
    return f"{objective.structure_id}:{objective.kind}:{objective.operator.value}"


class OptimizationMode(StrEnum):
    """``OptimizationOption``: restart from scratch or continue from the current fluence."""

    RESTART = "restart"
    CONTINUE = "continue"


class OptimizeRequest(_Frozen):
    """Arguments of one optimization (``Optimize`` for IMRT, ``OptimizeVMAT`` for VMAT)."""

    max_iterations: Annotated[int, Field(ge=1, le=10_000)] = 200
    mode: OptimizationMode = OptimizationMode.CONTINUE


class ObjectiveValue(_Frozen):
    """Value of one objective after optimization (``objective_key`` identifies it)."""

    key: Key
    structure_id: Identifier | None
    value: NonNegFloat


class OptimizationResult(_Frozen):
    """What ESAPI's ``OptimizerResult`` reports, plus wall time."""

    success: bool
    total_objective_value: NonNegFloat
    structure_objective_values: dict[Identifier, NonNegFloat]
    objective_values: list[ObjectiveValue] = Field(default_factory=list)
    iterations: Annotated[int, Field(ge=0)]
    wall_time_s: NonNegFloat
    message: SafeText = ""


class NormalizationMode(StrEnum):
    """How the plan is normalized after optimization."""

    DOSE_AT_VOLUME = "dose_at_volume"  # e.g. PTV D95 = Rx
    MEAN = "mean"  # structure mean = Rx
    NONE = "none"


class NormalizationRule(_Frozen):
    """Scale the dose so that ``structure_id`` receives ``dose_gy`` at ``volume_pct`` (or as mean)."""

    mode: NormalizationMode = NormalizationMode.DOSE_AT_VOLUME
    structure_id: Identifier
    dose_gy: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    volume_pct: Percent = 95.0


class VolumeUnit(StrEnum):
    """``VolumePresentation``: relative (%) or absolute (cm3)."""

    PERCENT = "percent"
    CM3 = "cm3"


class DvhCurve(_Frozen):
    """Cumulative DVH of one structure: ``volume_pct[i]`` of the volume receives >= ``dose_gy[i]``.

    Doses ascend from 0; volumes are non-increasing from 100. Point queries
    interpolate linearly between curve points, as a TPS does.
    """

    structure_id: Identifier
    volume_cm3: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    dose_gy: list[float]
    volume_pct: list[float]
    min_dose_gy: NonNegFloat
    mean_dose_gy: NonNegFloat
    max_dose_gy: NonNegFloat

    @model_validator(mode="after")
    def _monotone(self) -> DvhCurve:
        d, v = self.dose_gy, self.volume_pct
        if len(d) != len(v) or len(d) < 2:
            raise ValueError("dose_gy and volume_pct must have the same length (>= 2)")
        if any(not math.isfinite(x) for x in d) or any(not math.isfinite(x) for x in v):
            raise ValueError("DVH contains non-finite values")
        if any(b < a for a, b in itertools.pairwise(d)):
            raise ValueError("dose_gy must be non-decreasing")
        if any(b > a + 1e-9 for a, b in itertools.pairwise(v)):
            raise ValueError("volume_pct must be non-increasing")
        return self

    def volume_pct_at_dose(self, dose_gy: float) -> float:
        """Percentage of the structure receiving at least ``dose_gy``."""
        d, v = self.dose_gy, self.volume_pct
        if dose_gy <= d[0]:
            return v[0]
        if dose_gy >= d[-1]:
            return v[-1] if dose_gy <= d[-1] else 0.0
        lo, hi = 0, len(d) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if d[mid] <= dose_gy:
                lo = mid
            else:
                hi = mid
        span = d[hi] - d[lo]
        t = 0.0 if span <= 0 else (dose_gy - d[lo]) / span
        return v[lo] + t * (v[hi] - v[lo])

    def volume_cm3_at_dose(self, dose_gy: float) -> float:
        """Absolute volume (cm3) receiving at least ``dose_gy``."""
        return self.volume_pct_at_dose(dose_gy) / 100.0 * self.volume_cm3

    def dose_at_volume_pct(self, volume_pct: float) -> float:
        """Minimum dose received by the hottest ``volume_pct`` % of the structure (D_x%)."""
        if not 0.0 <= volume_pct <= 100.0:
            raise ValueError(f"volume_pct must be within 0..100, got {volume_pct}")
        if volume_pct <= 0.0:
            return self.max_dose_gy
        if volume_pct >= 100.0:
            return self.min_dose_gy
        d, v = self.dose_gy, self.volume_pct
        # v is non-increasing: find the last index with v >= volume_pct
        lo, hi = 0, len(v) - 1
        if v[hi] >= volume_pct:
            return min(d[hi], self.max_dose_gy)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if v[mid] >= volume_pct:
                lo = mid
            else:
                hi = mid
        dv = v[lo] - v[hi]
        t = 0.0 if dv <= 0 else (v[lo] - volume_pct) / dv
        return min(d[lo] + t * (d[hi] - d[lo]), self.max_dose_gy)

    def dose_at_volume_cm3(self, volume_cm3: float) -> float:
        """Minimum dose received by the hottest ``volume_cm3`` of the structure (D_x cc)."""
        if volume_cm3 < 0.0:
            raise ValueError(f"volume_cm3 must be >= 0, got {volume_cm3}")
        return self.dose_at_volume_pct(min(100.0, 100.0 * volume_cm3 / self.volume_cm3))


class SlicePlane(StrEnum):
    """Orientation of a dose slice."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


class DoseSlice(_Frozen):
    """A 2D dose plane with structure contours as masks, for pictures.

    ``dose_gy[row][col]``; rows run along ``row_axis`` and columns along ``col_axis``
    (``x``, ``y`` or ``z``), with ``spacing_mm`` = (row spacing, column spacing).
    """

    plane: SlicePlane
    index: Annotated[int, Field(ge=0)]
    position_mm: FiniteFloat
    row_axis: Literal["x", "y", "z"]
    col_axis: Literal["x", "y", "z"]
    spacing_mm: tuple[float, float]
    origin_mm: tuple[float, float]
    dose_gy: list[list[float]]
    masks: dict[Identifier, list[list[bool]]] = Field(default_factory=dict)
