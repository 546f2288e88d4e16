"""The site template: a treatment site's protocol written as data (validated pydantic models).

A template holds the technique defaults, the prescription and its normalization rule, the
structures (canonical ids, aliases, DICOM type, how derived structures are made), the initial
optimization objectives (treatment planning parameters, TPPs) with the range a policy may move
each TPP in, the clinical goals, and optionally a score. Doses may be written in Gy or relative to
the prescription (``"1.07 Rx"``, ``"95 %Rx"``); relative values are resolved with the
prescription at use, so that they scale with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, model_validator

from agent.templates.checks import check_template
from agent.templates.errors import StructureMatchError
from agent.templates.objectives import ObjectiveSpec, Spec, TppRange
from agent.templates.specs import (
    DICOM_TYPES,
    TARGET_TYPES,
    BeamAngles,
    Comparator,
    CriterionSpec,
    DeriveSpec,
    GoalSpec,
    NormalizationSpec,
    PrescriptionSpec,
    ScoreSpec,
    StructureSpec,
    TechniqueSpec,
)
from esapi_bridge.dto import NormalizationMode, NormalizationRule, Objective, objective_key
from rtplan_common.models import Identifier, SafeText

__all__ = [
    "DICOM_TYPES",
    "TARGET_TYPES",
    "BeamAngles",
    "Comparator",
    "CriterionSpec",
    "DeriveSpec",
    "GoalSpec",
    "NormalizationSpec",
    "PrescriptionSpec",
    "ScoreSpec",
    "SiteTemplate",
    "StructureSpec",
    "TechniqueSpec",
]


class SiteTemplate(Spec):
    """A treatment site's protocol as data (see the module docstring)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
    description: SafeText
    scenario: Identifier
    technique: TechniqueSpec
    prescription: PrescriptionSpec
    structures: Annotated[list[StructureSpec], Field(min_length=1)]
    objectives: Annotated[list[ObjectiveSpec], Field(min_length=1)]
    goals: Annotated[list[GoalSpec], Field(min_length=1)]
    score: ScoreSpec | None = None
    references: list[SafeText] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_references(self) -> SiteTemplate:
        check_template(self)
        return self

    # ----- structures -------------------------------------------------------------------
    def structure(self, structure_id: str) -> StructureSpec:
        """The template structure with canonical id ``structure_id``."""
        for s in self.structures:
            if s.id == structure_id:
                return s
        raise KeyError(f"template {self.name!r} has no structure {structure_id!r}")

    @property
    def structure_ids(self) -> list[str]:
        """Canonical ids of every structure."""
        return [s.id for s in self.structures]

    @property
    def body_id(self) -> str:
        """Canonical id of the external (body) structure."""
        return next(s.id for s in self.structures if s.dicom_type == "EXTERNAL")

    # ----- objectives -------------------------------------------------------------------
    def _rx(self, prescription_gy: float | None) -> float:
        return self.prescription.dose_gy if prescription_gy is None else prescription_gy

    def initial_objectives(
        self, structure_map: Mapping[str, str], prescription_gy: float | None = None
    ) -> list[Objective]:
        """The initial objectives on the plan's structure ids (canonical id -> plan id).

        Doses written relative to Rx are resolved with ``prescription_gy`` (default: the
        template's); doses written in Gy stay as written. Objectives of optional structures
        absent from ``structure_map`` are left out; a missing required structure raises
        :class:`StructureMatchError` naming it.
        """
        out: list[Objective] = []
        for spec, sid in self._mapped_objectives(structure_map):
            out.append(spec.to_objective(sid, self._rx(prescription_gy)))
        return out

    @property
    def tpp_ranges(self) -> dict[str, TppRange]:
        """TPP ranges keyed by ``objective_key`` of the objective on canonical ids (Rx of the template)."""
        identity = {s.id: s.id for s in self.structures}
        return self.tpp_ranges_for(identity)

    def tpp_ranges_for(
        self, structure_map: Mapping[str, str], prescription_gy: float | None = None
    ) -> dict[str, TppRange]:
        """TPP ranges keyed by ``objective_key`` of the objectives on the plan's structure ids."""
        rx = self._rx(prescription_gy)
        return {
            objective_key(spec.to_objective(sid, rx)): spec.resolved_range(rx)
            for spec, sid in self._mapped_objectives(structure_map)
        }

    def _mapped_objectives(
        self, structure_map: Mapping[str, str]
    ) -> list[tuple[ObjectiveSpec, str | None]]:
        out: list[tuple[ObjectiveSpec, str | None]] = []
        for spec in self.objectives:
            if spec.structure is None:
                out.append((spec, None))
            elif spec.structure in structure_map:
                out.append((spec, structure_map[spec.structure]))
            elif self.structure(spec.structure).required:
                raise StructureMatchError(
                    f"the structure map lacks required structure {spec.structure!r} "
                    f"of template {self.name!r}",
                    missing={spec.structure: sorted(structure_map.values())},
                )
        return out

    # ----- normalization ----------------------------------------------------------------
    def normalization_rule(
        self, structure_map: Mapping[str, str], prescription_gy: float | None = None
    ) -> NormalizationRule | None:
        """The normalization rule on the plan's structure ids, or ``None`` if the template has none."""
        norm = self.prescription.normalization
        if norm is None:
            return None
        rx = self._rx(prescription_gy)
        if norm.structure not in structure_map:
            raise StructureMatchError(
                f"the structure map lacks {norm.structure!r}, the normalization structure "
                f"of template {self.name!r}",
                missing={norm.structure: sorted(structure_map.values())},
            )
        sid = structure_map[norm.structure]
        dose_gy = norm.value.resolve("Gy", rx)
        if norm.metric.volume is not None:
            return NormalizationRule(
                mode=NormalizationMode.DOSE_AT_VOLUME,
                structure_id=sid,
                dose_gy=dose_gy,
                volume_pct=norm.metric.volume,
            )
        return NormalizationRule(mode=NormalizationMode.MEAN, structure_id=sid, dose_gy=dose_gy)
