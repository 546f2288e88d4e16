"""A cohort case factory on the fake TPS (no dose engine): picklable, for local and Ray workers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fakes import FakeTpsSession

from agent.cohort.models import CaseFactory, CaseResult, CohortJob
from agent.cohort.workers import thread_env, work
from agent.session.records import SessionConfig


@dataclass(frozen=True)
class FakeCases:
    """Opens a :class:`fakes.FakeTpsSession` for every job; ``engine`` is its engine version."""

    engine: str = "fake-ramps-1"

    def open_session(self, config: SessionConfig) -> FakeTpsSession:
        """A fresh fake plan (the seed names the plan; the fake's anatomy does not vary)."""
        return FakeTpsSession(plan_id=f"fake-plan-{config.seed}", engine_version=self.engine)

    def engine_version(self) -> str:
        """The fake engine's version."""
        return self.engine

    def policy_options(self, policy: str) -> dict[str, Any]:
        """No options: the fake needs none."""
        return {}


@dataclass(frozen=True)
class DriverEngineDiffers(FakeCases):
    """The driver (process ``driver_pid``) sees engine ``driver_engine``; workers ``engine``."""

    driver_pid: int = 0
    driver_engine: str = "fake-ramps-2"

    def engine_version(self) -> str:
        """``driver_engine`` in the driver, ``engine`` elsewhere."""
        return self.driver_engine if os.getpid() == self.driver_pid else self.engine


@dataclass(frozen=True)
class SlowCases(FakeCases):
    """Each worker writes its pid into ``pid_dir`` and then takes ``delay_s`` to open a case."""

    pid_dir: str = "."
    delay_s: float = 120.0

    def open_session(self, config: SessionConfig) -> FakeTpsSession:
        """The fake plan, after ``delay_s`` (its pid file written first)."""
        path = os.path.join(self.pid_dir, f"{os.getpid()}.pid")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
        time.sleep(self.delay_s)
        return super().open_session(config)


class InlineExecutor:
    """Runs every job in this process, one after the other (tests that need no pool)."""

    name = "inline"

    def map(
        self, jobs: Sequence[CohortJob], factory: CaseFactory, threads: int
    ) -> Iterator[CaseResult]:
        """The result of each job, in order, with the workers' environment set meanwhile."""
        env = thread_env(threads)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            for job in jobs:
                yield work(job, factory, threads)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
