"""Penalties of the Eclipse objective kinds and their gradients with respect to voxel dose.

Every penalty is quadratic in the dose difference relative to the prescription
(``(d - D) / Rx``), multiplied by the objective's priority and averaged over the
structure's voxels, so that values are comparable across sites and structure sizes.
Each function returns ``(value, gradient)``; the gradient has the shape of the dose.

DVH point objectives follow the usual TPS semantics: an upper objective (D, V %)
penalizes only the voxels whose dose lies between D and the dose at volume V (up to
V % of the voxels may stay above D); a lower one penalizes the voxels between the dose
at volume V and D when fewer than V % reach D. The dose at volume V is held fixed when
differentiating (it only selects which voxels are penalized).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
)
from esapi_bridge.errors import InvalidInput, InvalidObjective

FloatArray = NDArray[np.float64]
Penalty = tuple[float, FloatArray]

#: Dose shift (as a fraction of the prescription) that keeps gEUD finite at zero dose for a < 1.
GEUD_DOSE_FLOOR_REL = 1e-3
_EPS_COUNT = 1e-9


def _as_dose(dose_gy: NDArray[np.floating]) -> FloatArray:
    d = np.asarray(dose_gy, dtype=np.float64).ravel()
    if d.size == 0:
        raise InvalidInput("dose_gy must contain at least one voxel, got an empty array")
    return d


def _check_rx(prescription_gy: float) -> float:
    if not (math.isfinite(prescription_gy) and prescription_gy > 0.0):
        raise InvalidInput(f"prescription_gy must be finite and > 0, got {prescription_gy}")
    return float(prescription_gy)


def voxels_allowed_above(n_voxels: int, volume_pct: float) -> int:
    """How many of ``n_voxels`` an upper objective at ``volume_pct`` lets stay above its dose."""
    return min(n_voxels, math.floor(volume_pct * n_voxels / 100.0 + _EPS_COUNT))


def voxels_required_above(n_voxels: int, volume_pct: float) -> int:
    """How many of ``n_voxels`` a lower objective at ``volume_pct`` needs at or above its dose."""
    return min(n_voxels, max(0, math.ceil(volume_pct * n_voxels / 100.0 - _EPS_COUNT)))


def _upper_point(d: FloatArray, goal_gy: float, volume_pct: float, scale: float) -> Penalty:
    grad = np.zeros_like(d)
    above = np.flatnonzero(d > goal_gy)
    allowed = voxels_allowed_above(d.size, volume_pct)
    if above.size <= allowed:
        return 0.0, grad
    if allowed > 0:
        # penalize the above-goal voxels except the `allowed` hottest ones
        order = np.argpartition(d[above], above.size - allowed)
        above = above[order[: above.size - allowed]]
    diff = d[above] - goal_gy
    grad[above] = 2.0 * scale * diff
    return float(scale * np.dot(diff, diff)), grad


def _lower_point(d: FloatArray, goal_gy: float, volume_pct: float, scale: float) -> Penalty:
    grad = np.zeros_like(d)
    required = voxels_required_above(d.size, volume_pct)
    below = np.flatnonzero(d < goal_gy)
    missing = required - (d.size - below.size)
    if missing <= 0:
        return 0.0, grad
    if missing < below.size:
        # penalize the `missing` hottest of the below-goal voxels
        order = np.argpartition(d[below], below.size - missing)
        below = below[order[below.size - missing :]]
    diff = d[below] - goal_gy
    grad[below] = 2.0 * scale * diff
    return float(scale * np.dot(diff, diff)), grad


def point_penalty(
    dose_gy: NDArray[np.floating],
    goal_gy: float,
    volume_pct: float,
    operator: ObjectiveOperator,
    prescription_gy: float,
    priority: float = 1.0,
) -> Penalty:
    """DVH point objective: ``priority * sum((d - D)^2 over penalized voxels) / (N Rx^2)``.

    Parameters
    ----------
    dose_gy
        Dose of each voxel of the structure (Gy).
    goal_gy, volume_pct
        The DVH point (D, V %).
    operator
        Upper, lower or exact (exact = upper + lower at the same point).
    prescription_gy
        Prescription used to make the dose difference relative.
    priority
        Weight of the objective.
    """
    d = _as_dose(dose_gy)
    if not 0.0 <= volume_pct <= 100.0:
        raise InvalidInput(f"volume_pct must be within 0..100, got {volume_pct}")
    scale = priority / (d.size * _check_rx(prescription_gy) ** 2)
    if operator is ObjectiveOperator.UPPER:
        return _upper_point(d, goal_gy, volume_pct, scale)
    if operator is ObjectiveOperator.LOWER:
        return _lower_point(d, goal_gy, volume_pct, scale)
    v_up, g_up = _upper_point(d, goal_gy, volume_pct, scale)
    v_lo, g_lo = _lower_point(d, goal_gy, volume_pct, scale)
    return v_up + v_lo, g_up + g_lo


def mean_dose_penalty(
    dose_gy: NDArray[np.floating], goal_gy: float, prescription_gy: float, priority: float = 1.0
) -> Penalty:
    """Upper mean-dose objective: ``priority * (max(0, mean - D) / Rx)^2``."""
    d = _as_dose(dose_gy)
    rx = _check_rx(prescription_gy)
    excess = float(d.mean()) - goal_gy
    if excess <= 0.0:
        return 0.0, np.zeros_like(d)
    grad = np.full_like(d, 2.0 * priority * excess / (rx * rx * d.size))
    return priority * (excess / rx) ** 2, grad


def geud_and_gradient(
    dose_gy: NDArray[np.floating], parameter_a: float, floor_gy: float = 0.0
) -> tuple[float, FloatArray]:
    """Generalized EUD ``(mean d^a)^(1/a)`` and its gradient with respect to each dose.

    For ``a < 1`` the dose is shifted by ``floor_gy`` (> 0) so that zero doses stay finite.
    Doses are scaled by their maximum (a > 0) or minimum (a < 0) before the power, so
    that large ``|a|`` neither overflows nor underflows.
    """
    if parameter_a == 0.0 or not math.isfinite(parameter_a):
        raise InvalidInput(f"parameter_a must be finite and non-zero, got {parameter_a}")
    a = float(parameter_a)
    d = np.maximum(_as_dose(dose_gy), 0.0)
    if a < 1.0:
        if floor_gy <= 0.0:
            raise InvalidInput(f"floor_gy must be > 0 for parameter_a < 1, got {floor_gy}")
        d = d + floor_gy
    ref = float(d.max()) if a > 0 else float(d.min())
    if ref <= 0.0:  # a >= 1 and every dose is zero: gEUD 0, gradient of the mean
        return 0.0, np.full_like(d, 1.0 / d.size)
    u = d / ref
    ua1 = u ** (a - 1.0)
    s = float(np.dot(ua1, u)) / d.size  # mean(u^a), within [1/N, 1]
    value = ref * s ** (1.0 / a)
    grad = ua1 * (s ** (1.0 / a - 1.0) / d.size)
    return value, grad


def geud_penalty(
    dose_gy: NDArray[np.floating],
    goal_gy: float,
    parameter_a: float,
    operator: ObjectiveOperator,
    prescription_gy: float,
    priority: float = 1.0,
) -> Penalty:
    """gEUD objective: ``priority * (max(0, gEUD - D) / Rx)^2`` (upper; lower and exact alike)."""
    rx = _check_rx(prescription_gy)
    eud, deud = geud_and_gradient(dose_gy, parameter_a, GEUD_DOSE_FLOOR_REL * rx)
    diff = eud - goal_gy
    if (operator is ObjectiveOperator.UPPER and diff <= 0.0) or (
        operator is ObjectiveOperator.LOWER and diff >= 0.0
    ):
        return 0.0, np.zeros_like(deud)
    return priority * (diff / rx) ** 2, deud * (2.0 * priority * diff / (rx * rx))


def nto_allowed_dose_gy(
    distance_mm: NDArray[np.floating], nto: NormalTissueObjective, prescription_gy: float
) -> FloatArray:
    """Allowed dose of the normal tissue objective at each distance from the target border.

    ``start % Rx`` within ``distance_from_target_border_mm``; beyond it
    ``end + (start - end) * exp(-fall_off * (r - distance))`` (% Rx).
    """
    rx = _check_rx(prescription_gy)
    r = np.asarray(distance_mm, dtype=np.float64)
    beyond = np.maximum(r - nto.distance_from_target_border_mm, 0.0)
    start, end = nto.start_dose_pct / 100.0, nto.end_dose_pct / 100.0
    return rx * (end + (start - end) * np.exp(-nto.fall_off * beyond))


def nto_penalty(
    dose_gy: NDArray[np.floating],
    distance_mm: NDArray[np.floating],
    nto: NormalTissueObjective,
    prescription_gy: float,
    voxel_weights: NDArray[np.floating] | None = None,
) -> Penalty:
    """Normal tissue objective: ``priority * sum(w * max(0, d - allowed)^2) / Rx^2``.

    ``voxel_weights`` (summing to 1) weight a stratified sample; uniform ``1/N`` if omitted.
    """
    d = _as_dose(dose_gy)
    rx = _check_rx(prescription_gy)
    r = np.asarray(distance_mm, dtype=np.float64).ravel()
    if r.shape != d.shape:
        raise InvalidInput(f"distance_mm must have shape {d.shape}, got {r.shape}")
    excess = np.maximum(d - nto_allowed_dose_gy(r, nto, rx), 0.0)
    if voxel_weights is None:
        w: FloatArray | float = 1.0 / d.size
        value = float(np.dot(excess, excess)) / d.size
    else:
        w = np.asarray(voxel_weights, dtype=np.float64).ravel()
        if w.shape != d.shape:
            raise InvalidInput(f"voxel_weights must have shape {d.shape}, got {w.shape}")
        value = float(np.dot(w * excess, excess))
    scale = nto.priority / (rx * rx)
    return scale * value, (2.0 * scale) * w * excess


def objective_penalty(
    objective: Objective,
    dose_gy: NDArray[np.floating],
    prescription_gy: float,
    *,
    distance_mm: NDArray[np.floating] | None = None,
    voxel_weights: NDArray[np.floating] | None = None,
) -> Penalty:
    """Priority-weighted penalty and gradient of any objective kind on its voxels' doses.

    ``distance_mm`` (and optionally ``voxel_weights``) are needed by the normal tissue objective.
    """
    if objective.priority == 0.0:
        return 0.0, np.zeros(np.asarray(dose_gy).size)
    if isinstance(objective, PointObjective):
        return point_penalty(
            dose_gy,
            objective.dose_gy,
            objective.volume_pct,
            objective.operator,
            prescription_gy,
            objective.priority,
        )
    if isinstance(objective, MeanDoseObjective):
        return mean_dose_penalty(dose_gy, objective.dose_gy, prescription_gy, objective.priority)
    if isinstance(objective, EudObjective):
        return geud_penalty(
            dose_gy,
            objective.dose_gy,
            objective.parameter_a,
            objective.operator,
            prescription_gy,
            objective.priority,
        )
    if isinstance(objective, NormalTissueObjective):
        if distance_mm is None:
            raise InvalidObjective("the normal tissue objective needs distance_mm of its voxels")
        return nto_penalty(dose_gy, distance_mm, objective, prescription_gy, voxel_weights)
    raise InvalidObjective(f"unsupported objective kind {type(objective).__name__}")
