"""Run a cohort: every policy on every case (scenario x seed), on an executor; then the
summary, the paired differences, and the files (JSON, CSV, figure).

``run_cohort`` checks first, in the driver, that each policy can be built (a policy whose
module or extra is missing is reported as unavailable, with the reason, and the others run),
then sends the jobs and checks each worker's report against the driver's.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import Field

from agent.cohort.case import build_policy
from agent.cohort.executors import Executor
from agent.cohort.models import (
    LLM_REPLAY,
    CaseFactory,
    CaseResult,
    CohortError,
    CohortJob,
    WorkerInfo,
)
from agent.cohort.replays import SkippedReplay, replay_jobs
from agent.cohort.summary import (
    PairedDifference,
    PolicySummary,
    ReachRatio,
    paired_differences,
    reach_ratios,
    summarize,
)
from agent.cohort.workers import check_worker, expected_info
from rtplan_common.atomic_io import write_text_atomic
from rtplan_common.models import FrozenModel

#: Files a cohort writes into its output directory.
JSON_NAME, CSV_NAME, PLOT_NAME = "cohort.json", "cases.csv", "best_so_far.png"
#: The cases of a run so far, one JSON line each, written as they finish.
PARTIAL_NAME = "cases.jsonl"
#: Columns of ``cases.csv`` (the curve is in the JSON only).
CSV_COLUMNS = (
    "scenario", "seed", "policy", "replay", "final_score", "max_score", "max_reached",
    "final_p1_met", "iterations", "inner_optimizations", "iterations_to_best",
    "inner_optimizations_to_best", "initial_score", "wall_s", "stop_reason", "error",
)  # fmt: skip


class CohortSpec(FrozenModel):
    """What to run: scenarios x seeds x policies (``llm-replay`` needs ``replay_dir``)."""

    scenarios: list[str] = Field(min_length=1)
    policies: list[str] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    max_iterations: Annotated[int, Field(ge=0, le=1000)] = 20
    bo_budget: Annotated[int, Field(ge=1, le=1000)] = 100
    threads_per_worker: Annotated[int, Field(ge=1, le=64)] = 1
    spacing_mm: Annotated[float, Field(ge=1.0, le=5.0)] | None = None  # None: the case's own
    replay_dir: str | None = None


class CohortReport(FrozenModel):
    """A finished cohort: results of every job, summaries and what could not run."""

    spec: CohortSpec
    executor: str
    driver: WorkerInfo
    total_wall_s: float
    unavailable: dict[str, str]
    skipped_replays: list[SkippedReplay]
    results: list[CaseResult]
    summary: list[PolicySummary]
    paired: list[PairedDifference]
    reach: list[ReachRatio]


def cohort_jobs(spec: CohortSpec, factory: CaseFactory) -> tuple[
    list[CohortJob], dict[str, str], list[SkippedReplay]
]:  # fmt: skip
    """The jobs of ``spec``, the policies that cannot be built (name -> why) and the
    recorded sessions not replayed.

    Jobs run seed by seed (every scenario and policy of seed 0, then of seed 1, ...), so a
    cohort stopped early has complete pairs on the seeds it finished."""
    unavailable: dict[str, str] = {}
    jobs: list[CohortJob] = []
    skipped: list[SkippedReplay] = []
    for policy in dict.fromkeys(spec.policies):
        if policy == LLM_REPLAY:
            if spec.replay_dir is None:
                raise CohortError("llm-replay needs the recorded sessions: --replay-dir DIR")
            found, skipped = replay_jobs(
                Path(spec.replay_dir), spec.scenarios, spec.seeds, factory.engine_version()
            )
            jobs += found
            continue
        probe = CohortJob(scenario=spec.scenarios[0], seed=spec.seeds[0], policy=policy)
        try:
            build_policy(probe, factory)
        except Exception as exc:  # PolicyError, or a policy failing to build
            unavailable[policy] = f"{type(exc).__name__}: {exc}"
            continue
        jobs += [
            CohortJob(
                scenario=scenario,
                seed=seed,
                policy=policy,
                max_iterations=spec.max_iterations,
                bo_budget=spec.bo_budget,
                spacing_mm=spec.spacing_mm,
            )
            for scenario in spec.scenarios
            for seed in spec.seeds
        ]
    order = {seed: i for i, seed in enumerate(spec.seeds)}
    jobs.sort(key=lambda job: order.get(job.seed, len(order)))  # stable: scenario, policy kept
    return jobs, unavailable, skipped


def run_cohort(
    spec: CohortSpec,
    factory: CaseFactory,
    executor: Executor,
    *,
    on_result: Callable[[CaseResult], None] | None = None,
) -> CohortReport:
    """Run ``spec`` on ``executor``; raises :class:`CohortError` when nothing can run or a
    worker differs from the driver."""
    jobs, unavailable, skipped = cohort_jobs(spec, factory)
    if not jobs:
        reasons = [f"{p}: {r}" for p, r in unavailable.items()]
        reasons += [f"{LLM_REPLAY} {s.session}: {s.reason}" for s in skipped]
        why = "; ".join(reasons) or f"no recorded session for {LLM_REPLAY}"
        raise CohortError(f"no policy of the cohort can run ({why})")
    driver = expected_info(factory, spec.threads_per_worker)
    t0 = time.perf_counter()
    results: list[CaseResult] = []
    for result in executor.map(jobs, factory, spec.threads_per_worker):
        check_worker(driver, result)
        results.append(result)
        if on_result is not None:
            on_result(result)
    policies = [p for p in dict.fromkeys(spec.policies) if p not in unavailable]
    reach = [
        ratio
        for fast in policies
        if fast != "bo" and "bo" in policies
        for ratio in reach_ratios(results, slow="bo", fast=fast)
    ]
    return CohortReport(
        spec=spec,
        executor=executor.name,
        driver=driver,
        total_wall_s=time.perf_counter() - t0,
        unavailable=unavailable,
        skipped_replays=skipped,
        results=results,
        summary=summarize(results),
        paired=paired_differences(results),
        reach=reach,
    )


def append_result(path: Path, result: CaseResult) -> None:
    """Add ``result`` as one JSON line to ``path`` (the cases of a run so far)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as stream:
        stream.write(result.model_dump_json() + "\n")


def read_results(path: Path) -> list[CaseResult]:
    """The results :func:`append_result` wrote (a torn last line is ignored)."""
    out: list[CaseResult] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(CaseResult.model_validate_json(line))
        except ValueError:
            continue
    return out


def cases_csv(results: Sequence[CaseResult]) -> str:
    """One row per case (``CSV_COLUMNS``)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for r in results:
        writer.writerow(r.model_dump(include=set(CSV_COLUMNS)))
    return buffer.getvalue()


def write_outputs(report: CohortReport, out_dir: Path) -> dict[str, Path]:
    """Write ``cohort.json``, ``cases.csv`` and ``best_so_far.png`` into ``out_dir``."""
    from agent.cohort.plot import save_best_so_far

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / JSON_NAME, "csv": out_dir / CSV_NAME, "plot": out_dir / PLOT_NAME}
    write_text_atomic(paths["json"], report.model_dump_json(indent=2) + "\n")
    write_text_atomic(paths["csv"], cases_csv(report.results))
    save_best_so_far(report.results, paths["plot"])
    return paths
