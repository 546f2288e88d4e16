"""Dose planes through a case for pictures (axial, coronal, sagittal)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import DoseSlice, SlicePlane
from esapi_bridge.errors import InvalidInput
from mock_tps.case import Case

# plane -> (axis cut through, row axis, column axis); arrays are [ix, iy, iz]
_PLANES: dict[SlicePlane, tuple[int, int, int]] = {
    SlicePlane.AXIAL: (2, 1, 0),  # rows y (ant->post), columns x
    SlicePlane.CORONAL: (1, 2, 0),  # rows z, columns x
    SlicePlane.SAGITTAL: (0, 2, 1),  # rows z, columns y
}
_AXIS_NAMES = ("x", "y", "z")


def target_centre_index(case: Case) -> tuple[int, int, int]:
    """Voxel index of the centroid of the prescribed targets."""
    idx = np.argwhere(case.target_mask)
    centre = np.rint(idx.mean(axis=0)).astype(int)
    return int(centre[0]), int(centre[1]), int(centre[2])


def dose_slice(
    case: Case, dose_gy: NDArray[np.float32], plane: SlicePlane, index: int | None = None
) -> DoseSlice:
    """Cut ``dose_gy`` and every structure mask along ``plane`` at voxel ``index``."""
    cut_axis, row_axis, col_axis = _PLANES[SlicePlane(plane)]
    n = case.grid.shape[cut_axis]
    if index is None:
        index = target_centre_index(case)[cut_axis]
    if not 0 <= index < n:
        raise InvalidInput(f"slice index {index} outside 0..{n - 1} along {_AXIS_NAMES[cut_axis]}")

    def cut(volume: NDArray[np.generic]) -> NDArray[np.generic]:
        plane2d = np.take(volume, index, axis=cut_axis)
        # remaining axes keep their order; put row_axis first
        remaining = [a for a in range(3) if a != cut_axis]
        return plane2d if remaining[0] == row_axis else plane2d.T

    sp = case.grid.spacing_mm
    org = case.grid.origin_mm
    return DoseSlice(
        plane=SlicePlane(plane),
        index=index,
        position_mm=float(org[cut_axis] + index * sp[cut_axis]),
        row_axis=_AXIS_NAMES[row_axis],
        col_axis=_AXIS_NAMES[col_axis],
        spacing_mm=(sp[row_axis], sp[col_axis]),
        origin_mm=(org[row_axis], org[col_axis]),
        dose_gy=np.round(cut(dose_gy).astype(np.float64), 4).tolist(),
        masks={sid: cut(s.mask).astype(bool).tolist() for sid, s in case.structures.items()},
    )
