"""Exact cumulative DVHs of voxel doses (every voxel of the structure counts)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import DvhCurve
from esapi_bridge.errors import EmptyStructure, InvalidInput

#: Default DVH bin width (Gy); the issue asks for at most 0.1 Gy.
DEFAULT_BIN_GY = 0.01


def dvh_from_doses(
    structure_id: str,
    doses_gy: NDArray[np.floating],
    voxel_volume_cm3: float,
    bin_width_gy: float = DEFAULT_BIN_GY,
) -> DvhCurve:
    """Cumulative DVH of ``doses_gy`` (one value per voxel of the structure).

    ``volume_pct`` at each bin edge is the exact share of voxels receiving at
    least that dose; point queries interpolate between edges ``bin_width_gy`` apart.
    """
    if not 0.0 < bin_width_gy <= 0.1:
        raise InvalidInput(f"bin_width_gy must be within (0, 0.1] Gy, got {bin_width_gy}")
    d = np.sort(np.asarray(doses_gy, dtype=np.float64).ravel())
    if d.size == 0:
        raise EmptyStructure(f"structure {structure_id!r} has no voxel: no DVH")
    if not np.all(np.isfinite(d)):
        raise InvalidInput(f"dose of structure {structure_id!r} contains non-finite values")
    d = np.maximum(d, 0.0)
    d_max = float(d[-1])
    n_bins = max(1, int(np.ceil(d_max / bin_width_gy)))
    edges = np.arange(n_bins + 1, dtype=np.float64) * bin_width_gy
    # share of voxels with dose >= edge
    below = np.searchsorted(d, edges, side="left")
    vol = 100.0 * (d.size - below) / d.size
    # close the curve exactly at the maximum dose
    keep = edges < d_max
    at_max = 100.0 * (d.size - np.searchsorted(d, d_max, side="left")) / d.size
    edges = np.append(edges[keep], [d_max, d_max + 1e-6])
    vol = np.append(vol[keep], [at_max, 0.0])
    return DvhCurve(
        structure_id=structure_id,
        volume_cm3=d.size * voxel_volume_cm3,
        dose_gy=edges.tolist(),
        volume_pct=vol.tolist(),
        min_dose_gy=float(d[0]),
        mean_dose_gy=float(d.mean()),
        max_dose_gy=d_max,
    )
