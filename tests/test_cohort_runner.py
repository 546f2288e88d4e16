"""The cohort runner: jobs, the local process pool, worker reports, summaries and files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cohort_fakes import FakeCases, InlineExecutor

from agent.cohort import (
    CaseResult,
    CohortError,
    CohortSpec,
    CurvePoint,
    LocalExecutor,
    WorkerInfo,
    run_cohort,
    write_outputs,
)
from agent.cohort.case import best_so_far
from agent.cohort.summary import Stat, optimizations_to_reach, paired_differences, reach_ratios
from agent.cohort.workers import check_worker, expected_info

SPEC = CohortSpec(
    scenarios=["prostate-basic"], policies=["rule", "bo"], seeds=[0, 1], max_iterations=3,
    bo_budget=4,
)  # fmt: skip


def _result(policy: str, seed: int, score: float, to_best: int, curve: list[tuple[int, float]]):
    return CaseResult(
        scenario="prostate-basic", seed=seed, policy=policy, final_score=score, max_score=9.0,
        max_reached=score >= 9.0, inner_optimizations_to_best=to_best,
        inner_optimizations=curve[-1][0],
        curve=[CurvePoint(inner_optimizations=n, best_score=s) for n, s in curve],
    )  # fmt: skip


@pytest.fixture(scope="module")
def local_report():
    return run_cohort(SPEC, FakeCases(), LocalExecutor(workers=2))


def test_local_pool_runs_every_policy_on_every_seed(local_report) -> None:
    got = [(r.policy, r.seed) for r in local_report.results]
    assert got == [("rule", 0), ("bo", 0), ("rule", 1), ("bo", 1)]  # seed by seed
    for r in local_report.results:
        assert r.error is None, r.error
        assert r.worker is not None and r.worker.engine_version == "fake-ramps-1"
        assert r.worker.threads["OMP_NUM_THREADS"] == "1"
        assert r.final_score is not None and r.curve
        # the best-so-far curve ends at the final plan's score or above it never
        assert r.curve[-1].best_score >= r.final_score - 1e-9
        assert r.inner_optimizations_to_best is not None
        assert r.inner_optimizations_to_best <= r.inner_optimizations
    bo = [r for r in local_report.results if r.policy == "bo"]
    # BO's fair budget: the template plan + every trial, no stall stop (unless at the maximum)
    assert all(r.max_reached or r.iterations == SPEC.bo_budget for r in bo)


def test_local_pool_is_deterministic_and_pairs_seeds(local_report) -> None:
    again = run_cohort(SPEC, FakeCases(), InlineExecutor())  # in this process
    assert [r.outcome() for r in again.results] == [r.outcome() for r in local_report.results]
    (pair,) = local_report.paired
    assert (pair.policy_a, pair.policy_b, pair.seeds) == ("rule", "bo", [0, 1])
    rule = {r.seed: r.final_score for r in local_report.results if r.policy == "rule"}
    bo = {r.seed: r.final_score for r in local_report.results if r.policy == "bo"}
    diffs = [rule[s] - bo[s] for s in (0, 1)]
    assert pair.final_score.mean == pytest.approx(sum(diffs) / 2, abs=1e-12)


def test_outputs_json_csv_and_plot(local_report, tmp_path: Path) -> None:
    paths = write_outputs(local_report, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert len(data["results"]) == 4 and data["executor"] == "local"
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [(r["policy"], r["seed"]) for r in rows] == [
        ("rule", "0"), ("bo", "0"), ("rule", "1"), ("bo", "1")
    ]  # fmt: skip
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unavailable_policy_is_reported_and_the_others_run() -> None:
    spec = SPEC.model_copy(update={"policies": ["rule", "no-such-policy"], "seeds": [0]})
    report = run_cohort(spec, FakeCases(), InlineExecutor())
    assert [r.policy for r in report.results] == ["rule"]
    assert "unknown policy 'no-such-policy'" in report.unavailable["no-such-policy"]
    only_bad = spec.model_copy(update={"policies": ["no-such-policy"]})
    with pytest.raises(CohortError, match="no policy of the cohort can run"):
        run_cohort(only_bad, FakeCases(), InlineExecutor())


def test_worker_with_another_engine_is_refused(local_report) -> None:
    driver = expected_info(FakeCases(engine="fake-ramps-2"), threads=1)
    with pytest.raises(CohortError, match="dose engine fake-ramps-1, the driver fake-ramps-2"):
        check_worker(driver, local_report.results[0])
    info = local_report.results[0].worker
    assert info is not None
    threads = {**info.threads, "OMP_NUM_THREADS": "8"}
    odd = local_report.results[0].model_copy(
        update={"worker": WorkerInfo(**{**info.model_dump(), "threads": threads})}
    )
    with pytest.raises(CohortError, match="OMP_NUM_THREADS=8, the cohort 1"):
        check_worker(expected_info(FakeCases(), threads=1), odd)


def test_reach_ratio_and_never_reached() -> None:
    results = [
        _result("knowledge", 0, 9.0, 4, [(1, 7.0), (4, 9.0)]),
        _result("bo", 0, 9.0, 30, [(1, 7.0), (10, 8.0), (30, 9.0)]),
        _result("knowledge", 1, 9.0, 2, [(1, 7.0), (2, 9.0)]),
        _result("bo", 1, 8.5, 50, [(1, 7.0), (50, 8.5)]),
    ]
    assert optimizations_to_reach(results[1], 9.0) == 30
    (ratio,) = reach_ratios(results, slow="bo", fast="knowledge")
    assert ratio.reached_seeds == [0] and ratio.never_reached == [1]
    assert ratio.median_ratio == pytest.approx(30 / 4, abs=1e-12)
    (pair,) = paired_differences(results)
    assert pair.final_score.mean == pytest.approx((0.0 + 0.5) / 2, abs=1e-12)
    assert Stat.of([1.0, 3.0]).sd == pytest.approx(2**0.5, abs=1e-12)  # sample sd


def test_best_so_far_counts_trials_and_skips_the_revert(local_report) -> None:
    assert best_so_far([]) == []
    for r in local_report.results:
        steps = [p.inner_optimizations for p in r.curve]
        assert steps == sorted(steps) and steps[0] == 1
        scores = [p.best_score for p in r.curve]
        assert scores == sorted(scores)  # never decreases


def test_an_interrupted_local_run_leaves_no_worker_behind(tmp_path: Path) -> None:
    """Ctrl-C (or a stop signal the CLI turns into one) while cases run: the running workers
    are terminated, not left to finish their 120-s cases after the driver has gone."""
    import os
    import signal
    import threading
    import time

    from cohort_fakes import SlowCases

    from agent.cohort.models import CohortJob

    cases = SlowCases(pid_dir=str(tmp_path), delay_s=120.0)
    jobs = [
        CohortJob(scenario="prostate-basic", seed=s, policy="rule", max_iterations=1)
        for s in (0, 1, 2)
    ]

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    done = threading.Event()

    def when_both_run() -> None:
        deadline = time.monotonic() + 90.0
        while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
            if done.wait(0.1):
                return  # the test ended otherwise: never signal without the handler
        os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, interrupt)
    watcher = threading.Thread(target=when_both_run, daemon=True)
    try:
        results = LocalExecutor(workers=2).map(jobs, cases, 1)
        watcher.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            next(results)
        stopped_s = time.monotonic() - t0
    finally:
        done.set()
        watcher.join(timeout=5.0)
        signal.signal(signal.SIGUSR1, previous)
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 2  # both workers had started a case; the third never did
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # terminated and reaped
    assert stopped_s < 100.0  # well before the 120-s cases could have finished
