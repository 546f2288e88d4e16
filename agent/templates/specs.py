"""The parts of a site template: technique, prescription, structures, goals and score.

:mod:`agent.templates.schema` assembles them into :class:`~agent.templates.schema.SiteTemplate`;
:mod:`agent.templates.checks` cross-checks them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from agent.templates.metric import Quantity
from agent.templates.objectives import MetricField, QuantityField, Spec
from esapi_bridge.dto import Technique
from rtplan_common.models import Identifier, Key, SafeText

DICOM_TYPES = frozenset(
    {"PTV", "CTV", "GTV", "ORGAN", "EXTERNAL", "AVOIDANCE", "CONTROL", "SUPPORT", "MARKER"}
)
TARGET_TYPES = frozenset({"PTV", "CTV", "GTV"})


class BeamAngles(Spec):
    """One field of a non-coplanar beam arrangement (IEC 61217 angles)."""

    gantry_deg: Annotated[float, Field(ge=-360.0, le=360.0)]
    couch_deg: Annotated[float, Field(ge=-360.0, le=360.0)] = 0.0


class TechniqueSpec(Spec):
    """Technique defaults for the simulated TPS: IMRT fields or VMAT arcs."""

    technique: Technique
    fields: Annotated[int, Field(ge=1, le=40)] | None = None
    start_deg: Annotated[float, Field(ge=0.0, lt=360.0)] = 0.0
    beams: list[BeamAngles] | None = None
    arcs: Annotated[int, Field(ge=1, le=8)] | None = None
    control_points: Annotated[int, Field(ge=4, le=720)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TechniqueSpec:
        if self.technique is Technique.IMRT:
            if self.fields is None and not self.beams:
                raise ValueError("IMRT needs 'fields' (coplanar, equispaced) or 'beams'")
            if self.arcs is not None or self.control_points is not None:
                raise ValueError("IMRT takes 'fields' or 'beams', not 'arcs'/'control_points'")
        else:
            if self.arcs is None or self.control_points is None:
                raise ValueError("VMAT needs 'arcs' and 'control_points'")
            if self.fields is not None or self.beams:
                raise ValueError("VMAT takes 'arcs' and 'control_points', not 'fields'/'beams'")
        return self

    @property
    def beam_count(self) -> int:
        """Number of fields (IMRT) or control points (VMAT)."""
        if self.technique is Technique.VMAT:
            return int(self.control_points or 0)
        return len(self.beams) if self.beams else int(self.fields or 0)


class NormalizationSpec(Spec):
    """Normalization after optimization, e.g. ``PTV D95% = 1.0 Rx`` (``Mean`` also allowed)."""

    structure: Identifier
    metric: MetricField
    value: QuantityField = Quantity(value=1.0, unit="Rx")


class PrescriptionSpec(Spec):
    """Prescription: total dose to ``target`` in ``fractions``; more levels for SIB plans."""

    dose_gy: Annotated[float, Field(gt=0.0, le=200.0)]
    fractions: Annotated[int, Field(ge=1, le=100)]
    target: Identifier
    dose_levels_gy: dict[Identifier, Annotated[float, Field(gt=0.0, le=200.0)]] = Field(
        default_factory=dict
    )
    normalization: NormalizationSpec | None = None

    def level_gy(self, structure_id: str, prescription_gy: float | None = None) -> float:
        """Dose level of a target (the primary dose for any other structure), scaled to Rx."""
        rx = self.dose_gy if prescription_gy is None else prescription_gy
        level = self.dose_levels_gy.get(structure_id, self.dose_gy)
        return level * rx / self.dose_gy


class DeriveSpec(Spec):
    """How a derived structure is made from others (as data; the TPS or a planner builds it).

    - ``subtract``: ``source`` minus the union of ``others`` expanded by ``margin_mm``;
    - ``ring``: ``source`` expanded by ``outer_mm`` minus ``source`` expanded by ``inner_mm``;
    - ``union``: ``source`` plus ``others``;
    - ``expand``: ``source`` expanded by ``margin_mm`` (negative: contracted).

    ``crop_to`` (e.g. the body) clips the result.
    """

    op: Literal["subtract", "ring", "union", "expand"]
    source: Identifier
    others: list[Identifier] = Field(default_factory=list)
    margin_mm: Annotated[float, Field(ge=-50.0, le=100.0)] = 0.0
    inner_mm: Annotated[float, Field(ge=0.0, le=200.0)] | None = None
    outer_mm: Annotated[float, Field(ge=0.0, le=200.0)] | None = None
    crop_to: Identifier | None = None

    @model_validator(mode="after")
    def _op_fields(self) -> DeriveSpec:
        if self.op == "ring":
            if self.inner_mm is None or self.outer_mm is None:
                raise ValueError("a ring needs inner_mm and outer_mm")
            if self.outer_mm <= self.inner_mm:
                raise ValueError(
                    f"ring outer_mm ({self.outer_mm}) must exceed inner_mm ({self.inner_mm})"
                )
        elif self.inner_mm is not None or self.outer_mm is not None:
            raise ValueError(f"inner_mm/outer_mm are for rings only, not {self.op!r}")
        if self.op in ("subtract", "union") and not self.others:
            raise ValueError(f"{self.op!r} needs at least one structure in 'others'")
        return self

    @property
    def references(self) -> list[str]:
        """Every structure this derivation reads."""
        return [self.source, *self.others, *([self.crop_to] if self.crop_to else [])]


class StructureSpec(Spec):
    """A template structure: canonical id, aliases, DICOM type, required or optional."""

    id: Identifier
    dicom_type: Identifier
    aliases: list[Identifier] = Field(default_factory=list)
    required: bool = True
    derive: DeriveSpec | None = None
    description: SafeText = ""

    @property
    def is_target(self) -> bool:
        """Whether the structure is a target volume (PTV, CTV, GTV)."""
        return self.dicom_type in TARGET_TYPES


Comparator = Literal["<=", "<", ">=", ">"]


def _with_default_id(data: Any) -> Any:
    """Give a goal or criterion without ``id`` the id ``structure:metric``."""
    if isinstance(data, dict) and not data.get("id"):
        return {**data, "id": f"{data.get('structure')}:{data.get('metric')}"}
    return data


class GoalSpec(Spec):
    """A clinical goal: ``metric`` of ``structure`` ``comparator`` ``limit`` (± ``variation``).

    Priority 1 = must, 2 = should, 3 = report. ``isodose_region`` (CI and GI only): the
    structure the isodose volumes are read in instead of the body.
    """

    id: Key = ""  # default: "structure:metric"
    structure: Identifier
    metric: MetricField
    comparator: Comparator
    limit: QuantityField
    variation: QuantityField = Quantity(value=0.0)
    priority: Literal[1, 2, 3]
    note: SafeText = ""
    # CI / GI only: the structure whose DVH gives the isodose volumes (default: the body), e.g.
    # a lesion's zone when several lesions share one prescription isodose
    isodose_region: Identifier | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        return _with_default_id(data)


class CriterionSpec(Spec):
    """A score criterion: ``weight`` points at or better than ``full``, 0 at or worse than
    ``zero``, linear in between (``comparator`` "<=": lower is better; ">=": higher is better)."""

    id: Key = ""  # default: "structure:metric"
    structure: Identifier
    metric: MetricField
    comparator: Literal["<=", ">="]
    full: QuantityField
    zero: QuantityField
    weight: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        return _with_default_id(data)


class ScoreSpec(Spec):
    """A plan score: the sum of its criteria's points (max = sum of weights)."""

    max_score: Annotated[float, Field(gt=0.0)] | None = None
    criteria: Annotated[list[CriterionSpec], Field(min_length=1)]

    @property
    def total_weight(self) -> float:
        """The maximum reachable score."""
        return float(sum(c.weight for c in self.criteria))
