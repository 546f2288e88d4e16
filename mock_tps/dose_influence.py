"""The dose-influence matrix (D_ij): dose per unit weight of every beamlet in every voxel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput


@dataclass(frozen=True)
class DoseInfluence:
    """Sparse dose-influence matrix of a beam set on a case grid.

    Attributes
    ----------
    matrix
        float32 CSR, shape (n_rows, n_beamlets): Gy per unit beamlet weight.
    voxel_indices
        C-order flat grid index of each row, sorted ascending (the body voxels).
    grid_shape
        Shape of the case grid the flat indices refer to.
    beamlet_beam
        Index (into ``BeamSet.beams``) of the beam each column belongs to.
    beamlet_ij
        (n_beamlets, 2) integer position of each beamlet in its beam's beamlet grid
        (neighbours differ by 1 in one coordinate; used for fluence smoothness).
    """

    matrix: sp.csr_matrix
    voxel_indices: NDArray[np.int64]
    grid_shape: tuple[int, int, int]
    beamlet_beam: NDArray[np.int32]
    beamlet_ij: NDArray[np.int32]

    @property
    def n_beamlets(self) -> int:
        """Number of beamlets (columns)."""
        return int(self.matrix.shape[1])

    def rows_of(self, mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Rows of the voxels of ``mask`` that lie in the matrix (voxels outside are dropped)."""
        if mask.shape != self.grid_shape:
            raise InvalidInput(f"mask shape {mask.shape} does not match grid {self.grid_shape}")
        flat = np.flatnonzero(mask)
        pos = np.searchsorted(self.voxel_indices, flat)
        pos = np.clip(pos, 0, max(0, self.voxel_indices.size - 1))
        keep = self.voxel_indices[pos] == flat if self.voxel_indices.size else np.zeros(0, bool)
        return pos[keep].astype(np.int64)

    def dose_rows(self, weights: NDArray[np.floating]) -> NDArray[np.float32]:
        """Dose (Gy) of every row for beamlet ``weights``."""
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != (self.n_beamlets,):
            raise InvalidInput(f"weights must have shape ({self.n_beamlets},), got {w.shape}")
        return np.asarray(self.matrix @ w, dtype=np.float32)

    def dose_grid(self, weights: NDArray[np.floating]) -> NDArray[np.float32]:
        """Dose (Gy) on the whole grid (zero outside the rows)."""
        out = np.zeros(int(np.prod(self.grid_shape)), dtype=np.float32)
        out[self.voxel_indices] = self.dose_rows(weights)
        return out.reshape(self.grid_shape)
