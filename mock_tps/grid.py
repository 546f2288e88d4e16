"""The voxel grid of a case: shape, spacing and origin, in patient coordinates.

Conventions (used everywhere in ``mock_tps``): arrays are indexed ``[ix, iy, iz]``;
``x`` runs from the patient's right to left, ``y`` from anterior to posterior,
``z`` from inferior to superior (DICOM patient coordinates, head-first supine).
``origin_mm`` is the centre of voxel ``(0, 0, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput

#: Largest grid (voxels) we accept: about 2 GB of float32 working arrays per beam.
MAX_VOXELS = 60_000_000


@dataclass(frozen=True)
class Grid:
    """A regular 3D voxel grid."""

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(n) < 1 for n in self.shape):
            raise InvalidInput(f"grid shape must be three positive integers, got {self.shape}")
        if len(self.spacing_mm) != 3 or any(not (0.5 <= s <= 20.0) for s in self.spacing_mm):
            raise InvalidInput(
                f"grid spacing_mm must be three values within 0.5..20 mm, got {self.spacing_mm}"
            )
        if self.n_voxels > MAX_VOXELS:
            raise InvalidInput(
                f"grid of {self.n_voxels:,} voxels exceeds the limit of {MAX_VOXELS:,}: "
                "use a coarser spacing_mm (2-5 mm) or a smaller field of view"
            )

    @property
    def n_voxels(self) -> int:
        """Number of voxels."""
        return int(np.prod(self.shape))

    @property
    def voxel_volume_cm3(self) -> float:
        """Volume of one voxel in cm3."""
        sx, sy, sz = self.spacing_mm
        return sx * sy * sz / 1000.0

    def axis_mm(self, axis: int) -> NDArray[np.float64]:
        """Coordinates (mm) of the voxel centres along ``axis`` (0 = x, 1 = y, 2 = z)."""
        steps = np.arange(self.shape[axis], dtype=np.float64)
        return np.asarray(self.origin_mm[axis] + self.spacing_mm[axis] * steps, dtype=np.float64)

    def centres_mm(self, flat_indices: NDArray[np.integer]) -> NDArray[np.float64]:
        """Centres (n, 3) in mm of voxels given by C-order flat indices."""
        ijk = np.stack(np.unravel_index(flat_indices, self.shape), axis=1).astype(np.float64)
        return np.asarray(self.origin_mm) + ijk * np.asarray(self.spacing_mm)

    @classmethod
    def covering(
        cls, extent_mm: tuple[float, float, float], spacing_mm: float | tuple[float, float, float]
    ) -> Grid:
        """A grid centred on the origin that covers ``extent_mm`` (full widths) at ``spacing_mm``."""
        sp = (spacing_mm,) * 3 if isinstance(spacing_mm, float | int) else tuple(spacing_mm)
        spacing = (float(sp[0]), float(sp[1]), float(sp[2]))
        shape = tuple(max(1, int(np.ceil(e / s))) for e, s in zip(extent_mm, spacing, strict=True))
        origin = tuple(-(n - 1) * s / 2.0 for n, s in zip(shape, spacing, strict=True))
        return cls(
            shape=(shape[0], shape[1], shape[2]),
            spacing_mm=spacing,
            origin_mm=(origin[0], origin[1], origin[2]),
        )

    def coordinates_mm(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Dense (x, y, z) coordinate arrays of every voxel centre (``np.meshgrid``, ij indexing)."""
        x, y, z = np.meshgrid(self.axis_mm(0), self.axis_mm(1), self.axis_mm(2), indexing="ij")
        return x, y, z
