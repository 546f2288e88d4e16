"""Train the DRL planner with stable-baselines3's DQN, in runs that resume from checkpoints.

``train(template, session_factory, config, out_dir)`` trains until ``config.steps`` environment
steps in total. Every ``checkpoint_every`` steps (and at the end of a run) it writes
``checkpoint.zip`` (the model), ``checkpoint_replay.pkl`` (the replay buffer) and
``checkpoint.json`` (:class:`TrainState`: steps, episodes and wall time so far, the zip's and
the buffer's sha256); a later run with the same ``out_dir`` resumes there (the step count
continues) when the checkpoint matches the template and the seeds. A run stops at
``config.max_wall_s`` too, so a budget can be spread across runs. At the end the policy is
written as ``<template>.zip`` with its :class:`agent.policies.drl.files.PolicyProvenance`.
Successful episodes are appended to ``config.episodes_path`` (JSON lines) when given.

Torch runs with ``config.torch_threads`` threads (default 1: the environment's optimizer needs
the other core).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from agent.policies.drl.env import EnvConfig, PlanningEnv, SessionFactory
from agent.policies.drl.episodes import EpisodeRecord, append_episodes
from agent.policies.drl.files import (
    PolicyFileError,
    PolicyProvenance,
    sha256_of,
    write_provenance,
)
from agent.templates import SiteTemplate
from rtplan_common.atomic_io import write_text_atomic
from rtplan_common.models import FrozenModel

CHECKPOINT = "checkpoint.zip"
CHECKPOINT_BUFFER = "checkpoint_replay.pkl"
CHECKPOINT_STATE = "checkpoint.json"


class TrainConfig(FrozenModel):
    """Settings of a training (DQN hyper-parameters as in the published planner's spirit:
    short episodes, so a short horizon)."""

    steps: Annotated[int, Field(ge=1)] = 12_000
    seeds: list[int]
    max_wall_s: Annotated[float, Field(gt=0)] = 1800.0
    checkpoint_every: Annotated[int, Field(ge=1)] = 1000
    learning_rate: float = 5e-4
    buffer_size: Annotated[int, Field(ge=100)] = 30_000
    learning_starts: Annotated[int, Field(ge=1)] = 500
    batch_size: Annotated[int, Field(ge=1)] = 64
    gamma: float = 0.9
    train_freq: Annotated[int, Field(ge=1)] = 2
    target_update_interval: Annotated[int, Field(ge=1)] = 500
    exploration_fraction: float = 0.4
    exploration_final_eps: float = 0.05
    net_arch: list[int] = Field(default_factory=lambda: [128, 128])
    torch_threads: Annotated[int, Field(ge=1)] = 1
    seed: int = 0
    episodes_path: Path | None = None


class TrainState(FrozenModel):
    """What a checkpoint records of the training so far."""

    template: str
    template_hash: str
    seeds: list[int]
    steps: Annotated[int, Field(ge=0)]
    episodes: Annotated[int, Field(ge=0)]
    wall_time_s: Annotated[float, Field(ge=0.0)]
    cpu_time_s: Annotated[float, Field(ge=0.0)] = 0.0
    runs: Annotated[int, Field(ge=0)]
    model_sha256: str
    buffer_sha256: str
    recent_success: list[bool] = Field(default_factory=list)


def library_versions() -> dict[str, str]:
    """Versions of stable-baselines3, torch and gymnasium."""
    import gymnasium
    import stable_baselines3
    import torch

    return {
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
    }


def read_state(out_dir: Path) -> TrainState | None:
    """The checkpoint state in ``out_dir`` (``None`` if there is none)."""
    path = out_dir / CHECKPOINT_STATE
    if not path.is_file():
        return None
    return TrainState.model_validate_json(path.read_text(encoding="utf-8"))


def _check_resumable(state: TrainState, env: PlanningEnv, out_dir: Path) -> None:
    if state.template_hash != env.template_hash or state.seeds != list(env.seeds):
        raise PolicyFileError(
            f"the checkpoint in {out_dir} is for template {state.template!r} "
            f"({state.template_hash}) and seeds {state.seeds[:5]}...; use another --out or the "
            "same template and seeds"
        )
    for name, digest in (
        (CHECKPOINT, state.model_sha256),
        (CHECKPOINT_BUFFER, state.buffer_sha256),
    ):
        if sha256_of(out_dir / name) != digest:
            raise PolicyFileError(
                f"refusing to resume from {out_dir / name}: its sha256 differs from "
                f"{CHECKPOINT_STATE}'s (it holds pickles); delete the checkpoint to start afresh"
            )


def train(
    template: SiteTemplate,
    session_factory: SessionFactory,
    config: TrainConfig,
    out_dir: Path,
    env_config: EnvConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> PolicyProvenance:
    """Train (or resume training) a DQN policy for ``template`` (module docstring).

    Returns
    -------
    PolicyProvenance
        The provenance written beside ``out_dir / f"{template.name}.zip"``.
    """
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(config.torch_threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    recent: deque[bool] = deque(maxlen=100)
    new_episodes: list[EpisodeRecord] = []

    def on_episode(record: EpisodeRecord) -> None:
        recent.append(record.success)
        if record.success:
            new_episodes.append(record)

    env = PlanningEnv(template, session_factory, config.seeds, env_config, on_episode=on_episode)
    state = read_state(out_dir)
    if state is not None:
        _check_resumable(state, env, out_dir)
        model = DQN.load(out_dir / CHECKPOINT, env=env, device="cpu")
        model.load_replay_buffer(out_dir / CHECKPOINT_BUFFER)
        recent.extend(state.recent_success)
        say(f"resuming at step {state.steps} ({state.episodes} episodes)")
    else:
        model = DQN(
            "MlpPolicy",
            env,
            learning_rate=config.learning_rate,
            buffer_size=config.buffer_size,
            learning_starts=config.learning_starts,
            batch_size=config.batch_size,
            gamma=config.gamma,
            train_freq=config.train_freq,
            target_update_interval=config.target_update_interval,
            exploration_fraction=config.exploration_fraction,
            exploration_final_eps=config.exploration_final_eps,
            policy_kwargs={"net_arch": list(config.net_arch)},
            seed=config.seed,
            device="cpu",
        )
    done_before = state.steps if state else 0
    episodes_before = state.episodes if state else 0
    wall_before = state.wall_time_s if state else 0.0
    cpu_before = state.cpu_time_s if state else 0.0
    c0 = time.process_time()
    runs = (state.runs if state else 0) + 1
    t0 = time.perf_counter()
    counters = {"episodes": 0}

    def save_checkpoint() -> TrainState:
        model.save(out_dir / CHECKPOINT)
        model.save_replay_buffer(out_dir / CHECKPOINT_BUFFER)
        st = TrainState(
            template=template.name,
            template_hash=env.template_hash,
            seeds=list(env.seeds),
            steps=int(model.num_timesteps),
            episodes=episodes_before + counters["episodes"],
            wall_time_s=wall_before + time.perf_counter() - t0,
            cpu_time_s=cpu_before + time.process_time() - c0,
            runs=runs,
            model_sha256=sha256_of(out_dir / CHECKPOINT),
            buffer_sha256=sha256_of(out_dir / CHECKPOINT_BUFFER),
            recent_success=list(recent),
        )
        write_text_atomic(out_dir / CHECKPOINT_STATE, st.model_dump_json(indent=2) + "\n")
        if config.episodes_path is not None and new_episodes:
            append_episodes(config.episodes_path, new_episodes)
            new_episodes.clear()
        return st

    class _Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            dones = self.locals.get("dones")
            counters["episodes"] += int(sum(bool(d) for d in dones)) if dones is not None else 0
            if self.num_timesteps % config.checkpoint_every == 0:
                st = save_checkpoint()
                rate = sum(recent) / len(recent) if recent else 0.0
                say(
                    f"step {st.steps}/{config.steps}: {st.episodes} episodes, success (last "
                    f"{len(recent)}) {rate:.2f}, {st.wall_time_s:.0f} s ({st.cpu_time_s:.0f} s CPU), "
                    f"median step {statistics.median(env.step_times_s or [0.0]) * 1000:.0f} ms"
                )
            return time.perf_counter() - t0 < config.max_wall_s

    remaining = config.steps - done_before
    if remaining > 0:
        model.learn(remaining, callback=_Checkpoints(), reset_num_timesteps=state is None)
    st = save_checkpoint()
    final = out_dir / f"{template.name}.zip"
    model.save(final)
    prov = PolicyProvenance(
        scenario=template.scenario,
        template=template.name,
        template_hash=env.template_hash,
        engine_version=_engine_version(env),
        library_versions=library_versions(),
        seeds=list(env.seeds),
        steps=st.steps,
        episodes=st.episodes,
        wall_time_s=round(st.wall_time_s, 1),
        cpu_time_s=round(st.cpu_time_s, 1),
        runs=runs,
        env=asdict(env.config),
        tpps=[t.name for t in env.tpps],
        observation_size=env.spec_obs.size,
        training_success_rate=(sum(recent) / len(recent)) if recent else None,
        sha256="0" * 64,
    )
    write_provenance(final, prov)
    say(f"policy written: {final} ({st.steps} steps, {st.wall_time_s:.0f} s)")
    return prov.model_copy(update={"sha256": sha256_of(final)})


def _engine_version(env: PlanningEnv) -> str:
    cases = list(env.cached_cases.values())
    return cases[-1].engine_version if cases else "unknown"


def training_summary(state: TrainState | None) -> dict[str, Any]:
    """A JSON-able summary of a checkpoint state (for progress reports)."""
    return {} if state is None else json.loads(state.model_dump_json())


def seeds_label(seeds: Sequence[int]) -> str:
    """``1000-1049`` for consecutive seeds, else the list."""
    s = list(seeds)
    if s and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}-{s[-1]}"
    return ",".join(str(x) for x in s)
