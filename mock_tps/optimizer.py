"""Fluence optimizer of the simulated TPS (the inner loop).

Minimizes the sum of priority-weighted objective penalties (see :mod:`mock_tps.objectives`)
over beamlet weights >= 0 with L-BFGS-B, on the sampled rows of a :class:`FluenceProblem`
(see :mod:`mock_tps.fluence_problem`, re-exported here). Dose is ``A @ w`` and the gradient
``A.T @ g`` in float32; the variables are the weights divided by the cold-start weight.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, OptimizeResult, minimize
from threadpoolctl import ThreadpoolController

from esapi_bridge.errors import InvalidInput, OptimizationFailed
from mock_tps.fluence_problem import (
    NTO_KEY,
    FluenceProblem,
    ObjectiveTerm,
    OptimizerSettings,
    build_problem,
    parse_objectives,
)
from mock_tps.objectives import objective_penalty

__all__ = [
    "NTO_KEY",
    "FluenceProblem",
    "FluenceResult",
    "ObjectiveTerm",
    "OptimizerSettings",
    "build_problem",
    "delivery_measures",
    "evaluate_fluence",
    "optimize_fluence",
    "parse_objectives",
]

FloatArray = NDArray[np.float64]
#: The objective is scaled to this value at the start point inside L-BFGS-B (so that its
#: absolute tolerances act as relative ones).
_F_SCALE = 1e6
_BLAS: list[ThreadpoolController] = []


def _one_blas_thread() -> Any:
    """Context limiting BLAS to one thread: threaded level-1 BLAS inside L-BFGS-B and
    ``np.dot`` costs milliseconds per call on a loaded machine, more than the matvecs."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


@dataclass(frozen=True, eq=False)
class FluenceResult:
    """Outcome of one fluence optimization.

    ``objective_values`` are keyed by :func:`esapi_bridge.dto.objective_key` (objectives
    with the same key are summed); ``structure_values`` sum each structure's objectives,
    the normal tissue objective under ``"NTO"``. ``mu_proxy`` is the sliding-window
    monitor units of the fluence relative to open fields giving the same mean target dose
    (1 = unmodulated); ``modulation_index`` is the mean absolute difference of neighbouring
    beamlets of one beam relative to the mean weight (0 = flat).
    """

    weights: FloatArray
    success: bool
    total_value: float
    objective_values: dict[str, float]
    structure_values: dict[str, float]
    iterations: int
    function_evaluations: int
    wall_time_s: float
    message: str
    mu_proxy: float
    modulation_index: float
    smoothness_value: float = 0.0

    @property
    def total_objective_value(self) -> float:
        """Sum of the priority-weighted objective values (smoothness excluded)."""
        return self.total_value


class _Evaluator:
    """Objective value and gradient in the scaled variables ``x = w / weight_scale``."""

    def __init__(self, problem: FluenceProblem, smoothness_weight: float) -> None:
        self.problem = problem
        self.operator = problem.dose_operator
        self.scale = problem.weight_scale
        self.n_rows = problem.matrix.shape[0]
        self.laplacian: sp.csr_matrix | None = None
        first, second = problem.neighbour_pairs
        if smoothness_weight > 0.0 and first.size:
            n_pairs, n = first.size, problem.n_beamlets
            pair = np.arange(n_pairs)
            diff = sp.csr_matrix(
                (
                    np.r_[np.ones(n_pairs), -np.ones(n_pairs)],
                    (np.r_[pair, pair], np.r_[first, second]),
                ),
                shape=(n_pairs, n),
            )
            self.laplacian = sp.csr_matrix((diff.T @ diff) * (smoothness_weight / n_pairs))

    def dose(self, x: FloatArray) -> NDArray[np.float32]:
        w = (x * self.scale).astype(np.float32)
        return self.operator.dose(w)

    def term_values(
        self, dose: NDArray[np.float32], with_gradient: bool
    ) -> tuple[list[float], FloatArray | None]:
        rx = self.problem.prescription_gy
        grad = np.zeros(self.n_rows) if with_gradient else None
        values = []
        for term in self.problem.terms:
            value, g = objective_penalty(
                term.objective,
                dose[term.rows],
                rx,
                distance_mm=term.distance_mm,
                voxel_weights=term.voxel_weights,
            )
            values.append(value)
            if grad is not None and value > 0.0:
                grad[term.rows] += g  # rows of one term are unique
        return values, grad

    def smoothness(self, x: FloatArray) -> tuple[float, FloatArray | None]:
        if self.laplacian is None:
            return 0.0, None
        lx = self.laplacian @ x
        return float(x @ lx), 2.0 * lx

    def __call__(self, x: FloatArray) -> tuple[float, FloatArray]:
        values, grad_dose = self.term_values(self.dose(x), with_gradient=True)
        assert grad_dose is not None
        grad = np.asarray(self.operator.adjoint(grad_dose.astype(np.float32)), dtype=np.float64)
        grad *= self.scale
        total = math.fsum(values)
        s_value, s_grad = self.smoothness(x)
        if s_grad is not None:
            total += s_value
            grad += s_grad
        return total, grad


