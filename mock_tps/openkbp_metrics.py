"""OpenKBP's DVH criteria, with OpenKBP's own definitions (its evaluation code).

Per target (PTV70, PTV63, PTV56): ``D99``, ``D95`` and ``D1`` as ``numpy.percentile`` of
the structure's voxel doses at 1, 5 and 99. Per organ at risk: ``D0.1cc``, the percentile
at ``100 - n / size * 100`` with ``n = max(1, round(100 mm3 / voxel volume))`` voxels (the
hottest 0.1 cm3), and ``mean``. Every voxel of the mask counts with equal weight (no
partial volumes), as in OpenKBP.

Each criterion states the direction of "better" (coverage up, hot spots and organ doses
down) and a tie tolerance (:data:`TIE_GY`) under which two plans count as equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import EmptyStructure

TargetMetric = Literal["D99", "D95", "D1"]
OarMetric = Literal["D0.1cc", "mean"]
TARGET_METRICS: tuple[TargetMetric, ...] = ("D99", "D95", "D1")
OAR_METRICS: tuple[OarMetric, ...] = ("D0.1cc", "mean")
#: Direction of "better" per criterion: higher coverage, lower hot spot and organ dose.
BETTER: dict[str, Literal["higher", "lower"]] = {
    "D99": "higher",
    "D95": "higher",
    "D1": "lower",
    "D0.1cc": "lower",
    "mean": "lower",
}
#: Two values closer than this are a tie (Gy): 0.5 Gy, under 1 % of the 70 Gy prescription
#: and below the agreement one can expect between two dose engines (ours: our choice).
TIE_GY = 0.5
_PERCENTILE = {"D99": 1.0, "D95": 5.0, "D1": 99.0}


def tenth_cc_voxels(voxel_volume_mm3: float) -> int:
    """OpenKBP's voxel count of 0.1 cm3: ``max(1, round(100 / voxel_volume_mm3))``."""
    return int(max(1.0, float(np.round(100.0 / voxel_volume_mm3))))


def openkbp_metric(doses_gy: NDArray[np.floating], metric: str, voxel_volume_mm3: float) -> float:
    """One OpenKBP criterion of the voxel doses of one structure (Gy).

    Raises :class:`EmptyStructure` without voxels, :class:`ValueError` for an unknown metric.
    """
    d = np.asarray(doses_gy, dtype=np.float64).ravel()
    if d.size == 0:
        raise EmptyStructure(f"no voxel: OpenKBP metric {metric} is undefined")
    if metric in _PERCENTILE:
        return float(np.percentile(d, _PERCENTILE[metric]))
    if metric == "D0.1cc":
        q = 100.0 - tenth_cc_voxels(voxel_volume_mm3) / d.size * 100.0
        return float(np.percentile(d, max(q, 0.0)))
    if metric == "mean":
        return float(d.mean())
    raise ValueError(f"unknown OpenKBP metric {metric!r}; known: {', '.join(BETTER)}")


def openkbp_metrics(
    dose_gy: NDArray[np.floating],
    masks: Mapping[str, NDArray[np.bool_]],
    targets: set[str] | frozenset[str],
    voxel_volume_mm3: float,
) -> dict[str, dict[str, float]]:
    """OpenKBP's criteria of every structure: targets D99/D95/D1, the others D0.1cc/mean.

    Parameters
    ----------
    dose_gy
        The dose on the masks' grid.
    masks
        Structure id -> voxel mask (empty masks are left out).
    targets
        The ids that are targets.
    voxel_volume_mm3
        The voxel volume (for D0.1cc).
    """
    out: dict[str, dict[str, float]] = {}
    for sid, mask in masks.items():
        if not mask.any():
            continue
        doses = np.asarray(dose_gy)[mask]
        names = TARGET_METRICS if sid in targets else OAR_METRICS
        out[sid] = {m: openkbp_metric(doses, m, voxel_volume_mm3) for m in names}
    return out
