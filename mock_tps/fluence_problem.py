"""The fluence optimization problem: objectives bound to sampled rows of the dose-influence matrix.

:func:`build_problem` validates the objectives, maps every structure to rows of the
dose-influence matrix, samples large structures deterministically (targets keep every
voxel), samples the normal tissue (stratified by distance to the target) and restricts
the matrix once to the union of the rows used. :meth:`FluenceProblem.with_objectives`
reuses all of that when only objective values change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from pydantic import TypeAdapter, ValidationError

from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    PointObjective,
    objective_key,
)
from esapi_bridge.errors import (
    EmptyStructure,
    InvalidInput,
    InvalidObjective,
    OptimizationFailed,
    UnknownStructure,
)
from mock_tps.dose_influence import DoseInfluence, DoseOperator
from mock_tps.row_sampling import (
    SamplingBudget,
    neighbour_pairs,
    nto_strata,
    random_keys,
    sample_rows,
)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Key under which the normal tissue objective is reported (``objective_key`` gives the same).
NTO_KEY = "NTO"

_OBJECTIVE_ADAPTER: TypeAdapter[Objective] = TypeAdapter(Objective)
_OBJECTIVE_TYPES = (PointObjective, MeanDoseObjective, EudObjective, NormalTissueObjective)


@dataclass(frozen=True)
class OptimizerSettings:
    """Settings of the fluence optimizer and of the row sampling of its problem.

    Attributes
    ----------
    max_iterations
        L-BFGS-B iteration limit (a request's ``max_iterations`` overrides it).
    tolerance
        Convergence: stop when the objective decreased by less than this fraction over
        the last ``tolerance_window`` iterations.
    tolerance_window
        Number of iterations the relative decrease is measured over.
    max_work_nonzeros
        Work limit: iterations are capped at this / (2 x non-zeros of the restricted
        matrix), which bounds the time of large problems (VMAT) deterministically.
    gtol
        Stop when the largest projected gradient component of the objective divided by
        its start value (variables in units of the cold-start weight) is below this.
    lbfgs_memory
        Number of L-BFGS correction pairs.
    smoothness_weight
        Weight of the fluence smoothness term (mean squared difference of neighbouring
        beamlets of one beam, in units of the cold-start weight); 0 disables it.
    max_rows_per_structure
        Voxels sampled from each non-target structure.
    min_rows_per_structure
        Floor of a non-target structure's sample when shrinking to the budget.
    max_nto_rows, min_nto_rows
        Normal-tissue voxels sampled for the normal tissue objective (and the floor).
    nto_near_mm
        Normal tissue within this distance of the target is sampled as its own stratum.
    max_sampled_nonzeros
        Budget of non-zeros of the sampled rows outside the targets (targets keep every
        row whatever it costs); non-target samples shrink together to meet it.
    seed
        Seed of the deterministic row sampling.
    """

    max_iterations: int = 200
    tolerance: float = 0.02
    tolerance_window: int = 10
    gtol: float = 1e-8
    max_work_nonzeros: float = 2.0e9
    lbfgs_memory: int = 10
    smoothness_weight: float = 0.0
    max_rows_per_structure: int = 4000
    min_rows_per_structure: int = 500
    max_nto_rows: int = 10000
    min_nto_rows: int = 2000
    nto_near_mm: float = 30.0
    max_sampled_nonzeros: int = 1_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        checks: list[tuple[str, float, float, float]] = [
            ("max_iterations", self.max_iterations, 1, 10_000),
            ("tolerance", self.tolerance, 0.0, 1.0),
            ("tolerance_window", self.tolerance_window, 1, 1000),
            ("max_work_nonzeros", self.max_work_nonzeros, 1e6, 1e15),
            ("gtol", self.gtol, 0.0, 1.0),
            ("lbfgs_memory", self.lbfgs_memory, 1, 100),
            ("smoothness_weight", self.smoothness_weight, 0.0, 1e6),
            ("max_rows_per_structure", self.max_rows_per_structure, 10, 10_000_000),
            ("min_rows_per_structure", self.min_rows_per_structure, 1, 10_000_000),
            ("max_nto_rows", self.max_nto_rows, 10, 10_000_000),
            ("min_nto_rows", self.min_nto_rows, 1, 10_000_000),
            ("nto_near_mm", self.nto_near_mm, 0.0, 500.0),
            ("max_sampled_nonzeros", self.max_sampled_nonzeros, 0, 10_000_000_000),
        ]
        for name, value, lo, hi in checks:
            if not (math.isfinite(value) and lo <= value <= hi):
                raise InvalidInput(
                    f"OptimizerSettings.{name} must be within {lo}..{hi}, got {value}"
                )

    @property
    def budget(self) -> SamplingBudget:
        """The row-sampling part of the settings."""
        return SamplingBudget(
            max_rows_per_structure=self.max_rows_per_structure,
            min_rows_per_structure=self.min_rows_per_structure,
            max_nto_rows=self.max_nto_rows,
            min_nto_rows=self.min_nto_rows,
            max_sampled_nonzeros=self.max_sampled_nonzeros,
        )


@dataclass(frozen=True, eq=False)
class ObjectiveTerm:
    """One objective bound to its rows of the restricted matrix."""

    objective: Objective
    key: str
    structure_id: str  # NTO_KEY for the normal tissue objective
    rows: IntArray
    distance_mm: FloatArray | None = None
    voxel_weights: FloatArray | None = None


@dataclass(frozen=True, eq=False)
class FluenceProblem:
    """Objectives on sampled rows of a dose-influence matrix, ready for :func:`optimize_fluence`.

    ``matrix`` is the float32 CSR restriction of ``dij.matrix`` (the primary) to ``rows`` (the
    union of every sampled structure, the whole target and the normal-tissue sample);
    ``operator`` is the whole dose operator on those rows (primary, broad part, transmission):
    the optimizer's dose and gradient use it.
    """

    dij: DoseInfluence
    masks: Mapping[str, BoolArray]
    target_mask: BoolArray
    prescription_gy: float
    spacing_mm: tuple[float, float, float]
    settings: OptimizerSettings
    objectives: tuple[Objective, ...]
    terms: tuple[ObjectiveTerm, ...]
    rows: IntArray
    matrix: sp.csr_matrix
    structure_rows: dict[str, IntArray]
    structure_voxels: dict[str, int]
    target_rows: IntArray
    weight_scale: float
    nto_rows: IntArray | None = None
    nto_distance_mm: FloatArray | None = None
    nto_weights: FloatArray | None = None
    neighbour_pairs: tuple[IntArray, IntArray] = field(
        default_factory=lambda: (np.zeros(0, np.int64), np.zeros(0, np.int64))
    )
    operator: DoseOperator | None = None

    @property
    def dose_operator(self) -> DoseOperator:
        """The operator on the problem's rows (``matrix`` alone for hand-made problems)."""
        if self.operator is not None:
            return self.operator
        return DoseOperator(self.matrix, None, self.dij.beamlet_beam, 0.0)

    @property
    def n_beamlets(self) -> int:
        """Number of beamlets (optimization variables)."""
        return self.dij.n_beamlets

    def can_reuse_for(self, objectives: Sequence[Objective | Mapping[str, Any]]) -> bool:
        """Whether ``objectives`` only use structures (and NTO rows) this problem already has."""
        objs = parse_objectives(objectives)
        needed = {o.structure_id for o in objs if not isinstance(o, NormalTissueObjective)}
        has_nto = any(isinstance(o, NormalTissueObjective) for o in objs)
        return needed <= set(self.structure_rows) and (not has_nto or self.nto_rows is not None)

    def with_objectives(
        self, objectives: Sequence[Objective | Mapping[str, Any]]
    ) -> FluenceProblem:
        """The same problem with other objectives; cheap unless new structures are needed."""
        objs = parse_objectives(objectives)
        new = [o for o in objs if getattr(o, "structure_id", None) not in self.structure_rows]
        _validate_structures(new, self.masks, self.dij)  # known structures are valid already
        if not self.can_reuse_for(objs):
            return build_problem(
                self.dij,
                self.masks,
                self.target_mask,
                objs,
                self.prescription_gy,
                self.spacing_mm,
                settings=self.settings,
            )
        return replace(self, objectives=objs, terms=_make_terms(objs, self))


def parse_objectives(objectives: Sequence[Objective | Mapping[str, Any]]) -> tuple[Objective, ...]:
    """Objectives as DTO models (dicts are validated); at most one normal tissue objective."""
    out: list[Objective] = []
    for i, obj in enumerate(objectives):
        if isinstance(obj, Mapping):
            try:
                out.append(_OBJECTIVE_ADAPTER.validate_python(dict(obj)))
            except ValidationError as exc:
                raise InvalidObjective(f"objectives[{i}] is malformed: {exc}") from None
        elif isinstance(obj, _OBJECTIVE_TYPES):
            out.append(obj)
        else:
            raise InvalidObjective(f"objectives[{i}] is not an objective: {type(obj).__name__}")
    if not out:
        raise InvalidObjective("no objectives: the optimizer needs at least one")
    n_nto = sum(isinstance(o, NormalTissueObjective) for o in out)
    if n_nto > 1:
        raise InvalidObjective(f"at most one normal tissue objective is allowed, got {n_nto}")
    return tuple(out)


def _validate_structures(
    objs: Sequence[Objective], masks: Mapping[str, BoolArray], dij: DoseInfluence
) -> dict[str, IntArray]:
    """Rows of every structure the objectives use; unknown or empty structures raise."""
    ids = list(
        dict.fromkeys(o.structure_id for o in objs if not isinstance(o, NormalTissueObjective))
    )
    unknown = [sid for sid in ids if sid not in masks]
    if unknown:
        err = UnknownStructure(unknown[0], sorted(masks))
        if len(unknown) > 1:
            err.args = (
                f"unknown structures {', '.join(map(repr, unknown))}; the plan has: "
                f"{', '.join(sorted(masks))}",
            )
        raise err
    rows = {sid: dij.rows_of(np.asarray(masks[sid], dtype=bool)) for sid in ids}
    empty = [sid for sid, r in rows.items() if r.size == 0]
    if empty:
        raise EmptyStructure(
            f"structure(s) {', '.join(map(repr, empty))} have no voxel inside the body on the dose grid"
        )
    return rows


def _make_terms(objs: Sequence[Objective], problem: FluenceProblem) -> tuple[ObjectiveTerm, ...]:
    terms = []
    for obj in objs:
        if isinstance(obj, NormalTissueObjective):
            assert problem.nto_rows is not None
            terms.append(
                ObjectiveTerm(
                    obj,
                    NTO_KEY,
                    NTO_KEY,
                    problem.nto_rows,
                    problem.nto_distance_mm,
                    problem.nto_weights,
                )
            )
        else:
            sid = obj.structure_id
            terms.append(ObjectiveTerm(obj, objective_key(obj), sid, problem.structure_rows[sid]))
    return tuple(terms)


def build_problem(
    dij: DoseInfluence,
    masks: Mapping[str, BoolArray],
    target_mask: BoolArray,
    objectives: Sequence[Objective | Mapping[str, Any]],
    prescription_gy: float,
    spacing_mm: tuple[float, float, float],
    max_rows_per_structure: int | None = None,
    seed: int | None = None,
    *,
    settings: OptimizerSettings | None = None,
) -> FluenceProblem:
    """Bind objectives to sampled rows of ``dij`` (everything is validated before any work).

    Parameters
    ----------
    dij
        Dose-influence matrix of the plan's beams.
    masks
        Voxel mask (grid shape) of every structure of the plan, by structure id.
    target_mask
        Union of the targets: their voxels are never sampled away; the normal tissue
        objective applies outside it.
    objectives
        DTO objectives (or dicts of them).
    prescription_gy
        Prescribed dose; penalties are relative to it.
    spacing_mm
        Grid spacing (x, y, z) for the normal tissue distances.
    max_rows_per_structure, seed
        Override the corresponding :class:`OptimizerSettings` fields.
    settings
        Optimizer and sampling settings.

    Raises
    ------
    InvalidObjective, UnknownStructure, EmptyStructure, InvalidInput, OptimizationFailed
    """
    settings = settings or OptimizerSettings()
    if max_rows_per_structure is not None:
        settings = replace(settings, max_rows_per_structure=max_rows_per_structure)
    if seed is not None:
        settings = replace(settings, seed=seed)
    if not (math.isfinite(prescription_gy) and prescription_gy > 0):
        raise InvalidInput(f"prescription_gy must be finite and > 0, got {prescription_gy}")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise InvalidInput(f"spacing_mm must be three positive values, got {spacing_mm}")
    objs = parse_objectives(objectives)
    target = np.asarray(target_mask, dtype=bool)
    rows = _validate_structures(objs, masks, dij)  # also checks mask shapes
    target_rows = dij.rows_of(target)
    has_nto = any(isinstance(o, NormalTissueObjective) for o in objs)
    if has_nto and target_rows.size == 0:
        raise InvalidObjective("the normal tissue objective needs a non-empty target (target_mask)")

    keys = random_keys(dij.voxel_indices.size, settings.seed)
    nnz_per_row = np.diff(dij.matrix.indptr).astype(np.int64)
    sp3 = (spacing[0], spacing[1], spacing[2])
    strata = nto_strata(dij, target, target_rows, sp3, settings.nto_near_mm) if has_nto else None
    sampled, nto = sample_rows(rows, target_rows, keys, nnz_per_row, settings.budget, strata)
    parts = [target_rows, *sampled.values()] + ([nto.rows] if nto else [])
    union = np.unique(np.concatenate(parts))
    matrix = dij.matrix[union]
    if matrix.dtype != np.float32:
        matrix = matrix.astype(np.float32)
    local = {sid: np.searchsorted(union, r) for sid, r in sampled.items()}
    target_local = (
        np.searchsorted(union, target_rows) if target_rows.size else np.arange(union.size)
    )
    operator = dij.operator(union, matrix)
    ones_dose = np.asarray(operator.dose(np.ones(matrix.shape[1], np.float32)), dtype=np.float64)
    mean_target = float(ones_dose[target_local].mean())
    if not (math.isfinite(mean_target) and mean_target > 0.0):
        raise OptimizationFailed("no beamlet delivers dose to the target: cannot optimize")
    problem = FluenceProblem(
        dij=dij,
        masks=masks,
        target_mask=target,
        prescription_gy=float(prescription_gy),
        spacing_mm=sp3,
        settings=settings,
        objectives=objs,
        terms=(),
        rows=union,
        matrix=matrix,
        structure_rows=local,
        structure_voxels={sid: int(r.size) for sid, r in rows.items()},
        target_rows=target_local,
        weight_scale=float(prescription_gy) / mean_target,
        nto_rows=np.searchsorted(union, nto.rows) if nto else None,
        nto_distance_mm=nto.distance_mm if nto else None,
        nto_weights=nto.weights if nto else None,
        neighbour_pairs=neighbour_pairs(dij),
        operator=operator,
    )
    return replace(problem, terms=_make_terms(objs, problem))
