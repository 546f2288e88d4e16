"""What a cohort run is made of: jobs (one case, one policy), what a worker reports, results.

A job is plain data (it crosses process and machine boundaries); the TPS a job plans on comes
from a :class:`CaseFactory` that the composition root (``agent.cli``) provides, since nothing
in ``agent`` imports an adapter.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from pydantic import Field

from agent.session.records import SessionConfig
from esapi_bridge.port import TpsSession
from rtplan_common.models import FrozenModel

#: Policies the runner knows besides the registry's (a recorded LLM session replayed).
LLM_REPLAY = "llm-replay"
#: A final score within this of the maximum counts as the maximum.
MAX_SCORE_TOLERANCE = 1e-6


class CohortError(RuntimeError):
    """The cohort cannot run (bad spec, unreachable cluster, version mismatch of a worker)."""


class CaseFactory(Protocol):
    """Opens the plan a session config names, says which dose engine it runs and what the
    policies need from it (picklable: it is sent to every worker)."""

    def open_session(self, config: SessionConfig) -> TpsSession:
        """A fresh plan of ``config.scenario`` / ``config.seed``."""
        ...

    def engine_version(self) -> str:
        """The dose engine's version string (compared between driver and workers)."""
        ...

    def policy_options(self, policy: str) -> dict[str, Any]:
        """Keyword arguments of ``make_policy(policy)`` that the composition root supplies
        (e.g. the engine version a knowledge card is checked against)."""
        ...


class CohortJob(FrozenModel):
    """One case planned by one policy.

    ``replay_archive`` is a recorded session directory packed as a tar archive (``llm-replay``
    jobs: it travels with the job, no shared file system needed).
    """

    scenario: str
    seed: Annotated[int, Field(ge=0)]
    policy: str
    max_iterations: Annotated[int, Field(ge=0, le=1000)] = 20
    bo_budget: Annotated[int, Field(ge=1, le=1000)] = 100
    spacing_mm: float | None = None
    replay_archive: bytes | None = None


class WorkerInfo(FrozenModel):
    """What a worker runs: package and engine versions and its thread settings."""

    package_version: str | None
    engine_version: str
    threads: dict[str, str]


class CurvePoint(FrozenModel):
    """The best score so far after ``inner_optimizations`` optimizer calls."""

    inner_optimizations: int
    best_score: float


class CaseResult(FrozenModel):
    """One case and policy: what the plan reached and at what cost (``error`` when it failed).

    ``iterations_to_best`` / ``inner_optimizations_to_best`` count up to the iteration of the
    plan left at the end (its first occurrence: a final revert re-plans an earlier one).
    ``curve`` is the best-so-far score against inner optimizations (look-ahead trials count).
    """

    scenario: str
    seed: int
    policy: str
    replay: bool = False
    error: str | None = None
    stop_reason: str | None = None
    initial_score: float | None = None
    final_score: float | None = None
    max_score: float | None = None
    max_reached: bool = False
    final_p1_met: bool = False
    initial_p1_met: bool = False
    improved: bool = False  # better than the template plan (agent.session.stopping.better)
    not_worse: bool = False
    iterations: int = 0
    inner_optimizations: int = 0
    iterations_to_best: int | None = None
    inner_optimizations_to_best: int | None = None
    wall_s: float = 0.0
    curve: list[CurvePoint] = Field(default_factory=list)
    worker: WorkerInfo | None = None

    def outcome(self) -> dict[str, object]:
        """Everything but timings and the worker: what two executors must agree on."""
        return self.model_dump(exclude={"wall_s", "worker"})
