"""Analytic DVHs for tests: uniform dose ramps and constant doses (values hand-computable)."""

from __future__ import annotations

from esapi_bridge.dto import DvhCurve


def ramp(sid: str, lo: float, hi: float, volume_cm3: float = 100.0) -> DvhCurve:
    """Uniformly distributed dose between lo and hi: V(d) = 100 (hi - d) / (hi - lo) on [lo, hi]."""
    return DvhCurve(
        structure_id=sid,
        volume_cm3=volume_cm3,
        dose_gy=[0.0, lo, hi],
        volume_pct=[100.0, 100.0, 0.0],
        min_dose_gy=lo,
        mean_dose_gy=(lo + hi) / 2.0,
        max_dose_gy=hi,
    )


def constant(sid: str, dose: float, volume_cm3: float = 100.0) -> DvhCurve:
    """Every voxel receives ``dose`` (a ramp 1e-6 Gy wide)."""
    return ramp(sid, dose, dose + 1e-6, volume_cm3)
