"""``MockTpsSession``: the ``TpsSession`` port implemented over the simulated TPS.

It behaves like an Eclipse plan: objectives are replaced all-or-nothing, an
optimization changes the fluence and clears the plan normalization, the dose
must then be calculated, and DVHs are read from the calculated dose.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger
from numpy.typing import NDArray

from esapi_bridge.dto import (
    ApprovalStatus,
    BackendInfo,
    CaseSource,
    CaseSourceKind,
    DoseSlice,
    DvhCurve,
    NormalizationMode,
    NormalizationRule,
    NormalTissueObjective,
    Objective,
    ObjectiveValue,
    OptimizationMode,
    OptimizationResult,
    OptimizeRequest,
    PlanInfo,
    SlicePlane,
    StructureInfo,
    objective_key,
)
from esapi_bridge.errors import (
    DoseUnavailable,
    InvalidObjective,
    OptimizationFailed,
    PlanLocked,
    TpsError,
)
from mock_tps.case import Case
from mock_tps.dij_cache import cached_dose_influence
from mock_tps.dose_engine import ENGINE_VERSION, EngineParams
from mock_tps.dose_influence import DoseInfluence
from mock_tps.dvh import dvh_from_doses
from mock_tps.fluence_problem import parse_objectives
from mock_tps.normalization import normalization_factor
from mock_tps.optimizer import FluenceProblem, FluenceResult, OptimizerSettings, build_problem
from mock_tps.optimizer import optimize_fluence as run_fluence_optimizer
from mock_tps.slices import dose_slice as cut_dose_slice


class MockTpsSession:
    """One open plan on the simulated TPS.

    Parameters
    ----------
    case
        The phantom or loaded case (grid, densities, structures, prescription, beams).
    objectives
        Initial optimization objectives of the plan (may be empty).
    engine_params
        Dose-engine settings; part of the dose-influence cache key.
    cache_dir
        Where dose-influence matrices are cached (default: ``RTPLAN_CACHE_DIR`` or ~/.cache).
    optimizer_settings
        Settings of the fluence optimizer (smoothness, tolerance, sampling).
    approval_status
        An approved plan refuses changes with :class:`PlanLocked`.
    dose_influence
        A dose-influence matrix already computed for this case (skips the engine and cache).
    case_source
        Where the case came from, for the journal (default: the case's scenario and seed
        with its geometry hash; TG-119 without its file hash).
    """

    def __init__(
        self,
        case: Case,
        objectives: Sequence[Objective] = (),
        *,
        engine_params: EngineParams | None = None,
        cache_dir: str | Path | None = None,
        optimizer_settings: OptimizerSettings | None = None,
        approval_status: ApprovalStatus = ApprovalStatus.UNAPPROVED,
        dose_influence: DoseInfluence | None = None,
        case_source: CaseSource | None = None,
    ) -> None:
        self._case = case
        self._case_source = case_source
        self._engine_params = engine_params or EngineParams()
        self._cache_dir = cache_dir
        self._settings = optimizer_settings or OptimizerSettings()
        self._approval = approval_status
        self._objectives: list[Objective] = []
        self._dij: DoseInfluence | None = dose_influence
        self._problem: FluenceProblem | None = None
        self._weights: NDArray[np.float64] | None = None
        self._dose: NDArray[np.float32] | None = None
        self._dvh_cache: dict[str, DvhCurve] = {}
        self.last_fluence_result: FluenceResult | None = None
        if objectives:
            self.set_objectives(objectives)

    # ----------------------------------------------------------------- plan
    @property
    def case(self) -> Case:
        """The simulated case behind the plan."""
        return self._case

    def plan_info(self) -> PlanInfo:
        """Plan id (the case's pseudonymous name), technique and prescription."""
        rx = self._case.prescription
        return PlanInfo(
            plan_id=self._case.name,
            technique=self._case.beams.technique,
            total_dose_gy=rx.total_dose_gy,
            fractions=rx.fractions,
            dose_unit="Gy",
            approval_status=self._approval,
            beam_count=len(self._case.beams.beams),
            backend=BackendInfo(
                name="mock_tps", engine_version=ENGINE_VERSION, case_source=self._source()
            ),
        )

    def _source(self) -> CaseSource:
        if self._case_source is None:
            case = self._case
            if case.scenario == "tg119":
                self._case_source = CaseSource(kind=CaseSourceKind.TG119, name="tg119")
            else:
                name = case.scenario.lower()
                self._case_source = CaseSource(
                    kind=CaseSourceKind.SCENARIO,
                    name=name if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name) else None,
                    seed=case.seed,
                    content_hash=case.geometry_hash(),
                )
        return self._case_source

    def structures(self) -> list[StructureInfo]:
        """Every structure with its DICOM type and volume on the dose grid."""
        out = []
        for sid, s in self._case.structures.items():
            volume = self._case.volume_cm3(sid)
            out.append(
                StructureInfo(
                    structure_id=sid,
                    dicom_type=s.dicom_type,
                    volume_cm3=volume,
                    is_empty=volume == 0.0,
                )
            )
        return out

    # ----------------------------------------------------------- objectives
    def get_objectives(self) -> list[Objective]:
        """A copy of the current objectives."""
        return list(self._objectives)

    def set_objectives(self, objectives: Sequence[Objective | Mapping[str, Any]]) -> None:
        """Replace every objective; validated in full first, so nothing is half-applied."""
        if self._approval.is_locked:
            raise PlanLocked(
                f"plan {self._case.name!r} is {self._approval.value}: objectives are read-only"
            )
        # dicts (e.g. from JSON) are validated into DTOs; malformed ones raise InvalidObjective
        new = list(parse_objectives(objectives)) if objectives else []
        for obj in new:
            if not isinstance(obj, NormalTissueObjective):
                self._case.mask(obj.structure_id)  # UnknownStructure / EmptyStructure
        self._objectives = new

    # --------------------------------------------------------- optimization
    def _dose_influence(self) -> DoseInfluence:
        if self._dij is None:
            t0 = time.perf_counter()
            self._dij = cached_dose_influence(self._case, self._engine_params, self._cache_dir)
            logger.debug(
                "dose influence for {}: {} x {} in {:.2f} s",
                self._case.name,
                *self._dij.matrix.shape,
                time.perf_counter() - t0,
            )
        return self._dij

    def _fluence_problem(self) -> FluenceProblem:
        dij = self._dose_influence()
        if self._problem is not None and self._problem.can_reuse_for(self._objectives):
            self._problem = self._problem.with_objectives(self._objectives)
            return self._problem
        masks = {sid: s.mask for sid, s in self._case.structures.items()}
        self._problem = build_problem(
            dij,
            masks,
            self._case.target_mask,
            self._objectives,
            prescription_gy=self._case.prescription.total_dose_gy,
            spacing_mm=self._case.grid.spacing_mm,
            settings=self._settings,
        )
        return self._problem

    def optimize(self, request: OptimizeRequest | None = None) -> OptimizationResult:
        """Optimize the fluence; clears the dose and the plan normalization, as Eclipse does."""
        request = request or OptimizeRequest()
        if self._approval.is_locked:
            raise PlanLocked(f"plan {self._case.name!r} is {self._approval.value}: cannot optimize")
        if not self._objectives:
            raise InvalidObjective("the plan has no optimization objectives: set some first")
        t0 = time.perf_counter()
        try:
            problem = self._fluence_problem()
            x0 = self._weights if request.mode is OptimizationMode.CONTINUE else None
            result = run_fluence_optimizer(problem, x0=x0, max_iterations=request.max_iterations)
        except TpsError:
            raise
        except (ValueError, ArithmeticError, MemoryError, RuntimeError) as exc:
            raise OptimizationFailed(f"optimizer failed: {type(exc).__name__}: {exc}") from exc
        if not np.all(np.isfinite(result.weights)):
            raise OptimizationFailed("optimizer returned non-finite beamlet weights")
        self._weights = np.asarray(result.weights, dtype=np.float64)
        self._dose = None
        self._dvh_cache.clear()
        self.last_fluence_result = result
        # the objectives know their structure (ids may contain ':'; keys are not parsed)
        structure_of = {
            objective_key(o): None if isinstance(o, NormalTissueObjective) else o.structure_id
            for o in self._objectives
        }
        return OptimizationResult(
            success=result.success,
            total_objective_value=result.total_value,
            structure_objective_values=dict(result.structure_values),
            objective_values=[
                ObjectiveValue(key=k, structure_id=structure_of.get(k), value=v)
                for k, v in result.objective_values.items()
            ],
            iterations=result.iterations,
            wall_time_s=time.perf_counter() - t0,
            message=result.message,
        )

    def calculate_dose(self) -> None:
        """Calculate the dose of the current fluence on the whole grid."""
        if self._weights is None:
            raise DoseUnavailable("no fluence yet: optimize the plan before calculating dose")
        self._dose = self._dose_influence().dose_grid(self._weights)
        self._dvh_cache.clear()

    def normalize(self, rule: NormalizationRule) -> float:
        """Scale dose (and fluence) so that the rule holds; returns the factor applied."""
        if rule.mode is NormalizationMode.NONE:
            return 1.0
        dose = self._require_dose()
        doses = dose[self._case.mask(rule.structure_id)]
        factor = normalization_factor(doses, rule)
        self._dose = (dose * np.float32(factor)).astype(np.float32)
        if self._weights is not None:
            self._weights = self._weights * factor
        self._dvh_cache.clear()
        return factor

    # ------------------------------------------------------------------ dose
    def _require_dose(self) -> NDArray[np.float32]:
        if self._dose is None:
            raise DoseUnavailable("no calculated dose: run optimize() and calculate_dose() first")
        return self._dose

    def dose_grid(self) -> NDArray[np.float32]:
        """The calculated dose on the case grid (Gy); not part of the port."""
        return self._require_dose()

    def get_dvh(self, structure_id: str) -> DvhCurve:
        """Exact cumulative DVH of a structure from every voxel."""
        cached = self._dvh_cache.get(structure_id)
        if cached is not None:
            return cached
        mask = self._case.mask(structure_id)
        curve = dvh_from_doses(
            structure_id, self._require_dose()[mask], self._case.grid.voxel_volume_cm3
        )
        self._dvh_cache[structure_id] = curve
        return curve

    def dose_slice(self, plane: SlicePlane, index: int | None = None) -> DoseSlice:
        """A dose plane (default through the target centroid) with every structure's mask."""
        return cut_dose_slice(self._case, self._require_dose(), plane, index)
