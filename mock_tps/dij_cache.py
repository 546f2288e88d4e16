"""On-disk cache of dose-influence matrices (one ``.npz`` file per case geometry and engine).

The key hashes ``case.geometry_hash()`` (grid, densities, body, targets, beams), ``repr`` of the
:class:`EngineParams` and :data:`ENGINE_VERSION`. Files are written atomically (temporary file in
the same directory, then rename). An unreadable or inconsistent file is logged and recomputed; a
cache directory that cannot be written degrades to computing without the cache (with a warning).
The cache is bounded (``$RTPLAN_CACHE_MAX_GB``, default 20 GB; VMAT matrices take 0.5-1.5 GB
each): after a write, the least recently used files go until the rest fits.

Building a matrix takes seconds on a cold cache: its start, its progress (beam 12/120, at most
every 2 s) and its end are logged at INFO, which the CLI shows (``agent.cli.console.progress_sink``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from loguru import logger

from mock_tps.case import Case
from mock_tps.dose_engine import (
    ENGINE_VERSION,
    EngineParams,
    compute_dose_influence,
    progress_logger,
)
from mock_tps.dose_influence import DoseInfluence
from rtplan_common.atomic_io import atomic_writer

#: Environment variable naming the cache directory.
CACHE_DIR_ENV = "RTPLAN_CACHE_DIR"
#: Environment variable bounding the cache size (GB); the default is DEFAULT_CACHE_MAX_GB.
CACHE_MAX_GB_ENV = "RTPLAN_CACHE_MAX_GB"
DEFAULT_CACHE_MAX_GB = 20.0

_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, IndexError, zipfile.BadZipFile)


class _CacheMismatch(ValueError):
    """A cache file that does not hold what its name promises."""


def default_cache_dir() -> Path:
    """``$RTPLAN_CACHE_DIR`` if set, else ``~/.cache/rtplan/dij``."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rtplan" / "dij"


def cache_limit_bytes() -> int:
    """``$RTPLAN_CACHE_MAX_GB`` in bytes (default 20 GB); a bad value warns and uses the default."""
    text = os.environ.get(CACHE_MAX_GB_ENV, "").strip()
    if not text:
        return int(DEFAULT_CACHE_MAX_GB * 1e9)
    try:
        gb = float(text)
        if not gb >= 0.0 or gb == float("inf"):
            raise ValueError
    except ValueError:
        logger.warning(
            "{}={!r} is not a size in GB (a number >= 0); using {} GB. Set it to e.g. 20.",
            CACHE_MAX_GB_ENV,
            text,
            DEFAULT_CACHE_MAX_GB,
        )
        return int(DEFAULT_CACHE_MAX_GB * 1e9)
    return int(gb * 1e9)


def evict_least_recently_used(
    directory: Path, max_bytes: int, keep: Path | None = None
) -> list[Path]:
    """Delete the least recently used cache files until the rest fits in ``max_bytes``.

    Recency is the file's modification time (a cache hit touches it). ``keep`` (the file
    just written) is never deleted, even if it alone exceeds the limit. Returns the deleted
    files; files that vanish or cannot be deleted meanwhile are skipped.
    """
    entries: list[tuple[float, int, Path]] = []
    for f in directory.glob("dij-*.npz"):
        try:
            st = f.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in entries)
    removed: list[Path] = []
    for _, size, f in sorted(entries):
        if total <= max_bytes:
            break
        if keep is not None and f == keep:
            continue
        try:
            f.unlink()
        except OSError:
            continue
        total -= size
        removed.append(f)
        logger.info("dose-influence cache: evicted {} ({:.2f} GB)", f.name, size / 1e9)
    return removed


def cache_key(case: Case, params: EngineParams) -> str:
    """Key of the dose-influence matrix of ``case`` computed with ``params``."""
    text = f"{ENGINE_VERSION}|{case.geometry_hash()}|{params!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_path(case: Case, params: EngineParams, cache_dir: str | Path | None = None) -> Path:
    """Where the matrix of ``case`` and ``params`` is cached."""
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return directory / f"dij-{cache_key(case, params)}.npz"


