"""The DRL planner's environment and training: step time, memory per case, grid check, training
summary (#14, items 1-3).

- step time: the training environment (:class:`agent.cli.drl.TrainingSessionFactory`, the
  scenario's grid, 500-voxel sample, 15 warm-started optimizer iterations) takes the same
  seeded sequence of random actions in each of ``--runs`` runs; the median wall and CPU time
  of the steps that re-plan, per run, and their median over runs;
- memory: resident set size before and after opening ``--cases`` training cases (their
  dose-influence matrices stay in memory), per case; how many cases fit in the memory left;
- grid check: the template plan's score on training seeds on the planning grid (the full
  optimizer sample), with the training sample, and on a 5 mm grid (why training keeps the grid);
- training: the provenance of the trained policies (``site_templates/drl/*.json``).

Run: ``nice python -m bench.drl_train [--scenarios prostate-basic] [--runs 3] [--steps 30]``;
writes ``bench/results/drl_train.json``. Training itself: ``rtplan drl train`` (see the README).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import console, print_table, write_results
from bench.freeze import stamp

SCENARIOS = ("prostate-basic", "liver", "prostate-complex")
#: Training seeds of the measurements (never evaluation seeds).
MEASURE_SEEDS = (1000, 1001, 1002, 1003)


def _rss_mb() -> float:
    """Current resident set size (MiB) from /proc (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _available_mb() -> float:
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_steps(scenario: str, runs: int, steps: int) -> dict[str, Any]:
    """Median wall and CPU time of an environment step that re-plans (see the module docstring)."""
    from agent.cli.drl import TrainingSessionFactory
    from agent.policies.drl.env import EnvConfig, PlanningEnv
    from agent.templates import load_template

    template = load_template(scenario)
    env = PlanningEnv(template, TrainingSessionFactory(), [MEASURE_SEEDS[0]], EnvConfig())
    env.reset(seed=0)  # opens the case (matrix from the cache or built)
    per_run: list[dict[str, float]] = []
    for run in range(runs):
        env.reset(seed=run)
        env.action_space.seed(run)
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(steps):
            before = list(env._require().objectives)
            t0, c0 = time.perf_counter(), time.process_time()
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if env._require().objectives != before:  # a step that re-planned
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            if terminated or truncated:
                env.reset(seed=1000 + run)
        per_run.append({"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)})
    return {
        "runs": per_run,
        "median_wall_s": statistics.median(r["wall_s"] for r in per_run),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in per_run),
        "steps_per_run": steps,
    }


def measure_memory(scenario: str, cases: int) -> dict[str, Any]:
    """RSS per open training case (its matrix in memory) and how many fit in the memory left."""
    from agent.cli.drl import TrainingSessionFactory
    from agent.policies.drl.env import EnvConfig, PlanningEnv
    from agent.templates import load_template

    seeds = [1000 + k for k in range(cases)]
    env = PlanningEnv(
        load_template(scenario), TrainingSessionFactory(), seeds, EnvConfig(max_cached_cases=cases)
    )
    start = _rss_mb()
    for seed in seeds:
        env.reset(seed=0, options={"case_seed": seed})
    per_case = (_rss_mb() - start) / cases
    available = _available_mb()
    return {
        "cases": cases,
        "rss_per_case_mb": per_case,
        "available_mb": available,
        "cases_that_fit": int(available // per_case) if per_case > 0 else None,
    }


def grid_check(scenario: str, seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    """The template plan's score on the planning grid, with the training sample, and on 5 mm."""
    from agent.cli.drl import TrainingSessionFactory
    from agent.evaluation import evaluate_session
    from agent.templates import load_template, match_structures
    from esapi_bridge.dto import OptimizationMode, OptimizeRequest
    from mock_tps.factory import open_mock_session

    template = load_template(scenario)
    factories = {
        "planning grid, full sample": lambda s: open_mock_session(scenario, s),
        "planning grid, training sample": lambda s: TrainingSessionFactory()(scenario, s),
        "5 mm, training sample": lambda s: TrainingSessionFactory(spacing_mm=5.0)(scenario, s),
    }
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        row: dict[str, Any] = {"seed": seed}
        for label, factory in factories.items():
            session = factory(seed)
            smap = match_structures(template, session.structures())
            session.set_objectives(template.initial_objectives(smap))
            session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
            session.calculate_dose()
            rule = template.normalization_rule(smap)
            if rule is not None:
                session.normalize(rule)
            row[label] = evaluate_session(session, template, smap).score
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    from agent.policies.drl.files import SHIPPED_DIR, read_provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenarios", nargs="+", default=["prostate-basic"], choices=SCENARIOS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="random steps per run")
    parser.add_argument("--cases", type=int, default=4, help="cases opened for the memory")
    parser.add_argument("--grid-seeds", type=int, default=4, help="training seeds checked")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"config": vars(args), "benchmark_set": stamp(), "scenarios": {}}
    for scenario in args.scenarios:
        console.print(f"{scenario}: steps, memory, grid check ...")
        out["scenarios"][scenario] = {
            "step": measure_steps(scenario, args.runs, args.steps),
            "memory": measure_memory(scenario, args.cases),
            "grid_check": grid_check(scenario, MEASURE_SEEDS[: args.grid_seeds]),
        }
    trained = {}
    for path in sorted(Path(SHIPPED_DIR).glob("*.zip")):
        prov = read_provenance(path)
        trained[prov.template] = prov.model_dump(mode="json")
    out["trained"] = trained
    print_table(
        "DRL environment: step (median of runs), memory per training case",
        ["scenario", "step wall s", "step CPU s", "runs", "RSS/case MB", "cases fit"],
        [
            [
                s, f"{v['step']['median_wall_s']:.3f}", f"{v['step']['median_cpu_s']:.3f}",
                len(v["step"]["runs"]), f"{v['memory']['rss_per_case_mb']:.0f}",
                v["memory"]["cases_that_fit"],
            ]
            for s, v in out["scenarios"].items()
        ],
    )  # fmt: skip
    for s, v in out["scenarios"].items():
        labels = [k for k in v["grid_check"][0] if k != "seed"]
        print_table(
            f"{s}: template-plan score by grid (training seeds)",
            ["seed", *labels],
            [[r["seed"], *(f"{r[k]:.2f}" for k in labels)] for r in v["grid_check"]],
        )
    print_table(
        "trained policies",
        ["template", "steps", "episodes", "runs", "wall s", "CPU s", "success (last 100)", "sha256"],
        [
            [
                t, p["steps"], p["episodes"], p["runs"], f"{p['wall_time_s']:.0f}",
                f"{p.get('cpu_time_s', 0.0):.0f}", f"{p['training_success_rate'] or 0.0:.2f}",
                p["sha256"][:12],
            ]
            for t, p in trained.items()
        ],
    )  # fmt: skip
    path = write_results("drl_train", out)
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
