"""``llm-replay`` in a cohort: a recorded LLM session re-run on its recorded responses, only on
its exact case, engine and template; labelled as a replay."""

from __future__ import annotations

from pathlib import Path

import pytest
from cohort_fakes import FakeCases, InlineExecutor
from fake_llm import FakeLlmServer, planner
from fake_llm_planner import decide
from fakes import FakeTpsSession

from agent.cohort import LLM_REPLAY, CohortError, CohortSpec, run_cohort
from agent.policies.llm.providers.base import ProviderSettings
from agent.policies.llm.settings import LlmSettings
from agent.policies.llm.wiring import recording_policy
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig
from agent.templates import load_template


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A directory with one recorded LLM session of prostate-basic seed 0 on the fake TPS."""
    root = tmp_path_factory.mktemp("recorded")
    session_dir = root / "llm-session"
    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        settings = LlmSettings(
            provider=ProviderSettings(
                provider="anthropic", model="test-model", base_url=server.anthropic_base_url
            )
        )
        policy = recording_policy(settings, session_dir, env={"ANTHROPIC_API_KEY": "sk-test"})
        config = SessionConfig(
            scenario="prostate-basic", seed=0, template="prostate-basic", policy="llm",
            max_iterations=3,
        )  # fmt: skip
        summary = PlanningLoop(
            FakeTpsSession(plan_id="fake-plan-0"), load_template("prostate-basic"), policy,
            config, session_dir, case_label="prostate-basic/seed0", save_snapshots=False,
        ).run()  # fmt: skip
    assert summary.final_evaluation is not None and summary.final_evaluation.score is not None
    return root, summary.final_evaluation.score


def _spec(root: Path, seeds: list[int]) -> CohortSpec:
    return CohortSpec(
        scenarios=["prostate-basic"], policies=["rule", LLM_REPLAY], seeds=seeds,
        max_iterations=3, replay_dir=str(root),
    )  # fmt: skip


def test_recorded_session_is_replayed_on_its_case_and_labelled(
    recorded: tuple[Path, float],
) -> None:
    root, score = recorded
    report = run_cohort(_spec(root, [0, 1]), FakeCases(), InlineExecutor())
    replays = [r for r in report.results if r.policy == LLM_REPLAY]
    assert len(replays) == 1 and replays[0].replay and replays[0].seed == 0
    assert replays[0].error is None, replays[0].error
    assert replays[0].final_score == pytest.approx(score, abs=1e-9)
    assert [r.policy for r in report.results if not r.replay] == ["rule", "rule"]


def test_replay_refused_on_another_engine_or_case(recorded: tuple[Path, float]) -> None:
    root, _ = recorded
    with pytest.raises(CohortError, match="recorded on dose engine fake-ramps-1"):
        run_cohort(
            _spec(root, [0]).model_copy(update={"policies": [LLM_REPLAY]}),
            FakeCases(engine="fake-ramps-2"),
            InlineExecutor(),
        )
    report = run_cohort(_spec(root, [1]), FakeCases(), InlineExecutor())
    assert [r.policy for r in report.results] == ["rule"]
    (skipped,) = report.skipped_replays
    assert "prostate-basic/seed0 is not in this cohort" in skipped.reason
