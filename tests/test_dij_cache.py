"""Tests of the on-disk dose-influence cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from loguru import logger
from water_phantoms import grid_covering, water_case

import mock_tps.dij_cache as dij_cache
from mock_tps.case import Beam, Case
from mock_tps.dij_cache import cache_key, cache_path, cached_dose_influence, default_cache_dir
from mock_tps.dose_engine import EngineParams
from mock_tps.dose_influence import DoseInfluence


def _case(gantry: float = 0.0) -> Case:
    grid = grid_covering(((-50.0, 50.0), (-50.0, 50.0), (-30.0, 30.0)), (10.0, 10.0, 10.0))
    return water_case(
        grid,
        body=((-50.0, 50.0), (-50.0, 50.0), (-30.0, 30.0)),
        target=((-10.0, 10.0), (-10.0, 10.0), (-10.0, 10.0)),
        beams=(Beam(gantry), Beam(gantry + 90.0)),
        margin_mm=5.0,
    )


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    yield messages
    logger.remove(sink)


def _same(a: DoseInfluence, b: DoseInfluence) -> None:
    for name in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(a.matrix, name), getattr(b.matrix, name))
    assert a.matrix.shape == b.matrix.shape
    assert a.matrix.dtype == b.matrix.dtype == np.float32
    assert b.matrix.indices.dtype == np.int32
    np.testing.assert_array_equal(a.voxel_indices, b.voxel_indices)
    np.testing.assert_array_equal(a.beamlet_beam, b.beamlet_beam)
    np.testing.assert_array_equal(a.beamlet_ij, b.beamlet_ij)
    assert a.grid_shape == b.grid_shape


def test_round_trip_reads_the_file_without_recomputing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = _case()
    first = cached_dose_influence(case, cache_dir=tmp_path)
    path = cache_path(case, EngineParams(), tmp_path)
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left

    def fail(*_: object) -> DoseInfluence:
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(dij_cache, "compute_dose_influence", fail)
    _same(first, cached_dose_influence(case, cache_dir=tmp_path))


def test_key_depends_on_params_beams_and_engine_version(monkeypatch: pytest.MonkeyPatch) -> None:
    case = _case()
    base = cache_key(case, EngineParams())
    assert cache_key(_case(), EngineParams()) == base  # deterministic
    assert cache_key(case, EngineParams(sigma_at_surface_mm=2.0)) != base
    assert cache_key(_case(gantry=10.0), EngineParams()) != base
    monkeypatch.setattr(dij_cache, "ENGINE_VERSION", "other")
    assert cache_key(case, EngineParams()) != base


@pytest.mark.parametrize("content", [b"not a zip file", b"PK\x03\x04 truncated"])
def test_corrupt_file_is_logged_and_recomputed(
    tmp_path: Path, content: bytes, warnings: list[str]
) -> None:
    case = _case()
    reference = cached_dose_influence(case, cache_dir=tmp_path / "ref")
    path = cache_path(case, EngineParams(), tmp_path)
    path.write_bytes(content)
    _same(reference, cached_dose_influence(case, cache_dir=tmp_path))
    assert any("unreadable" in m and path.name in m for m in warnings)
    # the file was rewritten and now reads back without a warning
    warnings.clear()
    _same(reference, cached_dose_influence(case, cache_dir=tmp_path))
    assert warnings == []


def test_file_with_another_key_is_recomputed(tmp_path: Path, warnings: list[str]) -> None:
    case, other = _case(), _case(gantry=30.0)
    cached_dose_influence(other, cache_dir=tmp_path)
    cache_path(other, EngineParams(), tmp_path).rename(cache_path(case, EngineParams(), tmp_path))
    dij = cached_dose_influence(case, cache_dir=tmp_path)
    _same(dij, cached_dose_influence(case, cache_dir=tmp_path / "fresh"))
    assert any("unreadable" in m for m in warnings)


def test_unwritable_cache_dir_degrades_to_no_cache(tmp_path: Path, warnings: list[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    case = _case()
    dij = cached_dose_influence(case, cache_dir=blocker / "dij")
    assert dij.n_beamlets > 0 and dij.matrix.nnz > 0
    assert any("without the cache" in m for m in warnings)


def test_default_cache_dir_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RTPLAN_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    cached_dose_influence(_case())
    assert len(list((tmp_path / "env").glob("dij-*.npz"))) == 1
    monkeypatch.delenv("RTPLAN_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "rtplan" / "dij"


def _file(directory: Path, name: str, size: int, mtime: float) -> Path:
    f = directory / name
    f.write_bytes(b"\0" * size)
    os.utime(f, (mtime, mtime))
    return f


def test_eviction_drops_least_recently_used_until_the_rest_fits(tmp_path: Path) -> None:
    old = _file(tmp_path, "dij-a.npz", 400, 1_000.0)
    mid = _file(tmp_path, "dij-b.npz", 400, 2_000.0)
    new = _file(tmp_path, "dij-c.npz", 400, 3_000.0)
    other = _file(tmp_path, "notes.txt", 10_000, 0.0)  # not a cache file: never touched
    removed = dij_cache.evict_least_recently_used(tmp_path, max_bytes=800, keep=new)
    assert removed == [old]  # 1200 -> 800 bytes: only the oldest goes
    assert mid.exists() and new.exists() and other.exists()
    # the file just written is kept even when it alone is over the limit
    assert dij_cache.evict_least_recently_used(tmp_path, max_bytes=100, keep=new) == [mid]
    assert new.exists()


def test_a_cache_hit_marks_the_file_recent_and_a_write_evicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cached_dose_influence(_case(0.0), cache_dir=tmp_path)
    path_first = cache_path(_case(0.0), EngineParams(), tmp_path)
    os.utime(path_first, (1_000.0, 1_000.0))
    cached_dose_influence(_case(0.0), cache_dir=tmp_path)  # hit: touched
    assert path_first.stat().st_mtime > 1_000.0
    # a limit below two files: writing a second geometry evicts the first (older) one
    size = path_first.stat().st_size
    monkeypatch.setenv(dij_cache.CACHE_MAX_GB_ENV, str(1.5 * size / 1e9))
    cached_dose_influence(_case(45.0), cache_dir=tmp_path)
    assert not path_first.exists()
    assert cache_path(_case(45.0), EngineParams(), tmp_path).exists()
    assert first.matrix.nnz > 0


def test_cache_limit_from_environment(monkeypatch: pytest.MonkeyPatch, warnings: list[str]) -> None:
    monkeypatch.delenv(dij_cache.CACHE_MAX_GB_ENV, raising=False)
    assert dij_cache.cache_limit_bytes() == 20_000_000_000
    monkeypatch.setenv(dij_cache.CACHE_MAX_GB_ENV, "2.5")
    assert dij_cache.cache_limit_bytes() == 2_500_000_000
    monkeypatch.setenv(dij_cache.CACHE_MAX_GB_ENV, "lots")
    assert dij_cache.cache_limit_bytes() == 20_000_000_000
    assert any("RTPLAN_CACHE_MAX_GB='lots'" in m for m in warnings)
