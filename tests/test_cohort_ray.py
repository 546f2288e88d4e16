"""The Ray executor: a small cohort through a loopback Ray instance gives the local pool's
results; an address where nothing listens fails within seconds."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from cohort_fakes import DriverEngineDiffers, FakeCases

from agent.cohort import CohortError, CohortSpec, LocalExecutor, RayExecutor, run_cohort
from agent.cohort.executors import probe_address, start_local_ray

TESTS_DIR = str(Path(__file__).parent)
SPEC = CohortSpec(
    scenarios=["prostate-basic"], policies=["rule", "bo"], seeds=[0], max_iterations=3,
    bo_budget=4,
)  # fmt: skip


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One small Ray instance on loopback (127.0.0.1) for the whole test session."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # the workers import the test helpers (cohort_fakes) like the driver does
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (TESTS_DIR, path) if p)
    start_local_ray(
        num_cpus=2,
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
        os.environ["PYTHONPATH"] = path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_ray_cohort_matches_the_local_pool(ray_instance: None) -> None:
    local = run_cohort(SPEC, FakeCases(), LocalExecutor(workers=1))
    remote = run_cohort(SPEC, FakeCases(), RayExecutor())
    assert remote.executor == "ray"
    assert [r.outcome() for r in remote.results] == [r.outcome() for r in local.results]
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # loopback only
    for r in remote.results:
        assert r.error is None, r.error
        assert r.worker is not None and r.worker.threads["OMP_NUM_THREADS"] == "1"


def test_ray_worker_of_another_engine_is_refused(ray_instance: None) -> None:
    spec = SPEC.model_copy(update={"policies": ["rule"]})
    factory = DriverEngineDiffers(driver_pid=os.getpid())
    with pytest.raises(CohortError, match="dose engine fake-ramps-1, the driver fake-ramps-2"):
        run_cohort(spec, factory, RayExecutor())


@pytest.mark.parametrize("scheme", ["ray://", ""])
def test_unreachable_address_fails_within_seconds(scheme: str) -> None:
    address = f"{scheme}127.0.0.1:{_closed_port()}"
    t0 = time.perf_counter()
    with pytest.raises(CohortError, match="nothing answers at Ray address"):
        probe_address(address)
    with pytest.raises(CohortError, match="nothing answers"):
        list(RayExecutor(address).map([], FakeCases(), 1))
    assert time.perf_counter() - t0 < 10.0
