"""``rtplan drl train``: train the DRL planner on the simulated TPS (the composition root of
:mod:`agent.policies.drl`: it builds the training sessions, the environment never imports a
TPS backend).

Training sessions run on the planning grid (the scenario's own, 3 mm for prostate) with a
smaller voxel sample for the optimizer (:class:`TrainingSessionFactory`: at most 500 voxels per
organ) and a few warm-started optimizer iterations per step. A coarser grid is faster but
changes the plans it scores: on prostate-basic the template plan scores 0.9-3.3 points more on
a 5 mm or 4 mm grid than on 3 mm, while the 500-voxel sample on 3 mm gives the full-grid scores
within 0.07 (``python -m bench.drl_train``, its grid check). The policy is
evaluated on the full grid in the planning loop (``rtplan plan --policy drl``,
``python -m bench.drl_eval``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.app_base import Command, Group
from agent.cli.console import console, esc
from agent.cli.errors import fail
from esapi_bridge.port import TpsSession

drl_app = typer.Typer(
    name="drl",
    help="Train the DRL virtual planner (issue #14) on the simulated TPS.",
    no_args_is_help=True,
    cls=Group,
)


@dataclass(frozen=True)
class TrainingSessionFactory:
    """``(scenario, seed) -> TpsSession`` on a training grid (picklable for worker processes).

    Attributes
    ----------
    spacing_mm : dose grid spacing (``None``: the scenario's own, as planning uses).
    max_rows_per_structure, min_rows_per_structure, max_nto_rows, min_nto_rows,
    max_sampled_nonzeros : the optimizer's voxel sampling (:class:`mock_tps.optimizer.OptimizerSettings`).
    cache_dir : the dose-influence cache (default ``$RTPLAN_CACHE_DIR`` or ~/.cache/rtplan).
    """

    spacing_mm: float | None = None
    max_rows_per_structure: int = 500
    min_rows_per_structure: int = 300
    max_nto_rows: int = 1000
    min_nto_rows: int = 500
    max_sampled_nonzeros: int = 100_000
    cache_dir: Path | None = None

    @property
    def label(self) -> str:
        """A short description of the grid, recorded in episodes and provenance."""
        grid = "default grid" if self.spacing_mm is None else f"{self.spacing_mm:g} mm"
        return f"{grid}, <= {self.max_rows_per_structure} voxels per organ"

    def __call__(self, scenario: str, seed: int) -> TpsSession:
        from mock_tps.optimizer import OptimizerSettings
        from mock_tps.phantoms import make_case
        from mock_tps.session import MockTpsSession

        settings = OptimizerSettings(
            max_rows_per_structure=self.max_rows_per_structure,
            min_rows_per_structure=self.min_rows_per_structure,
            max_nto_rows=self.max_nto_rows,
            min_nto_rows=self.min_nto_rows,
            max_sampled_nonzeros=self.max_sampled_nonzeros,
        )
        case = (
            make_case(scenario, seed)
            if self.spacing_mm is None
            else make_case(scenario, seed, spacing_mm=self.spacing_mm)
        )
        return MockTpsSession(case, optimizer_settings=settings, cache_dir=self.cache_dir)


def full_grid_factory(scenario: str, seed: int) -> TpsSession:
    """``(scenario, seed) -> TpsSession`` as ``rtplan plan`` opens it (the full grid)."""
    from mock_tps.factory import open_mock_session

    return open_mock_session(scenario, seed)


@drl_app.command("train", cls=Command)
def train_command(
    scenario: Annotated[str, typer.Option(help="Template / scenario, e.g. prostate-basic.")],
    out: Annotated[Path, typer.Option(help="Folder of the checkpoint and the trained policy.")],
    steps: Annotated[int, typer.Option(min=1, help="Environment steps in total.")] = 12_000,
    seeds: Annotated[
        str, typer.Option(help="Training case seeds, e.g. 1000-1049 (never evaluation seeds).")
    ] = "1000-1049",
    max_minutes: Annotated[
        float, typer.Option(min=0.1, help="Stop this run after this many minutes.")
    ] = 30.0,
    spacing_mm: Annotated[
        float | None, typer.Option(help="Training dose grid spacing (default: the scenario's).")
    ] = None,
    step_iterations: Annotated[
        int, typer.Option(min=1, help="Optimizer iterations per step (warm start).")
    ] = 15,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Steps between checkpoints.")] = 1000,
    episodes: Annotated[
        Path | None, typer.Option(help="Append successful episodes here (JSON lines).")
    ] = None,
    max_cached_cases: Annotated[
        int, typer.Option(min=1, help="Cases kept in memory (about 60 MB each on 3 mm).")
    ] = 20,
) -> None:
    """Train (or resume from the checkpoint in --out) a DQN policy for a scenario."""
    from agent.cohort.seeds import EVALUATION_SEEDS, parse_seeds
    from agent.policies.drl.env import EnvConfig
    from agent.policies.drl.files import PolicyFileError
    from agent.policies.drl.trainer import TrainConfig, train
    from agent.templates import TemplateError, load_template

    try:
        template = load_template(scenario)
        seed_list = list(parse_seeds(seeds))
    except (TemplateError, ValueError) as exc:
        raise fail(exc) from exc
    shared = sorted(set(seed_list) & set(EVALUATION_SEEDS))
    if shared:
        raise fail(f"seeds {shared} are evaluation seeds: train on others (e.g. 1000-1049)")
    factory = TrainingSessionFactory(spacing_mm=spacing_mm)
    config = TrainConfig(
        steps=steps,
        seeds=seed_list,
        max_wall_s=max_minutes * 60.0,
        checkpoint_every=checkpoint_every,
        episodes_path=episodes,
    )
    try:
        prov = train(
            template,
            factory,
            config,
            out,
            EnvConfig(
                grid=factory.label,
                step_iterations=step_iterations,
                max_cached_cases=max_cached_cases,
            ),
            progress=lambda msg: console.print(esc(msg), highlight=False),
        )
    except PolicyFileError as exc:
        raise fail(exc) from exc
    console.print(
        f"trained {esc(prov.template)}: {prov.steps} steps, {prov.wall_time_s:.0f} s, "
        f"sha256 {prov.sha256[:16]}...",
        highlight=False,
    )
