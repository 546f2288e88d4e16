"""What every worker runs with, and the check that it runs what the driver does.

A worker reports its rtplan-agent version, its dose engine's version and its thread settings
(the ``*_NUM_THREADS`` variables and the BLAS/OpenMP pools threadpoolctl sees); the driver
refuses a result from a worker whose report differs from its own expectation, naming what
differs and what to do.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from agent.cohort.case import run_case
from agent.cohort.models import CaseFactory, CaseResult, CohortError, CohortJob, WorkerInfo

#: Environment variables that set thread pools (each worker gets ``threads`` in all of them).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """The environment a worker runs with: ``threads`` per pool, no Ray usage statistics."""
    return {name: str(threads) for name in THREAD_VARIABLES} | {"RAY_USAGE_STATS_ENABLED": "0"}


def thread_settings(threads: int) -> dict[str, str]:
    """The thread settings of this process, as a worker reports them."""
    from threadpoolctl import threadpool_info

    out = {name: os.environ.get(name, "unset") for name in THREAD_VARIABLES}
    for pool in threadpool_info():
        out[f"pool:{pool.get('user_api')}:{pool.get('internal_api')}"] = str(
            pool.get("num_threads")
        )
    out["limit"] = str(threads)
    return out


def worker_info(factory: CaseFactory, threads: int) -> WorkerInfo:
    """What this process runs (versions and thread settings)."""
    from agent.session.identity import package_version

    return WorkerInfo(
        package_version=package_version(),
        engine_version=factory.engine_version(),
        threads=thread_settings(threads),
    )


def expected_info(factory: CaseFactory, threads: int) -> WorkerInfo:
    """What the driver expects every worker to report: its own versions, and each thread
    variable and pool at ``threads``."""
    from agent.session.identity import package_version

    return WorkerInfo(
        package_version=package_version(),
        engine_version=factory.engine_version(),
        threads={name: str(threads) for name in THREAD_VARIABLES} | {"limit": str(threads)},
    )


def mismatches(expected: WorkerInfo, got: WorkerInfo) -> list[str]:
    """What differs between the driver's expectation and a worker's report (empty: none)."""
    out: list[str] = []
    if got.package_version != expected.package_version:
        out.append(f"rtplan-agent {got.package_version}, the driver {expected.package_version}")
    if got.engine_version != expected.engine_version:
        out.append(f"dose engine {got.engine_version}, the driver {expected.engine_version}")
    limit = expected.threads["limit"]
    for name, value in got.threads.items():
        if name.startswith("pool:") and value != limit:
            out.append(f"thread pool {name[5:]} runs {value} threads, the cohort {limit}")
        elif name in expected.threads and value != expected.threads[name]:
            out.append(f"{name}={value}, the cohort {expected.threads[name]}")
    return out


def check_worker(expected: WorkerInfo, result: CaseResult) -> None:
    """Refuse ``result`` if its worker differs from the driver (:class:`CohortError`)."""
    if result.worker is None:
        raise CohortError(f"a worker sent no version report with {result.scenario}/{result.seed}")
    problems = mismatches(expected, result.worker)
    if problems:
        host = result.worker.threads.get("host", "a worker")
        raise CohortError(
            f"{host} differs from the driver: {'; '.join(problems)}. Install the same "
            "rtplan-agent (and dose engine) on every node and start the workers with the "
            "cohort's thread settings"
        )


def _quiet_logs() -> None:
    """Warnings only from the TPS's logger in a worker (its debug lines would drown the driver)."""
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("RTPLAN_COHORT_LOG", "WARNING"))


def work(job: CohortJob, factory: CaseFactory, threads: int) -> CaseResult:
    """A worker's task: plan ``job`` with ``threads`` per thread pool; report what it ran."""
    from threadpoolctl import threadpool_limits

    _quiet_logs()
    with threadpool_limits(limits=threads):
        info = worker_info(factory, threads)
        result = run_case(job, factory)
    threads_info: Mapping[str, str] = {**info.threads, "host": socket.gethostname()}
    return result.model_copy(update={"worker": info.model_copy(update={"threads": threads_info})})
