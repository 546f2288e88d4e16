"""Physics parameters of the 6 MV pencil-beam engine (see :mod:`mock_tps.dose_engine`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput

F32 = NDArray[np.float32]

_RANGES: dict[str, tuple[float, float]] = {
    "surface_dose_fraction": (0.0, 1.0),
    "buildup_coefficient_per_mm": (0.01, 5.0),
    "attenuation_coefficient_per_mm": (0.0, 0.05),
    "scatter_buildup_fraction": (0.0, 2.0),
    "scatter_buildup_length_mm": (1.0, 1000.0),
    "sigma_at_surface_mm": (0.3, 20.0),
    "sigma_growth_mm_per_mm": (0.0, 0.2),
    "output_gy_per_unit_weight": (1e-6, 1e6),
    "dose_cutoff_fraction": (0.0, 0.1),
    "ray_step_fraction": (0.1, 2.0),
}


@dataclass(frozen=True)
class EngineParams:
    """Physics knobs of the pencil-beam engine (6 MV). ``repr`` feeds the dose-matrix cache key.

    Depth dose (water-equivalent depth ``d`` in mm)::

        T(d) = [1 - (1 - surface_dose_fraction) exp(-buildup_coefficient_per_mm d)]
               * exp(-attenuation_coefficient_per_mm d)
               * [1 + scatter_buildup_fraction (1 - exp(-d / scatter_buildup_length_mm))]

    normalized to its maximum. The defaults are a least-squares fit to the BJR Supplement 25
    6 MV, 10 x 10 cm2, SSD 100 cm central-axis depth dose (after removing the inverse square):
    within 0.3 % from 5 to 30 cm depth, dmax 15 mm.

    Lateral Gaussian sigma at depth: ``sigma_at_surface_mm + sigma_growth_mm_per_mm * d``
    (80-20 % penumbra = 1.68 sigma: 3.0 mm at dmax, 5.1 mm at 10 cm).

    ``output_gy_per_unit_weight``: dose at the maximum of ``T`` on the central axis of a broad
    field at the isocenter distance, per unit beamlet weight (at SSD 100 cm, dmax 15 mm, the dose
    is ``(1000 / 1015)^2`` = 0.97 of it). ``dose_cutoff_fraction``: entries below this fraction of
    their beamlet's maximum are dropped. ``ray_step_fraction``: step of the radiological-depth
    ray lattice (along and across rays) as a fraction of the smallest voxel spacing.
    """

    surface_dose_fraction: float = 0.2
    buildup_coefficient_per_mm: float = 0.2606
    attenuation_coefficient_per_mm: float = 0.004356
    scatter_buildup_fraction: float = 0.3011
    scatter_buildup_length_mm: float = 123.05
    sigma_at_surface_mm: float = 1.6
    sigma_growth_mm_per_mm: float = 0.014
    output_gy_per_unit_weight: float = 1.0
    dose_cutoff_fraction: float = 1e-3
    ray_step_fraction: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = _RANGES[f.name]
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and lo <= value <= hi):
                raise InvalidInput(
                    f"EngineParams.{f.name} must be within {lo:g}..{hi:g}, got {value!r}"
                )

    def depth_dose(self, depth_mm: NDArray[np.floating] | float) -> F32:
        """Relative depth dose ``T(d) / max(T)`` at water-equivalent depth ``depth_mm``."""
        d = np.asarray(depth_mm, dtype=np.float32)
        return np.asarray(_depth_dose_raw(self, d) / np.float32(_t_max(self)), dtype=np.float32)

    def sigma_mm(self, depth_mm: NDArray[np.floating] | float) -> F32:
        """Lateral Gaussian sigma (mm, at depth) at water-equivalent depth ``depth_mm``."""
        d = np.asarray(depth_mm, dtype=np.float32)
        sigma = np.float32(self.sigma_at_surface_mm) + np.float32(self.sigma_growth_mm_per_mm) * d
        return np.asarray(sigma, dtype=np.float32)


def _depth_dose_raw(p: EngineParams, d: NDArray[np.floating]) -> NDArray[np.floating]:
    dt = d.dtype.type
    buildup = dt(1.0) - dt(1.0 - p.surface_dose_fraction) * np.exp(
        dt(-p.buildup_coefficient_per_mm) * d
    )
    scatter = dt(1.0) + dt(p.scatter_buildup_fraction) * (
        dt(1.0) - np.exp(d * dt(-1.0 / p.scatter_buildup_length_mm))
    )
    return np.asarray(buildup * np.exp(dt(-p.attenuation_coefficient_per_mm) * d) * scatter)


@lru_cache(maxsize=32)
def _t_max(p: EngineParams) -> float:
    d = np.linspace(0.0, 400.0, 40001)
    return float(_depth_dose_raw(p, d).max())
