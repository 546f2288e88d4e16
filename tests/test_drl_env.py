"""The DRL planner's environment (agent.policies.drl.env) on a tiny configuration of the
simulated TPS (5 mm grid, a small voxel sample, few optimizer iterations), and its reward."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from gymnasium.spaces import Discrete
from gymnasium.utils.env_checker import check_env

from agent.cli.drl import TrainingSessionFactory
from agent.evaluation import CriterionResult, Evaluation
from agent.policies.drl.env import EnvConfig, PlanningEnv
from agent.policies.drl.episodes import EpisodeRecord
from agent.policies.drl.reward import SCORE_WEIGHT, fine_score, step_reward
from agent.session.guardrails import Guardrails
from agent.session.records import Proposal, VerdictStatus
from agent.templates import load_template

TINY = EnvConfig(max_steps=3, step_iterations=5, reset_iterations=30, grid="test")


def _env(on_episode: Callable[[EpisodeRecord], None] | None = None) -> PlanningEnv:
    return PlanningEnv(
        load_template("prostate-basic"),
        TrainingSessionFactory(spacing_mm=5.0),
        [1000],
        TINY,
        on_episode=on_episode,
    )


def test_the_environment_passes_gymnasiums_checker() -> None:
    env = _env()
    check_env(env, skip_render_check=True)
    assert (
        isinstance(env.action_space, Discrete) and env.action_space.n == 18
    )  # 9 TPPs x (up, down), as published
    # 3 DVHs of 100 bins + 13 goal margins + 9 TPPs
    assert env.observation_space.shape == (300 + 13 + 9,)


def test_every_step_passes_the_guardrails_unclipped_and_episodes_are_recorded() -> None:
    records: list[EpisodeRecord] = []
    env = _env(on_episode=records.append)
    env.reset(seed=3)
    episode = env._require()
    case = episode.case
    guard = Guardrails(
        env.template,
        case.structure_map,
        case.session.structures(),
        env.template.prescription.dose_gy,
    )
    for action in (0, 7, 11, 16):  # PTV dose up, bladder volume down, rectum dose down, ...
        before = list(episode.objectives)
        _, _, terminated, truncated, info = env.step(action)
        verdict, applied = guard.check(Proposal(objectives=episode.objectives), before)
        assert verdict.status is VerdictStatus.ACCEPTED, verdict.adjustments
        assert applied == episode.objectives
        if terminated or truncated:
            break
    assert len(records) == 1
    rec = records[0]
    assert rec.steps and rec.steps[0].action.tpp == "PTV.upper.dose_gy"
    assert rec.steps[0].action.direction == "up"
    assert rec.final_score == pytest.approx(info["score"])
    assert len(rec.steps) == 3 or rec.success  # truncated at max_steps unless at 9/9


def _evaluation(values: tuple[float, float], score: float) -> Evaluation:
    criteria = [
        CriterionResult(
            criterion_id="bladder_v80", structure_id="Bladder", plan_structure_id="Bladder",
            metric="V101%Rx", comparator="<=", unit="%", value=values[0], full=15.0, zero=20.0,
            points=0.0, max_points=1.0,
        ),
        CriterionResult(
            criterion_id="ptv_v95", structure_id="PTV", plan_structure_id="PTV",
            metric="V95%Rx", comparator=">=", unit="%", value=values[1], full=95.0, zero=90.0,
            points=0.0, max_points=2.0,
        ),
    ]  # fmt: skip
    return Evaluation(
        template="t", prescription_gy=79.2, goals=[], criteria=criteria, score=score,
        max_score=3.0, all_priority1_met=True, all_priority1_acceptable=True,
    )  # fmt: skip


def test_fine_score_and_reward_on_a_hand_made_transition() -> None:
    # by hand: "<=" (20 - 17.5) / 5 = 0.5; ">=" 2 x (85 - 90) / 5 = -2.0 -> -1.5
    before = _evaluation((17.5, 85.0), score=0.5)
    # "<=" (20 - 10) / 5 = 2.0 (beyond "full": not clipped); ">=" 2 x (92.5 - 90) / 5 = 1.0
    after = _evaluation((10.0, 92.5), score=2.0)
    assert fine_score(before) == pytest.approx(-1.5, abs=1e-12)
    assert fine_score(after) == pytest.approx(3.0, abs=1e-12)
    reward = step_reward(fine_score(before), fine_score(after), 0.5, 2.0)
    assert SCORE_WEIGHT == 4.0
    assert reward == pytest.approx(4.5 + 4.0 * 1.5, abs=1e-12)
