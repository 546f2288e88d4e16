"""Where cohort jobs run: a local process pool (default) or a Ray cluster (optional extra).

Both send each job with the case factory to a worker and bring the :class:`CaseResult` back
to the driver (no shared file system), in job order. Every result carries its worker's
report, checked against the driver's (:func:`agent.cohort.workers.check_worker`).

Ray is reached through Ray Client (``ray://HOST:10001``), the address of a cluster this
machine is part of (``HOST:PORT`` or ``auto``), or ``local`` (a new instance on this machine).
Before Ray is asked, the TCP port of the address is probed: where nothing listens the run
fails within seconds (Ray itself can wait minutes there).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

from agent.cohort.models import CaseFactory, CaseResult, CohortError, CohortJob
from agent.cohort.workers import thread_env, work

#: Seconds the TCP probe of a Ray address may take.
PROBE_TIMEOUT_S = 3.0
#: Ray Client's default port.
RAY_CLIENT_PORT = 10001
#: The GCS port of a cluster address without one.
RAY_GCS_PORT = 6379


class Executor(Protocol):
    """Runs jobs, yielding their results in job order."""

    name: str

    def map(
        self, jobs: Sequence[CohortJob], factory: CaseFactory, threads: int
    ) -> Iterator[CaseResult]:
        """The result of each job, in order."""
        ...


def _init_worker(env: dict[str, str]) -> None:
    os.environ.update(env)


class LocalExecutor:
    """A process pool on this machine (spawned processes: safe with threads and on every OS)."""

    name = "local"

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise CohortError(f"--workers must be at least 1, got {workers}")
        self.workers = workers

    def map(
        self, jobs: Sequence[CohortJob], factory: CaseFactory, threads: int
    ) -> Iterator[CaseResult]:
        """Run ``jobs`` on ``workers`` spawned processes."""
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, max(1, len(jobs))),
            mp_context=context,
            initializer=_init_worker,
            initargs=(thread_env(threads),),
        )
        futures = [pool.submit(work, job, factory, threads) for job in jobs]
        try:
            for future in futures:
                yield future.result()
        except BaseException:
            # interrupted (Ctrl-C, a stop signal), a failed case, or the caller stopped
            # reading: the running cases stop too, no worker outlives the run
            stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued jobs of ``pool`` and terminate its running workers."""
    # no public way to reach the workers before Python 3.14's terminate_workers(); taken
    # before the shutdown, which forgets them
    processes: dict[int, Any] = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        if process.is_alive():
            process.terminate()
    for process in processes.values():
        process.join(timeout=10.0)


def ray_available() -> bool:
    """Whether the ``ray`` extra is installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def probe_address(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast (:class:`CohortError`) when nothing listens at a Ray address.

    ``ray://HOST[:PORT]`` (Ray Client, port 10001 by default) and ``HOST[:PORT]`` (a cluster's
    GCS, port 6379 by default) are probed with a TCP connection; ``auto`` and ``local`` are
    left to Ray.
    """
    if address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    rest = address.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        host, port_text = rest, str(RAY_CLIENT_PORT if client else RAY_GCS_PORT)
    try:
        port = int(port_text)
    except ValueError:
        raise CohortError(
            f"Ray address {address!r}: {port_text!r} is not a port; use ray://HOST:10001 "
            "(Ray Client) or HOST:PORT (a cluster this machine is on)"
        ) from None
    host = host.strip("[]")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise CohortError(
            f"nothing answers at Ray address {address!r} ({host}:{port}: {exc}); start the "
            "cluster (ray start --head, with --ray-client-server-port 10001 for ray://), "
            "check the address, or use --executor local"
        ) from None


def start_local_ray(num_cpus: int, object_store_memory: int | None = None, **options: Any) -> None:
    """Start a new Ray instance on this machine, bound to loopback (127.0.0.1) only.

    Ray binds a new node to the machine's network address unless told it is a single-machine
    setup; its ``ENABLE_RAY_CLUSTER`` switch (private, read when the node starts) does that.
    """
    import ray
    import ray._private.ray_constants as ray_constants

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    if object_store_memory is not None:
        options["object_store_memory"] = object_store_memory
    ray.init(
        address="local",
        _node_ip_address="127.0.0.1",
        num_cpus=num_cpus,
        include_dashboard=False,
        **options,
    )


class RayExecutor:
    """Jobs as Ray tasks (one CPU each) on a cluster; results come back to the driver.

    Parameters
    ----------
    address
        ``ray://HOST:10001``, ``HOST:PORT``, ``auto`` or ``local``; ``None``: the Ray
        instance this process has already started (else ``auto``).
    workers
        CPUs of a ``local`` instance.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int = 2) -> None:
        if not ray_available():
            raise CohortError("--executor ray needs the ray extra: pip install 'rtplan-agent[ray]'")
        self.address = address
        self.workers = workers

    def _connect(self, threads: int) -> Callable[[], None]:
        """Connect (or reuse a connection); return how to disconnect what was opened here."""
        import ray

        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        if ray.is_initialized() and self.address is None:
            return lambda: None
        address = self.address or "auto"
        probe_address(address)
        options: dict[str, Any] = {"runtime_env": {"env_vars": thread_env(threads)}}
        if not address.startswith("ray://"):  # Ray Client forwards only ray.init's own
            options["log_to_driver"] = False
        try:
            if address == "local":
                start_local_ray(self.workers, **options)
            else:
                ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            raise CohortError(f"Ray at {address!r} could not be joined: {exc}") from None
        return ray.shutdown

    def map(
        self, jobs: Sequence[CohortJob], factory: CaseFactory, threads: int
    ) -> Iterator[CaseResult]:
        """Run ``jobs`` as Ray tasks; yield the results in job order."""
        import ray

        disconnect = self._connect(threads)
        try:
            task = ray.remote(num_cpus=1, max_retries=0)(work).options(
                runtime_env={"env_vars": thread_env(threads)}
            )
            refs = [task.remote(job, factory, threads) for job in jobs]
            done = 0
            try:
                for ref in refs:
                    result = ray.get(ref)
                    done += 1
                    yield result
            except BaseException:
                # interrupted, failed or abandoned: cancel the tasks not collected yet. Never
                # cancel a collected one: Ray 2.x can abort the driver ("Tried to complete
                # task that was not pending") when a finished task is cancelled.
                for ref in refs[done:]:
                    try:
                        ray.cancel(ref)
                    except Exception:  # finished meanwhile, or the connection is gone
                        continue
                raise
        finally:
            disconnect()


def make_executor(name: str, *, address: str | None = None, workers: int = 2) -> Executor:
    """``local`` or ``ray`` (``address`` only for ``ray``)."""
    if name == "local":
        if address is not None:
            raise CohortError("--address is for --executor ray; the local pool needs none")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address, workers)
    raise CohortError(f"unknown executor {name!r}; use local or ray")