def evaluate_fluence(
    problem: FluenceProblem, weights: NDArray[np.floating], smoothness_weight: float = 0.0
) -> tuple[float, FloatArray]:
    """Total objective (plus smoothness term) and its gradient w.r.t. beamlet ``weights``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (problem.n_beamlets,):
        raise InvalidInput(f"weights must have shape ({problem.n_beamlets},), got {w.shape}")
    with _one_blas_thread():
        value, grad_x = _Evaluator(problem, smoothness_weight)(w / problem.weight_scale)
    return value, grad_x / problem.weight_scale


def delivery_measures(problem: FluenceProblem, weights: FloatArray) -> tuple[float, float]:
    """(MU proxy, modulation index) of beamlet ``weights``; see :class:`FluenceResult`.

    ``beamlet_ij[:, 0]`` is taken as the leaf pair and ``beamlet_ij[:, 1]`` as the
    position along the leaf travel; a leaf pair's monitor units are the sum of the
    positive fluence increments along its row, a beam's the maximum over its leaf pairs.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0 or float(w.sum()) <= 0.0:
        return 0.0, 0.0
    beam = np.asarray(problem.dij.beamlet_beam, dtype=np.int64)
    ij = np.asarray(problem.dij.beamlet_ij, dtype=np.int64)
    order = np.lexsort((ij[:, 1], ij[:, 0], beam))
    b, i, j, ws = beam[order], ij[order, 0], ij[order, 1], w[order]
    same_row = (b[1:] == b[:-1]) & (i[1:] == i[:-1])
    prev = np.zeros_like(ws)
    adjacent = same_row & (j[1:] == j[:-1] + 1)
    prev[1:][adjacent] = ws[:-1][adjacent]
    row_id = np.r_[0, np.cumsum(~same_row)]
    row_mu = np.bincount(row_id, weights=np.maximum(ws - prev, 0.0))
    row_beam = b[np.r_[0, np.flatnonzero(~same_row) + 1]]
    beam_mu = np.zeros(int(b.max()) + 1)
    np.maximum.at(beam_mu, row_beam, row_mu)
    # open fields with the same mean target dose: uniform weight c per beamlet
    dose = np.asarray(problem.dose_operator.dose(w.astype(np.float32)), dtype=np.float64)
    mean_target = float(dose[problem.target_rows].mean())
    c = mean_target * problem.weight_scale / problem.prescription_gy
    n_beams = np.unique(b).size
    mu_proxy = float(beam_mu.sum()) / (n_beams * c) if c > 0.0 else 0.0
    first, second = problem.neighbour_pairs
    modulation = float(np.abs(w[first] - w[second]).mean() / w.mean()) if first.size else 0.0
    return mu_proxy, modulation


class _Converged(StopIteration):
    """Raised from the L-BFGS-B callback when the windowed relative decrease is small."""


def _run_lbfgsb(
    evaluator: _Evaluator,
    start: FloatArray,
    f_start: float,
    g_start: FloatArray,
    settings: OptimizerSettings,
    max_iter: int,
) -> tuple[FloatArray, int, int, str, bool]:
    """L-BFGS-B from ``start``; returns (x, iterations, evaluations, message, success)."""
    k = _F_SCALE / f_start  # scipy's ftol is relative only while |f| > 1
    first = (start, f_start, g_start)
    history: list[float] = [f_start]
    window = settings.tolerance_window
    converged: list[bool] = []

    def fun(x: FloatArray) -> tuple[float, FloatArray]:
        if np.array_equal(x, first[0]):
            f, g = first[1], first[2]
        else:
            f, g = evaluator(x)
        return f * k, g * k

    def callback(intermediate_result: OptimizeResult) -> None:
        history.append(float(intermediate_result.fun) / k)
        if len(history) > window:
            before = history[-window - 1]
            if before - history[-1] <= settings.tolerance * before:
                converged.append(True)
                raise _Converged

    res = minimize(
        fun,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(np.zeros(start.size), np.full(start.size, np.inf)),
        callback=callback,
        options={
            "maxiter": max_iter,
            "maxfun": 2 * max_iter + 20,
            "ftol": 1e-12,
            "gtol": settings.gtol * _F_SCALE,
            "maxcor": settings.lbfgs_memory,
        },
    )
    x = np.maximum(np.asarray(res.x, dtype=np.float64), 0.0)
    iterations = len(history) - 1
    if converged:  # stopped by the callback
        message = (
            f"converged: objective decreased by less than {settings.tolerance:g} "
            f"over {window} iterations"
        )
    else:
        message = str(res.message)
    ok = bool(np.all(np.isfinite(x))) and (bool(converged) or res.status in (0, 1, 2))
    return x, iterations, int(res.nfev), message, ok


