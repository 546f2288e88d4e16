"""A Gymnasium environment over a TPS session: the DRL planner's training ground.

One episode plans one case (a seed of the scenario, drawn from the environment's seeds) from
random initial TPPs (uniform within the template's ranges, priorities log-uniform; seeded by
``reset(seed=...)``) or from the template's values. An action moves one TPP one step up or
down (:func:`agent.policies.drl.tpps.decode_action`; the steps never exceed the guardrails'
bounds); the plan is then optimized from the current fluence (warm start), its dose calculated
and normalized, and evaluated against the template. Observation:
:func:`agent.policies.drl.observation.observe`; reward:
:func:`agent.policies.drl.reward.step_reward`. An episode ends at the maximum score
(terminated) or after ``max_steps`` steps (truncated).

Sessions come from an injected factory ``(scenario, seed) -> TpsSession`` (the composition root
builds it: ``agent`` never imports a TPS backend); each case's session is kept (its
dose-influence matrix stays in memory) up to ``max_cached_cases`` cases.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from agent.evaluation import Evaluation, evaluate_session
from agent.policies.drl.episodes import (
    EpisodeAction,
    EpisodeRecord,
    EpisodeStep,
    is_success,
)
from agent.policies.drl.observation import ObservationSpec, observation_spec, observe
from agent.policies.drl.reward import fine_score, step_reward
from agent.policies.drl.tpps import (
    Tpp,
    apply_action,
    decode_action,
    random_values,
    read_values,
    tpps_of,
    write_values,
)
from agent.session.identity import template_hash
from agent.templates import SiteTemplate, match_structures
from esapi_bridge.dto import NormalizationRule, Objective, OptimizationMode, OptimizeRequest
from esapi_bridge.port import TpsSession

SessionFactory = Callable[[str, int], TpsSession]


@dataclass(frozen=True)
class EnvConfig:
    """Settings of :class:`PlanningEnv`.

    Attributes
    ----------
    max_steps : steps per episode (published: 20).
    step_iterations : optimizer iterations per step (warm start).
    reset_iterations : optimizer iterations of the cold start at reset.
    random_start : random initial TPPs (else the template's values).
    max_cached_cases : sessions (cases) kept open.
    grid : a label of the training grid, recorded in episodes (e.g. ``5mm-sampled``).
    """

    max_steps: int = 20
    step_iterations: int = 20
    reset_iterations: int = 200
    random_start: bool = True
    max_cached_cases: int = 8
    grid: str = "full"


@dataclass
class _Case:
    seed: int
    session: TpsSession
    structure_map: dict[str, str]
    rule: NormalizationRule | None
    engine_version: str


@dataclass
class _Episode:
    case: _Case
    objectives: list[Objective]
    evaluation: Evaluation
    score: float
    fine: float
    initial_values: dict[str, float]
    initial_score: float
    steps: list[EpisodeStep] = field(default_factory=list)


def _engine_version(session: TpsSession) -> str:
    backend = session.plan_info().backend
    return (backend.engine_version if backend else None) or "unknown"


def plan_score(evaluation: Evaluation) -> float:
    """The template score of ``evaluation`` (0 for a template without one)."""
    return float(evaluation.score or 0.0)


class PlanningEnv(gym.Env[NDArray[np.float32], np.int64]):
    """The environment (module docstring).

    Parameters
    ----------
    template
        The site template (objectives, TPP ranges, goals, score).
    session_factory
        ``(scenario, seed) -> TpsSession``.
    seeds
        The cases (seeds of ``template.scenario``) episodes draw from.
    config
        :class:`EnvConfig`.
    on_episode
        Called with the :class:`EpisodeRecord` of every finished episode.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's attribute)

    def __init__(
        self,
        template: SiteTemplate,
        session_factory: SessionFactory,
        seeds: Sequence[int],
        config: EnvConfig | None = None,
        on_episode: Callable[[EpisodeRecord], None] | None = None,
    ) -> None:
        if not seeds:
            raise ValueError("PlanningEnv needs at least one case seed")
        if template.score is None:
            raise ValueError(f"template {template.name!r} has no score: the reward needs one")
        self.template = template
        self.factory = session_factory
        self.seeds = tuple(int(s) for s in seeds)
        self.config = config or EnvConfig()
        self.on_episode = on_episode
        self.tpps: tuple[Tpp, ...] = tuple(tpps_of(template))
        self.spec_obs: ObservationSpec = observation_spec(template, self.tpps)
        self.max_score = float(template.score.max_score or 0.0)
        self.template_hash = template_hash(template)
        self.action_space = spaces.Discrete(2 * len(self.tpps))
        self.observation_space = spaces.Box(-1.0, 1.0, (self.spec_obs.size,), np.float32)
        self._cases: OrderedDict[int, _Case] = OrderedDict()
        self._episode: _Episode | None = None
        #: wall times (s) of the last steps that re-planned
        self.step_times_s: deque[float] = deque(maxlen=200)

    # -- cases --------------------------------------------------------------------------
    def _case(self, seed: int) -> _Case:
        case = self._cases.get(seed)
        if case is not None:
            self._cases.move_to_end(seed)
            return case
        session = self.factory(self.template.scenario, seed)
        smap = match_structures(self.template, session.structures())
        case = _Case(
            seed=seed,
            session=session,
            structure_map=smap,
            rule=self.template.normalization_rule(smap),
            engine_version=_engine_version(session),
        )
        self._cases[seed] = case
        while len(self._cases) > max(1, self.config.max_cached_cases):
            self._cases.popitem(last=False)
        return case

    def _plan(self, case: _Case, objectives: list[Objective], mode: OptimizationMode) -> Evaluation:
        session = case.session
        session.set_objectives(objectives)
        iterations = (
            self.config.reset_iterations
            if mode is OptimizationMode.RESTART
            else self.config.step_iterations
        )
        session.optimize(OptimizeRequest(mode=mode, max_iterations=iterations))
        session.calculate_dose()
        if case.rule is not None:
            session.normalize(case.rule)
        return evaluate_session(session, self.template, case.structure_map)

    def _observation(self) -> NDArray[np.float32]:
        ep = self._require()
        smap = ep.case.structure_map
        plan_ids = [smap[b.structure] for b in self.spec_obs.dvhs]
        dvhs = {pid: ep.case.session.get_dvh(pid) for pid in plan_ids}
        values = read_values(self.tpps, ep.objectives, smap)
        return observe(self.spec_obs, dvhs, smap, ep.evaluation, values)

    def _require(self) -> _Episode:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        return self._episode

    # -- gymnasium ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode. ``options``: ``case_seed`` (else drawn from the seeds) and
        ``tpp_values`` (else random, or the template's without ``random_start``)."""
        super().reset(seed=seed)
        options = options or {}
        case_seed = options.get("case_seed")
        if case_seed is None:
            case_seed = self.seeds[int(self.np_random.integers(len(self.seeds)))]
        case = self._case(int(case_seed))
        objectives = self.template.initial_objectives(case.structure_map)
        if "tpp_values" in options:
            values = dict(options["tpp_values"])
        elif self.config.random_start:
            values = random_values(self.tpps, self.np_random.random(len(self.tpps)).tolist())
        else:
            values = {}
        objectives = write_values(self.tpps, objectives, values, case.structure_map)
        evaluation = self._plan(case, objectives, OptimizationMode.RESTART)
        score = plan_score(evaluation)
        self._episode = _Episode(
            case=case,
            objectives=objectives,
            evaluation=evaluation,
            score=score,
            fine=fine_score(evaluation),
            initial_values=read_values(self.tpps, objectives, case.structure_map),
            initial_score=score,
        )
        return self._observation(), self._info()

    def step(
        self, action: np.int64 | int
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Move one TPP one step, re-plan, evaluate (module docstring)."""
        t0 = time.perf_counter()
        ep = self._require()
        index = int(action)
        tpp, direction = decode_action(self.tpps, index)
        before = read_values(self.tpps, ep.objectives, ep.case.structure_map)
        margins = {g.goal_id: g.margin for g in ep.evaluation.goals}
        objectives, changed = apply_action(self.tpps, ep.objectives, ep.case.structure_map, index)
        score_before, fine_before = ep.score, ep.fine
        if changed:
            ep.objectives = objectives
            ep.evaluation = self._plan(ep.case, objectives, OptimizationMode.CONTINUE)
            ep.score, ep.fine = plan_score(ep.evaluation), fine_score(ep.evaluation)
        reward = step_reward(fine_before, ep.fine, score_before, ep.score)
        ep.steps.append(
            EpisodeStep(
                tpp_values_before=before,
                action=EpisodeAction(tpp=tpp.name, direction=direction),
                score_before=score_before,
                score_after=ep.score,
                fine_score_before=fine_before,
                fine_score_after=ep.fine,
                reward=reward,
                goal_margins=margins,
            )
        )
        terminated = is_success(ep.score, self.max_score)
        truncated = not terminated and len(ep.steps) >= self.config.max_steps
        obs = self._observation()
        if (terminated or truncated) and self.on_episode is not None:
            self.on_episode(self.episode_record())
        if changed:
            self.step_times_s.append(time.perf_counter() - t0)
        return obs, float(reward), terminated, truncated, self._info()

    def _info(self) -> dict[str, Any]:
        ep = self._require()
        return {
            "score": ep.score,
            "fine_score": ep.fine,
            "max_score": self.max_score,
            "case_seed": ep.case.seed,
            "steps": len(ep.steps),
        }

    def episode_record(self) -> EpisodeRecord:
        """The record of the current episode so far."""
        ep = self._require()
        return EpisodeRecord(
            scenario=self.template.scenario,
            seed=ep.case.seed,
            template=self.template.name,
            template_hash=self.template_hash,
            engine_version=ep.case.engine_version,
            source="train",
            grid=self.config.grid,
            initial_tpp_values=ep.initial_values,
            initial_score=ep.initial_score,
            steps=list(ep.steps),
            final_tpp_values=read_values(self.tpps, ep.objectives, ep.case.structure_map),
            final_score=ep.score,
            max_score=self.max_score,
            success=is_success(ep.score, self.max_score),
        )

    @property
    def cached_cases(self) -> Mapping[int, _Case]:
        """The open cases by seed (least recently used first)."""
        return self._cases
