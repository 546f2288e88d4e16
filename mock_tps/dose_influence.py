"""The dose-influence operator (D_ij): dose per unit weight of every beamlet in every voxel.

``D = (P + I V G) T``: ``P`` the sparse primary matrix (:mod:`mock_tps.pencil_beam`), ``I V G``
the broad part on a coarse grid (:mod:`mock_tps.scatter`), ``T`` the collimator transmission
(each beamlet's fluence becomes ``(1 - t) w + t * mean weight of its beam``: closed beamlets get
the transmitted fraction of the beam's fluence; a uniform field is unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput

F32 = NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class BroadDose:
    """The broad part ``I V G``: ``values`` (nodes x columns, float32), ``column_of`` (one per
    beamlet) and ``interp`` (rows x nodes, float32 CSR)."""

    values: F32
    column_of: NDArray[np.int32]
    interp: sp.csr_matrix

    def restricted(self, rows: NDArray[np.int64]) -> BroadDose:
        """The same operator on a subset of the rows."""
        return BroadDose(self.values, self.column_of, sp.csr_matrix(self.interp[rows]))


def _beam_means(w: F32, beam: NDArray[np.int32], counts: NDArray[np.float64]) -> F32:
    sums = np.bincount(beam, weights=w, minlength=counts.size)
    return np.asarray((sums / counts)[beam], dtype=np.float32)


@dataclass(frozen=True, eq=False)
class DoseOperator:
    """``(P + I V G) T`` on some rows: :meth:`dose` and its adjoint :meth:`adjoint`."""

    primary: sp.csr_matrix
    broad: BroadDose | None
    beamlet_beam: NDArray[np.int32]
    transmission: float

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, beamlets)."""
        return int(self.primary.shape[0]), int(self.primary.shape[1])

    def _counts(self) -> NDArray[np.float64]:
        return np.maximum(np.bincount(self.beamlet_beam).astype(np.float64), 1.0)

    def _transmit(self, w: F32) -> F32:
        t = self.transmission
        if t <= 0.0 or w.size == 0:
            return w
        mean = _beam_means(w, self.beamlet_beam, self._counts())
        return np.asarray((1.0 - t) * w + t * mean, dtype=np.float32)

    def dose(self, weights: NDArray[np.floating]) -> F32:
        """Dose (Gy) of the rows for beamlet ``weights``."""
        w = self._transmit(np.asarray(weights, dtype=np.float32))
        out = np.asarray(self.primary @ w, dtype=np.float32)
        if self.broad is not None and self.broad.values.size:
            col_w = np.bincount(
                self.broad.column_of, weights=w, minlength=self.broad.values.shape[1]
            ).astype(np.float32)
            out += np.asarray(self.broad.interp @ (self.broad.values @ col_w), dtype=np.float32)
        return out

    def adjoint(self, row_values: NDArray[np.floating]) -> F32:
        """``D.T @ row_values`` (the gradient of a dose objective w.r.t. the weights)."""
        g = np.asarray(row_values, dtype=np.float32)
        out = np.asarray(self.primary.T @ g, dtype=np.float32)
        if self.broad is not None and self.broad.values.size:
            nodes = np.asarray(self.broad.interp.T @ g, dtype=np.float32)
            out += (nodes @ self.broad.values)[self.broad.column_of]
        return self._transmit(out)  # T is symmetric


