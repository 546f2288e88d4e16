"""Plan one cohort job in this process and return its :class:`CaseResult` (never raises for a
planning failure: the error goes into the result)."""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.cohort.models import (
    LLM_REPLAY,
    MAX_SCORE_TOLERANCE,
    CaseFactory,
    CaseResult,
    CohortJob,
    CurvePoint,
)
from agent.session.records import (
    REVERT_POLICY,
    IterationRecord,
    SessionConfig,
    SessionSummary,
)
from agent.session.stopping import better, plan_quality


def scenario_case(scenario: str) -> tuple[str, str]:
    """(case scenario, template) of a cohort scenario: ``tg119-easy`` plans TG-119 with the
    ``tg119-easy`` template; every other scenario uses its namesake template."""
    if scenario.startswith("tg119"):
        return "tg119", scenario
    return scenario, scenario


def case_label(job: CohortJob) -> str:
    """The non-identifying label of a simulated case (``prostate-basic/seed0``)."""
    return f"{job.scenario}/seed{job.seed}"


def build_policy(job: CohortJob, factory: CaseFactory) -> tuple[Any, dict[str, Any]]:
    """The policy of ``job`` and the session settings it asks for (BO: its fair budget).

    Raises :class:`agent.policies.PolicyError` when the policy cannot be built (unknown,
    or its module or extra is not installed).
    """
    from agent.policies import make_policy

    options = factory.policy_options(job.policy)
    if job.policy == "bo":
        options |= {"budget": job.bo_budget, "seed": job.seed}
    policy = make_policy(job.policy, **options)
    return policy, dict(getattr(policy, "session_settings", {}))


def best_so_far(records: Sequence[IterationRecord]) -> list[CurvePoint]:
    """Best score so far against inner optimizations (trials counted one each, in order).

    The score is :func:`agent.session.stopping.plan_quality`: the template's score, else its
    priority-weighted goal status points (trials of such templates carry no score: skipped).
    """
    points: list[CurvePoint] = []
    used, best = 0, float("-inf")
    for record in records:
        if record.proposal.policy == REVERT_POLICY:
            continue  # re-plans an earlier point: no new information
        for trial in record.trials:
            if trial.score is not None:
                used += 1
                best = max(best, trial.score)
                points.append(CurvePoint(inner_optimizations=used, best_score=best))
        used += record.inner_optimizations - sum(1 for t in record.trials if t.score is not None)
        if record.evaluation is not None:
            best = max(best, plan_quality(record.evaluation))
            points.append(CurvePoint(inner_optimizations=used, best_score=best))
    return points


def _to_best(
    records: Sequence[IterationRecord], final_objectives: Sequence[object]
) -> tuple[int | None, int | None]:
    """(iterations, inner optimizations) up to the first record with the final objectives."""
    used = 0
    for record in records:
        used += record.inner_optimizations
        if record.proposal.policy != REVERT_POLICY and list(record.applied_objectives) == list(
            final_objectives
        ):
            return record.iteration, used
    return None, None


def result_from(
    job: CohortJob,
    summary: SessionSummary,
    records: Sequence[IterationRecord],
    wall_s: float,
    *,
    replay: bool = False,
) -> CaseResult:
    """The :class:`CaseResult` of a finished session."""
    first, last = summary.initial_evaluation, summary.final_evaluation
    final_objectives = records[-1].applied_objectives if records and last is not None else []
    to_best = _to_best(records, final_objectives) if last is not None else (None, None)
    max_score = None if last is None else last.max_score
    final_score = None if last is None else last.score
    reached = bool(
        max_score is not None
        and final_score is not None
        and final_score >= max_score - MAX_SCORE_TOLERANCE
    )
    return CaseResult(
        scenario=job.scenario,
        seed=job.seed,
        policy=job.policy,
        replay=replay,
        error=summary.message if summary.stop_reason.value == "error" else None,
        stop_reason=summary.stop_reason.value,
        initial_score=None if first is None else first.score,
        final_score=final_score,
        max_score=max_score,
        max_reached=reached,
        final_p1_met=bool(last and last.all_priority1_met),
        initial_p1_met=bool(first and first.all_priority1_met),
        improved=bool(first and last and better(last, first, 0.0)),
        not_worse=bool(first and last and not better(first, last, 0.0)),
        iterations=summary.iterations,
        inner_optimizations=summary.inner_optimizations,
        iterations_to_best=to_best[0],
        inner_optimizations_to_best=to_best[1],
        wall_s=wall_s,
        curve=best_so_far(records),
    )


def run_case(job: CohortJob, factory: CaseFactory) -> CaseResult:
    """Plan ``job`` on a fresh plan from ``factory`` in a temporary session directory."""
    t0 = time.perf_counter()
    try:
        if job.policy == LLM_REPLAY:
            return _replay(job, factory, t0)
        return _plan(job, factory, t0)
    except Exception as exc:  # a row of the cohort, not a crash of the whole run
        return CaseResult(
            scenario=job.scenario,
            seed=job.seed,
            policy=job.policy,
            replay=job.policy == LLM_REPLAY,
            error=f"{type(exc).__name__}: {exc}",
            wall_s=time.perf_counter() - t0,
        )


def _plan(job: CohortJob, factory: CaseFactory, t0: float) -> CaseResult:
    from agent.session.loop import PlanningLoop
    from agent.templates import load_template

    scenario, template_name = scenario_case(job.scenario)
    policy, settings = build_policy(job, factory)
    config = SessionConfig.model_validate(
        {
            "scenario": scenario,
            "seed": job.seed,
            "template": template_name,
            "policy": policy.name,
            "max_iterations": job.max_iterations,
            "spacing_mm": job.spacing_mm,
            **settings,
        }
    )
    records: list[IterationRecord] = []
    session = factory.open_session(config)
    with tempfile.TemporaryDirectory(prefix="rtplan-cohort-") as tmp:
        loop = PlanningLoop(
            session,
            load_template(template_name),
            policy,
            config,
            Path(tmp) / "session",
            save_snapshots=False,
            case_label=case_label(job),
            on_iteration=records.append,
        )
        summary = loop.run()
    return result_from(job, summary, records, time.perf_counter() - t0)


def _replay(job: CohortJob, factory: CaseFactory, t0: float) -> CaseResult:
    from agent.policies.llm.wiring import replaying_policy
    from agent.session.replay import replay_session

    if job.replay_archive is None:
        raise ValueError("an llm-replay job needs the recorded session (replay_archive)")
    records: list[IterationRecord] = []
    with tempfile.TemporaryDirectory(prefix="rtplan-replay-") as tmp:
        recorded = Path(tmp) / "recorded"
        with tarfile.open(fileobj=io.BytesIO(job.replay_archive), mode="r") as tar:
            tar.extractall(recorded, filter="data")
        report = replay_session(
            recorded,
            factory.open_session,
            out_dir=Path(tmp) / "replayed",
            on_iteration=records.append,
            policy_for=lambda log: replaying_policy(log, recorded),
        )
    result = result_from(job, report.summary, records, time.perf_counter() - t0, replay=True)
    if not report.matched:
        note = report.stopped_early or "the replayed metrics differ from the recorded ones"
        return result.model_copy(update={"error": f"replay does not match: {note}"})
    return result
