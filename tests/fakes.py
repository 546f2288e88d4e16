"""A small fake ``TpsSession`` for loop tests and fault injection (no dose engine).

Each structure's DVH is a linear ramp: 100 % of the volume receives at least ``lo``
and 0 % receives more than ``hi``. ``optimize`` moves the ramps in response to the
objectives with a built-in trade-off: every Gy an OAR's maximum is pushed below its
unconstrained value widens the target ramp (worse coverage / homogeneity).
Faults are injected per optimizer call (1-based) through ``faults``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from esapi_bridge.dto import (
    BackendInfo,
    CaseSource,
    CaseSourceKind,
    DoseSlice,
    DvhCurve,
    NormalizationRule,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    ObjectiveValue,
    OptimizationResult,
    OptimizeRequest,
    PlanInfo,
    PointObjective,
    SlicePlane,
    StructureInfo,
    Technique,
    objective_key,
)
from esapi_bridge.errors import (
    CapabilityUnavailable,
    DoseUnavailable,
    UnknownStructure,
)

#: Objectives a plan already holds when the agent opens it (restored on error or interrupt).
ORIGINAL_OBJECTIVES = [
    PointObjective(
        structure_id="PTV",
        operator=ObjectiveOperator.LOWER,
        dose_gy=78.0,
        volume_pct=100,
        priority=90,
    )
]


@dataclass
class FakeStructure:
    """A structure of the fake plan; ``free_max_gy`` is its maximum dose without any OAR objective."""

    structure_id: str
    dicom_type: str = "ORGAN"
    volume_cm3: float = 100.0
    free_max_gy: float = 60.0


PROSTATE_STRUCTURES: tuple[FakeStructure, ...] = (
    FakeStructure("PTV", "PTV", 90.0, 0.0),
    FakeStructure("Bladder", "ORGAN", 250.0, 84.0),
    FakeStructure("Rectum", "ORGAN", 70.0, 88.0),
    FakeStructure("Femur_Head_L", "ORGAN", 60.0, 50.0),
    FakeStructure("Femur_Head_R", "ORGAN", 60.0, 50.0),
    FakeStructure("BODY", "EXTERNAL", 20000.0, 84.0),
)


@dataclass
class FakeTpsSession:
    """An in-memory TpsSession with a toy dose response and injectable faults.

    Parameters
    ----------
    structures
        The plan's structures.
    prescription_gy, fractions
        The prescription.
    faults
        ``{optimizer_call_number: exception instance or "fail"}``; ``"fail"`` returns
        ``success=False``; an exception (including ``KeyboardInterrupt``) is raised.
    """

    structures_spec: Sequence[FakeStructure] = PROSTATE_STRUCTURES
    prescription_gy: float = 79.2
    fractions: int = 44
    plan_id: str = "fake-plan-0"
    technique: Technique = Technique.IMRT
    engine_version: str = "fake-ramps-1"
    faults: dict[int, BaseException | str] = field(default_factory=dict)
    initial_objectives: list[Objective] = field(default_factory=list)
    optimize_calls: int = 0
    set_calls: list[list[Objective]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    dose_planes: bool = False  # offer toy dose planes (each structure a disc at its mean dose)

    def __post_init__(self) -> None:
        self._objectives: list[Objective] = list(self.initial_objectives)
        self._by_id = {s.structure_id: s for s in self.structures_spec}
        self._ramps: dict[str, tuple[float, float]] | None = None
        self._scale = 1.0

    # -- port ---------------------------------------------------------------------------
    def plan_info(self) -> PlanInfo:
        return PlanInfo(
            plan_id=self.plan_id,
            technique=self.technique,
            total_dose_gy=self.prescription_gy,
            fractions=self.fractions,
            beam_count=7,
            backend=BackendInfo(
                name="fake",
                engine_version=self.engine_version,
                case_source=CaseSource(kind=CaseSourceKind.SCENARIO, name="fake", seed=0),
            ),
        )

    def structures(self) -> list[StructureInfo]:
        return [
            StructureInfo(
                structure_id=s.structure_id, dicom_type=s.dicom_type, volume_cm3=s.volume_cm3
            )
            for s in self.structures_spec
        ]

    def get_objectives(self) -> list[Objective]:
        return list(self._objectives)

    def set_objectives(self, objectives: Sequence[Objective]) -> None:
        for obj in objectives:
            if not isinstance(obj, NormalTissueObjective) and obj.structure_id not in self._by_id:
                raise UnknownStructure(obj.structure_id, list(self._by_id))
        self._objectives = list(objectives)
        self.set_calls.append(list(objectives))
        self.events.append("set")

    def optimize(self, request: OptimizeRequest) -> OptimizationResult:
        self.optimize_calls += 1
        self.events.append(f"optimize:{request.mode.value}")
        fault = self.faults.get(self.optimize_calls)
        if isinstance(fault, BaseException):
            raise fault
        if fault == "fail":
            return OptimizationResult(
                success=False,
                total_objective_value=0.0,
                structure_objective_values={},
                iterations=0,
                wall_time_s=0.0,
                message="injected failure",
            )
        self._ramps = self._solve()
        self._scale = 1.0
        values = [
            ObjectiveValue(
                key=objective_key(o),
                structure_id=None if isinstance(o, NormalTissueObjective) else o.structure_id,
                value=self._penalty(o),
            )
            for o in self._objectives
        ]
        per_structure: dict[str, float] = {}
        for v in values:
            if v.structure_id is not None:
                per_structure[v.structure_id] = per_structure.get(v.structure_id, 0.0) + v.value
        return OptimizationResult(
            success=True,
            total_objective_value=sum(v.value for v in values),
            structure_objective_values=per_structure,
            objective_values=values,
            iterations=request.max_iterations,
            wall_time_s=0.0,
        )

    def calculate_dose(self) -> None:
        if self._ramps is None:
            raise DoseUnavailable("no optimized fluence")
        self.events.append("dose")

    def normalize(self, rule: NormalizationRule) -> float:
        dvh = self.get_dvh(rule.structure_id)
        current = dvh.dose_at_volume_pct(rule.volume_pct)
        factor = rule.dose_gy / current if current > 0 else 1.0
        self._scale *= factor
        self.events.append("normalize")
        return factor

    def get_dvh(self, structure_id: str) -> DvhCurve:
        if structure_id not in self._by_id:
            raise UnknownStructure(structure_id, list(self._by_id))
        if self._ramps is None:
            raise DoseUnavailable("no dose calculated")
        lo, hi = (x * self._scale for x in self._ramps[structure_id])
        doses = [0.0, lo, hi, hi + 0.01]
        volumes = [100.0, 100.0, 0.0, 0.0]
        return DvhCurve(
            structure_id=structure_id,
            volume_cm3=self._by_id[structure_id].volume_cm3,
            dose_gy=doses,
            volume_pct=volumes,
            min_dose_gy=lo,
            mean_dose_gy=(lo + hi) / 2,
            max_dose_gy=hi,
        )

    def dose_slice(self, plane: SlicePlane, index: int | None = None) -> DoseSlice:
        if not self.dose_planes:
            raise CapabilityUnavailable("the fake TPS has no dose grid")
        if self._ramps is None:
            raise DoseUnavailable("no dose calculated")
        n = 40
        rows, cols = np.mgrid[0:n, 0:n]
        dose = np.zeros((n, n))
        masks: dict[str, list[list[bool]]] = {}
        for k, s in enumerate(self.structures_spec):  # discs around the centre, PTV first
            angle = 2 * np.pi * k / max(1, len(self.structures_spec))
            r0, c0 = (n / 2 + (0 if k == 0 else 12) * f for f in (np.sin(angle), np.cos(angle)))
            disc = (rows - r0) ** 2 + (cols - c0) ** 2 <= (8 if k == 0 else 5) ** 2
            lo, hi = (x * self._scale for x in self._ramps[s.structure_id])
            dose = np.where(disc, np.maximum(dose, (lo + hi) / 2), dose)
            masks[s.structure_id] = disc.tolist()
        axes = {"axial": ("y", "x"), "coronal": ("z", "x"), "sagittal": ("z", "y")}
        row_axis, col_axis = axes[plane.value]
        return DoseSlice(
            plane=plane,
            index=n // 2 if index is None else index,
            position_mm=0.0,
            row_axis=row_axis,  # type: ignore[arg-type]
            col_axis=col_axis,  # type: ignore[arg-type]
            spacing_mm=(3.0, 3.0),
            origin_mm=(-60.0, -60.0),
            dose_gy=dose.tolist(),
            masks=masks,
        )

    # -- toy dose response ----------------------------------------------------------------
    def _solve(self) -> dict[str, tuple[float, float]]:
        rx = self.prescription_gy
        target_priority = sum(
            o.priority
            for o in self._objectives
            if isinstance(o, PointObjective) and self._by_id[o.structure_id].dicom_type == "PTV"
        )
        target_priority = max(target_priority, 1.0)
        ramps: dict[str, tuple[float, float]] = {}
        squeeze = 0.0
        for s in self.structures_spec:
            if s.dicom_type == "PTV":
                continue
            limits = [
                (o.dose_gy, o.priority)
                for o in self._objectives
                if not isinstance(o, NormalTissueObjective)
                and o.structure_id == s.structure_id
                and o.operator is ObjectiveOperator.UPPER
            ]
            hi = s.free_max_gy
            for dose_gy, priority in limits:
                pull = priority / (priority + target_priority)
                hi -= pull * max(0.0, hi - dose_gy)
            squeeze += max(0.0, s.free_max_gy - hi) * 0.04
            ramps[s.structure_id] = (0.5 * hi, hi)
        for s in self.structures_spec:
            if s.dicom_type == "PTV":
                half = 0.02 * rx + squeeze
                ramps[s.structure_id] = (rx - half, rx + half)
        return ramps

    def _penalty(self, objective: Objective) -> float:
        if isinstance(objective, NormalTissueObjective) or self._ramps is None:
            return 0.0
        lo, hi = self._ramps[objective.structure_id]
        if objective.operator is ObjectiveOperator.UPPER:
            excess = max(0.0, hi - objective.dose_gy)
        else:
            excess = max(0.0, objective.dose_gy - lo)
        return objective.priority * excess**2 / 1000.0


class ScriptedPolicy:
    """A policy that returns prepared proposals (or raises prepared exceptions) in order.

    Each item is a callable ``(context) -> Proposal``; the contexts seen are kept.
    """

    name = "scripted"

    def __init__(self, steps: Sequence[Callable[..., object]]) -> None:
        self.steps = list(steps)
        self.contexts: list[object] = []

    def propose(self, context: object) -> object:
        self.contexts.append(context)
        if not self.steps:
            raise AssertionError("ScriptedPolicy ran out of steps")
        return self.steps.pop(0)(context)