@dataclass(frozen=True)
class DoseInfluence:
    """Dose-influence operator of a beam set on a case grid.

    Attributes
    ----------
    matrix
        The primary part: float32 CSR, shape (n_rows, n_beamlets), Gy per unit beamlet weight.
    voxel_indices
        C-order flat grid index of each row, sorted ascending (the body voxels).
    grid_shape
        Shape of the case grid the flat indices refer to.
    beamlet_beam
        Index (into ``BeamSet.beams``) of the beam each column belongs to.
    beamlet_ij
        (n_beamlets, 2) integer position of each beamlet in its beam's beamlet grid
        (neighbours differ by 1 in one coordinate; used for fluence smoothness).
    broad
        The broad part on a coarse grid (``None``: none, as for a hand-made matrix).
    transmission
        Collimator transmission ``t`` of :class:`DoseOperator`.
    """

    matrix: sp.csr_matrix
    voxel_indices: NDArray[np.int64]
    grid_shape: tuple[int, int, int]
    beamlet_beam: NDArray[np.int32]
    beamlet_ij: NDArray[np.int32]
    broad: BroadDose | None = None
    transmission: float = 0.0

    @property
    def n_beamlets(self) -> int:
        """Number of beamlets (columns)."""
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        """Stored values: primary non-zeros plus the broad part's nodes x columns and weights."""
        extra = 0
        if self.broad is not None:
            extra = int(self.broad.values.size) + int(self.broad.interp.nnz)
        return int(self.matrix.nnz) + extra

    def rows_of(self, mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Rows of the voxels of ``mask`` that lie in the matrix (voxels outside are dropped)."""
        if mask.shape != self.grid_shape:
            raise InvalidInput(f"mask shape {mask.shape} does not match grid {self.grid_shape}")
        flat = np.flatnonzero(mask)
        pos = np.searchsorted(self.voxel_indices, flat)
        pos = np.clip(pos, 0, max(0, self.voxel_indices.size - 1))
        keep = self.voxel_indices[pos] == flat if self.voxel_indices.size else np.zeros(0, bool)
        return pos[keep].astype(np.int64)

    def operator(
        self, rows: NDArray[np.int64] | None = None, primary: sp.csr_matrix | None = None
    ) -> DoseOperator:
        """The operator on ``rows`` (all when ``None``); ``primary`` = ``matrix[rows]`` if known."""
        if rows is None:
            return DoseOperator(self.matrix, self.broad, self.beamlet_beam, self.transmission)
        prim = primary if primary is not None else sp.csr_matrix(self.matrix[rows])
        broad = self.broad.restricted(rows) if self.broad is not None else None
        return DoseOperator(prim, broad, self.beamlet_beam, self.transmission)

    def dose_rows(self, weights: NDArray[np.floating]) -> F32:
        """Dose (Gy) of every row for beamlet ``weights``."""
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != (self.n_beamlets,):
            raise InvalidInput(f"weights must have shape ({self.n_beamlets},), got {w.shape}")
        return self.operator().dose(w)

    def dose_grid(self, weights: NDArray[np.floating]) -> F32:
        """Dose (Gy) on the whole grid (zero outside the rows)."""
        out = np.zeros(int(np.prod(self.grid_shape)), dtype=np.float32)
        out[self.voxel_indices] = self.dose_rows(weights)
        return out.reshape(self.grid_shape)

    def extra_arrays(self) -> dict[str, NDArray[np.generic]]:
        """The broad part and the transmission as named arrays (for the on-disk cache)."""
        out: dict[str, NDArray[np.generic]] = {"transmission": np.array(self.transmission)}
        if self.broad is not None:
            m = self.broad.interp
            out |= {
                "broad_values": self.broad.values,
                "broad_column_of": self.broad.column_of,
                "broad_interp_data": m.data,
                "broad_interp_indices": m.indices,
                "broad_interp_indptr": m.indptr,
                "broad_interp_shape": np.asarray(m.shape, dtype=np.int64),
            }
        return out

    @staticmethod
    def extras_from_arrays(z: Mapping[str, NDArray[np.generic]]) -> dict[str, object]:
        """Keyword arguments (``broad``, ``transmission``) read back from :meth:`extra_arrays`."""
        keys = set(z.keys()) if hasattr(z, "keys") else set()
        out: dict[str, object] = {}
        if "transmission" in keys:
            out["transmission"] = float(np.asarray(z["transmission"]))
        if "broad_values" in keys:
            shape = tuple(int(v) for v in np.asarray(z["broad_interp_shape"]))
            interp = sp.csr_matrix(
                (
                    np.asarray(z["broad_interp_data"], dtype=np.float32),
                    np.asarray(z["broad_interp_indices"]),
                    np.asarray(z["broad_interp_indptr"]),
                ),
                shape=(shape[0], shape[1]),
            )
            out["broad"] = BroadDose(
                np.ascontiguousarray(np.asarray(z["broad_values"], dtype=np.float32)),
                np.asarray(z["broad_column_of"], dtype=np.int32),
                interp,
            )
        return out
