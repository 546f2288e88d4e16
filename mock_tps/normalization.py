"""Plan normalization: the factor that scales the dose so that a rule (e.g. PTV D95 = Rx) holds."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import NormalizationMode, NormalizationRule
from esapi_bridge.errors import EmptyStructure, InvalidInput, OptimizationFailed


def dose_at_volume_gy(dose_gy: NDArray[np.floating], volume_pct: float) -> float:
    """Minimum dose received by the hottest ``volume_pct`` % of the voxels (D_V%).

    The hottest ``ceil(V N / 100)`` voxels (at least one) are taken, so D0 is the
    maximum and D100 the minimum, as in :meth:`esapi_bridge.dto.DvhCurve.dose_at_volume_pct`.
    """
    d = np.asarray(dose_gy, dtype=np.float64).ravel()
    if d.size == 0:
        raise EmptyStructure("no voxel: dose at volume is undefined")
    if not 0.0 <= volume_pct <= 100.0:
        raise InvalidInput(f"volume_pct must be within 0..100, got {volume_pct}")
    k = min(d.size, max(1, math.ceil(volume_pct * d.size / 100.0 - 1e-9)))
    return float(np.partition(d, d.size - k)[d.size - k])


def normalization_factor(
    dose_gy_of_structure: NDArray[np.floating], rule: NormalizationRule
) -> float:
    """Factor by which the plan dose must be multiplied so that ``rule`` holds.

    Parameters
    ----------
    dose_gy_of_structure
        Dose (Gy) of every voxel of ``rule.structure_id``.
    rule
        ``DOSE_AT_VOLUME``: D at ``volume_pct`` = ``dose_gy``; ``MEAN``: mean = ``dose_gy``;
        ``NONE``: factor 1.

    Raises
    ------
    EmptyStructure
        The structure has no voxel.
    InvalidInput
        The dose contains non-finite or negative values.
    OptimizationFailed
        The structure receives no dose at the reference point (nothing to scale).
    """
    if rule.mode is NormalizationMode.NONE:
        return 1.0
    d = np.asarray(dose_gy_of_structure, dtype=np.float64).ravel()
    sid = rule.structure_id
    if d.size == 0:
        raise EmptyStructure(f"structure {sid!r} has no voxel: cannot normalize to it")
    if not np.all(np.isfinite(d)):
        raise InvalidInput(f"dose of structure {sid!r} contains non-finite values")
    if float(d.min()) < 0.0:
        raise InvalidInput(f"dose of structure {sid!r} must be >= 0 Gy, got min {d.min():.4g} Gy")
    if rule.mode is NormalizationMode.MEAN:
        current = float(d.mean())
        what = "mean dose"
    else:
        current = dose_at_volume_gy(d, rule.volume_pct)
        what = f"D{rule.volume_pct:g}%"
    if current <= 0.0:
        raise OptimizationFailed(
            f"cannot normalize: structure {sid!r} receives {what} = 0 Gy "
            "(no dose there; optimize with objectives on it first)"
        )
    return rule.dose_gy / current
