"""6 MV photon pencil-beam dose engine: the dose-influence operator of a case's beam set.

The kernel (:mod:`mock_tps.kernel`) knows no field size: a narrow primary and eight broad
components (near and far phantom scatter, extra-focal head scatter and the flattening-filter
source, electron contamination) whose superposition gives the field-size dependence of depth
dose, profiles and output. Fitted to the TrueBeam 6X golden beam data (``bench/fit_beam.py``,
:class:`EngineParams`, 21 fitted parameters).

- Primary: sparse fine matrix (:mod:`mock_tps.pencil_beam`), radiological depth along divergent
  rays, the lateral electron spread scaled by 1 / density (it widens in lung), entries below
  ``dose_cutoff_fraction`` of their beamlet's maximum dropped (their dose given back to the kept
  entries of the voxel).
- Broad part: dense nodes x columns block on a coarse grid (about ``broad_grid_mm``), interpolated
  to the voxels (:mod:`mock_tps.scatter`); a column is a square of beamlets of about
  ``broad_column_mm``; an arc's control points within ``arc_group_deg`` share columns. Exact to
  its tail (no lateral cut-off, no sampling).
- Collimator transmission (``collimator_transmission``, cited there) through the beam's closed
  beamlets, as a weight transform (:class:`mock_tps.dose_influence.DoseOperator`).
- Absolute scale: unit weights on a 10 x 10 cm field at SSD 100 cm give
  ``output_gy_per_unit_weight * (SAD / (SAD + dmax))^2`` at the central-axis maximum.

Known simplifications: no obliquity or interface (build-up/down) corrections beyond the
radiological depth; the broad components are not density-scaled laterally; transmission covers the
beam's beamlets (the target projection plus margin), not the rest of the jaw rectangle.

Memory: primary entries are built beam by beam (float32 values, 16-bit beamlet indices within a
beam: about 7.5 bytes per entry with the row counts) and scattered into the final CSR arrays
(int32 indices, float32 values: 8 bytes per entry), the beams' arrays freed as they are copied;
then the broad block (nodes x columns float32) is filled in place. The peak is the larger of
entries + CSR and CSR + broad block (cervix: about 2.3 GB).
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import scipy.sparse as sp
from loguru import logger
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput
from mock_tps.beams import beam_geometry, default_body_probe_radius_mm, select_beamlets
from mock_tps.case import Case
from mock_tps.dose_influence import BroadDose, DoseInfluence
from mock_tps.engine_params import EngineParams
from mock_tps.kernel import lateral_scale
from mock_tps.pencil_beam import BeamEntries, CaseArrays, beam_entries
from mock_tps.scatter import broad_operator, coarse_grid

__all__ = [
    "ENGINE_VERSION",
    "EngineParams",
    "ProgressCallback",
    "compute_dose_influence",
    "progress_logger",
]

#: Bump when the physics or the matrix layout changes (part of the on-disk cache key).
ENGINE_VERSION = "pencil-beam-3"

#: Relative electron density accepted inside the body.
MAX_DENSITY = 20.0


def _release_freed_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; elsewhere nothing).

    The beams' entries are many arrays of a few MB: freed, they stay in the heap (and in the
    resident set) unless trimmed, which would add about a GB to the peak of a VMAT build.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def _case_arrays(case: Case, p: EngineParams) -> CaseArrays:
    body = case.body_mask
    density = np.asarray(case.density, dtype=np.float32)
    inside = density[body]
    if not np.all(np.isfinite(inside)) or float(inside.min()) < 0.0:
        raise InvalidInput("case density must be finite and >= 0 inside the body")
    if float(inside.max()) > MAX_DENSITY:
        raise InvalidInput(
            f"case density (relative electron density) must be within 0..{MAX_DENSITY:g} "
            f"inside the body, got max {float(inside.max()):g}"
        )
    grid = case.grid
    centres = grid.centres_mm(np.flatnonzero(body))
    return CaseArrays(
        grid=grid,
        xyz_mm=np.ascontiguousarray(centres.T, dtype=np.float32),
        density=np.where(body, density, np.float32(0.0)).astype(np.float32),
        density_max=max(float(inside.max()), 1e-3),
        min_spacing_mm=float(min(grid.spacing_mm)),
        inside=body.astype(np.float32),
        lateral_scale_max=float(lateral_scale(p, np.array([float(inside.min())]))[0]),
    )


def _assemble_csr(parts: list[BeamEntries | None], n_cols: list[int], n_rows: int) -> sp.csr_matrix:
    """Scatter the beams' entries into one CSR matrix (columns of beam k after those of k - 1).

    ``parts`` is emptied while it is consumed, to bound the memory.
    """
    row_counts = np.zeros(n_rows, dtype=np.int64)
    for e in parts:
        assert e is not None
        row_counts[e.rows] += e.counts
    nnz = int(row_counts.sum())
    if nnz >= 2**31 - 1:
        raise InvalidInput(
            f"dose matrix would have {nnz:,} entries (limit 2^31 - 1): use larger beamlet_size_mm, "
            "fewer beams or control points, or a coarser dose grid"
        )
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    del row_counts
    fill = indptr[:-1].copy()
    indices = np.empty(nnz, dtype=np.int32)
    data = np.empty(nnz, dtype=np.float32)
    col_offset = 0
    for k, n_k in enumerate(n_cols):
        e = parts[k]
        assert e is not None
        parts[k] = None
        run_start = np.cumsum(e.counts, dtype=np.int64) - e.counts
        dest = np.repeat(fill[e.rows] - run_start, e.counts)
        dest += np.arange(dest.size, dtype=np.int64)
        indices[dest] = e.cols.astype(np.int32) + np.int32(col_offset)
        data[dest] = e.vals
        fill[e.rows] += e.counts
        col_offset += n_k
        del e, dest, run_start
    matrix = sp.csr_matrix(
        (data, indices, indptr.astype(np.int32)), shape=(n_rows, col_offset), copy=False
    )
    matrix.has_canonical_format = True  # columns ascend within every row, no duplicates
    return matrix


#: ``progress(stage, done, total)``: stage ``"primary"`` (beams) or ``"broad"`` (arc groups).
ProgressCallback = Callable[[str, int, int], None]


def progress_logger(name: str, every_s: float = 2.0) -> ProgressCallback:
    """A :data:`ProgressCallback` logging ``beam 12/120`` at INFO (bound ``progress=True``, which
    the CLI shows) at most every ``every_s`` seconds, and at the end of each stage."""
    state = {"last": time.perf_counter(), "t0": time.perf_counter()}
    log = logger.bind(progress=True)

    def report(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done < total and now - state["last"] < every_s:
            return
        state["last"] = now
        what = "beam" if stage == "primary" else "scatter group"
        log.info(
            "dose influence of {}: {} {}/{} ({:.0f} %), {:.0f} s",
            name,
            what,
            done,
            total,
            100.0 * done / max(total, 1),
            now - state["t0"],
        )

    return report


def compute_dose_influence(
    case: Case, params: EngineParams | None = None, progress: ProgressCallback | None = None
) -> DoseInfluence:
    """Dose-influence matrix of ``case.beams`` on ``case`` (Gy per unit beamlet weight).

    Rows are the body voxels in ascending C-order flat index; columns are the beamlets of every
    beam in beam order (within a beam, sorted by beamlet position i then j, as in
    :class:`mock_tps.beams.BeamletGrid`). ``progress`` is called after every beam and every
    group of the broad part (:func:`progress_logger` logs it).

    Memory: the primary entries of every beam (about 6 bytes each), then the CSR matrix
    (8 bytes per entry, the beams' entries freed as they are copied), then the broad block
    (nodes x columns float32, filled in place): the peak is the larger of entries + CSR and
    CSR + broad block.

    Raises
    ------
    InvalidInput
        If a beam has no beamlet passing through the body (the message names the beam), the
        source lies inside or too close to the patient, or the density is not usable.
    """
    p = params if params is not None else EngineParams()
    arrays = _case_arrays(case, p)
    beam_set = case.beams
    target_pts = case.grid.centres_mm(np.flatnonzero(case.target_mask))
    probe_mm = default_body_probe_radius_mm(case)
    parts: list[BeamEntries | None] = []
    n_cols: list[int] = []
    beam_of: list[NDArray[np.int32]] = []
    ij_parts: list[NDArray[np.int32]] = []
    grids = []
    n_beams = len(beam_set.beams)
    for k in range(n_beams):
        geom = beam_geometry(beam_set, k)
        a, b, dist = geom.project_columns(arrays.xyz_mm)
        grid_b = select_beamlets(
            geom,
            beam_set.beamlet_size_mm,
            beam_set.target_margin_mm,
            target_pts,
            a,
            b,
            probe_mm,
        )
        grids.append(grid_b)
        parts.append(beam_entries(arrays, grid_b, a, b, dist, p))
        n_cols.append(grid_b.n_beamlets)
        beam_of.append(np.full(grid_b.n_beamlets, k, dtype=np.int32))
        ij_parts.append(grid_b.ij)
        del a, b, dist
        _release_freed_memory()
        if progress is not None:
            progress("primary", k + 1, n_beams)
    n_rows = int(arrays.xyz_mm.shape[1])
    density = arrays.density
    del arrays
    matrix = _assemble_csr(parts, n_cols, n_rows)
    _release_freed_memory()
    coarse = coarse_grid(case.grid, case.body_mask, p)
    broad_progress = None if progress is None else partial(progress, "broad")
    values, column_of = broad_operator(coarse, density, case.grid, grids, p, broad_progress)
    logger.debug(
        "dose influence of {}: {} voxels x {} beamlets ({} beams), primary nnz {:,}, "
        "broad {} nodes x {} columns",
        case.name,
        n_rows,
        matrix.shape[1],
        n_beams,
        matrix.nnz,
        *values.shape,
    )
    return DoseInfluence(
        matrix=matrix,
        voxel_indices=np.flatnonzero(case.body_mask).astype(np.int64),
        grid_shape=case.grid.shape,
        beamlet_beam=np.concatenate(beam_of),
        beamlet_ij=np.concatenate(ij_parts).astype(np.int32),
        broad=BroadDose(values, column_of, coarse.interp),
        transmission=p.collimator_transmission,
    )