def _start_point(problem: FluenceProblem, x0: NDArray[np.floating] | None) -> FloatArray:
    n = problem.n_beamlets
    if x0 is None:
        return np.ones(n)
    w0 = np.asarray(x0, dtype=np.float64).ravel()
    if w0.shape != (n,):
        raise InvalidInput(f"x0 must hold one weight per beamlet ({n}), got shape {w0.shape}")
    if not np.all(np.isfinite(w0)):
        raise InvalidInput("x0 contains non-finite beamlet weights")
    peak = float(np.abs(w0).max())
    if float(w0.min()) < -1e-6 * max(peak, 1e-30):
        raise InvalidInput(f"x0 beamlet weights must be >= 0, got min {w0.min():.4g}")
    if peak <= 0.0:  # nothing to continue from: cold start
        return np.ones(n)
    return np.maximum(w0, 0.0) / problem.weight_scale


def optimize_fluence(
    problem: FluenceProblem,
    x0: NDArray[np.floating] | None = None,
    settings: OptimizerSettings | None = None,
    *,
    max_iterations: int | None = None,
) -> FluenceResult:
    """Minimize the problem's priority-weighted penalties over beamlet weights >= 0.

    Parameters
    ----------
    problem
        From :func:`build_problem` (or :meth:`FluenceProblem.with_objectives`).
    x0
        Previous fluence (warm start); ``None`` (or all zero) starts from uniform weights
        that give the target a mean dose of the prescription.
    settings
        Iteration limit, tolerances, smoothness; default ``problem.settings``.
    max_iterations
        Overrides ``settings.max_iterations`` (e.g. from an ``OptimizeRequest``); the
        iterations are also bounded by ``settings.max_work_nonzeros``.
    """
    with _one_blas_thread():
        return _optimize(problem, x0, settings, max_iterations)


def _optimize(
    problem: FluenceProblem,
    x0: NDArray[np.floating] | None,
    settings: OptimizerSettings | None,
    max_iterations: int | None,
) -> FluenceResult:
    t0 = time.perf_counter()
    settings = settings or problem.settings
    max_iter = settings.max_iterations if max_iterations is None else int(max_iterations)
    if not 1 <= max_iter <= 10_000:
        raise InvalidInput(f"max_iterations must be within 1..10000, got {max_iterations}")
    work_cap = max(1, int(settings.max_work_nonzeros // (2 * max(problem.matrix.nnz, 1))))
    capped_by_work = work_cap < max_iter
    max_iter = min(max_iter, work_cap)
    start = _start_point(problem, x0)
    evaluator = _Evaluator(problem, settings.smoothness_weight)
    f_start, g_start = evaluator(start)
    if not math.isfinite(f_start) or not np.all(np.isfinite(g_start)):
        raise OptimizationFailed("objective is not finite at the start point")
    if f_start <= 0.0:
        x, iterations, n_eval, message, ok = start, 0, 1, "all objectives met at the start", True
    else:
        x, iterations, n_eval, message, ok = _run_lbfgsb(
            evaluator, start, f_start, g_start, settings, max_iter
        )
    if capped_by_work and iterations >= max_iter:
        message += f" (work limit: {max_iter} iterations on {problem.matrix.nnz:,} non-zeros)"
    if not np.all(np.isfinite(x)):
        raise OptimizationFailed(f"optimizer produced non-finite weights ({message})")
    values, _ = evaluator.term_values(evaluator.dose(x), with_gradient=False)
    smooth_value, _ = evaluator.smoothness(x)
    by_key: dict[str, float] = defaultdict(float)
    by_structure: dict[str, float] = defaultdict(float)
    for term, value in zip(problem.terms, values, strict=True):
        by_key[term.key] += value
        by_structure[term.structure_id] += value
    weights = x * problem.weight_scale
    mu_proxy, modulation = delivery_measures(problem, weights)
    return FluenceResult(
        weights=weights,
        success=ok,
        total_value=math.fsum(values),
        objective_values=dict(by_key),
        structure_values=dict(by_structure),
        iterations=iterations,
        function_evaluations=n_eval,
        wall_time_s=time.perf_counter() - t0,
        message=message,
        mu_proxy=mu_proxy,
        modulation_index=modulation,
        smoothness_value=smooth_value,
    )