def cached_dose_influence(
    case: Case, params: EngineParams | None = None, cache_dir: str | Path | None = None
) -> DoseInfluence:
    """:func:`compute_dose_influence`, read from or written to the on-disk cache.

    Parameters
    ----------
    case, params
        As for :func:`mock_tps.dose_engine.compute_dose_influence`.
    cache_dir
        Cache directory; default :func:`default_cache_dir`.
    """
    p = params if params is not None else EngineParams()
    key = cache_key(case, p)
    path = cache_path(case, p, cache_dir)
    if path.is_file():
        try:
            dij = _load(path, key, case.grid.shape)
            logger.debug("dose influence of {} read from cache {}", case.name, path)
            _touch(path)
            return dij
        except _READ_ERRORS as exc:
            logger.warning(
                "dose-influence cache file {} is unreadable ({}: {}); recomputing",
                path,
                type(exc).__name__,
                exc,
            )
    logger.info("building the dose-influence matrix of {} (not cached; a few seconds)", case.name)
    t0 = time.perf_counter()
    dij = compute_dose_influence(case, p, progress=progress_logger(case.name))
    logger.info(
        "dose-influence matrix of {}: {:,} voxels x {:,} beamlets, {:.1f} s",
        case.name,
        *dij.matrix.shape,
        time.perf_counter() - t0,
    )
    try:
        _save_atomic(path, dij, key)
        evict_least_recently_used(path.parent, cache_limit_bytes(), keep=path)
    except OSError as exc:
        logger.warning(
            "cannot write the dose-influence cache in {} ({}); continuing without the cache",
            path.parent,
            exc,
        )
    return dij


def _touch(path: Path) -> None:
    """Mark a cache file as just used (its modification time orders the eviction)."""
    # a read-only cache still serves; it just cannot track recency
    with contextlib.suppress(OSError):
        os.utime(path)


def _save_atomic(path: Path, dij: DoseInfluence, key: str) -> None:
    m = dij.matrix
    with atomic_writer(path, "wb") as fh:
        arrays: dict[str, Any] = {
            "key": np.array(key),
            "engine_version": np.array(ENGINE_VERSION),
            "data": m.data,
            "indices": m.indices,
            "indptr": m.indptr,
            "shape": np.asarray(m.shape, dtype=np.int64),
            "voxel_indices": dij.voxel_indices,
            "grid_shape": np.asarray(dij.grid_shape, dtype=np.int64),
            "beamlet_beam": dij.beamlet_beam,
            "beamlet_ij": dij.beamlet_ij,
            **dij.extra_arrays(),
        }
        np.savez(fh, **arrays)


def _load(path: Path, key: str, grid_shape: tuple[int, int, int]) -> DoseInfluence:
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key or str(z["engine_version"]) != ENGINE_VERSION:
            raise _CacheMismatch("key or engine version differs")
        data = np.asarray(z["data"], dtype=np.float32)
        indices = np.asarray(z["indices"])
        indptr = np.asarray(z["indptr"])
        n_rows, n_cols = (int(v) for v in z["shape"])
        voxel_indices = np.asarray(z["voxel_indices"], dtype=np.int64)
        stored_grid = tuple(int(v) for v in z["grid_shape"])
        beamlet_beam = np.asarray(z["beamlet_beam"], dtype=np.int32)
        beamlet_ij = np.asarray(z["beamlet_ij"], dtype=np.int32)
        extras = DoseInfluence.extras_from_arrays(z)
    consistent = (
        stored_grid == tuple(grid_shape)
        and indptr.shape == (n_rows + 1,)
        and indices.shape == data.shape
        and int(indptr[0]) == 0
        and int(indptr[-1]) == data.size
        and voxel_indices.shape == (n_rows,)
        and beamlet_beam.shape == (n_cols,)
        and beamlet_ij.shape == (n_cols, 2)
        and (indices.size == 0 or (int(indices.min()) >= 0 and int(indices.max()) < n_cols))
    )
    if not consistent:
        raise _CacheMismatch("array shapes are inconsistent")
    matrix = sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols), copy=False)
    matrix.has_canonical_format = True
    return DoseInfluence(
        matrix=matrix,
        voxel_indices=voxel_indices,
        grid_shape=(stored_grid[0], stored_grid[1], stored_grid[2]),
        beamlet_beam=beamlet_beam,
        beamlet_ij=beamlet_ij,
        **extras,  # type: ignore[arg-type]
    )
