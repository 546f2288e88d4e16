"""Ray parity: a cohort through a local Ray instance gives the local pool's results.

The same cohort (default: the rule policy on prostate-basic, liver and prostate-complex,
evaluation seeds 0-9: 30 cases) runs on the spawned local pool and on a new Ray instance on
this machine (``address="local"``, no dashboard); every case's outcome (scores, iterations,
inner optimizations to the best plan, stop reason, best-so-far curve; everything but wall
time and the worker's report) must be identical. Target (issue #15): identical on all cases.

Run: ``python -m bench.ray_parity [--scenarios ...] [--seeds 0-9] [--policies rule]
[--workers 2] [--spacing-mm 5]``. Writes ``bench/results/ray_parity.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from agent.cli.cohort import MockCases
from agent.cohort import CohortSpec, LocalExecutor, RayExecutor, run_cohort
from agent.cohort.seeds import EVALUATION_SEEDS, parse_seeds
from bench.common import print_table, write_results
from bench.freeze import stamp

DEFAULT_SCENARIOS = ("prostate-basic", "liver", "prostate-complex")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS))
    seeds_text = f"{EVALUATION_SEEDS[0]}-{EVALUATION_SEEDS[-1]}"
    parser.add_argument("--seeds", default=seeds_text, help=f"seeds (default {seeds_text})")
    parser.add_argument("--policies", default="rule", help="comma-separated policies")
    parser.add_argument("--workers", type=int, default=2, help="processes / Ray CPUs")
    parser.add_argument("--max-iterations", type=int, default=20)
    parser.add_argument("--bo-budget", type=int, default=100)
    parser.add_argument(
        "--spacing-mm", type=float, default=5.0, help="dose grid (mm; parity, not plan quality)"
    )
    args = parser.parse_args(argv)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    spec = CohortSpec(
        scenarios=args.scenarios,
        policies=[p for p in args.policies.split(",") if p],
        seeds=list(parse_seeds(args.seeds)),
        max_iterations=args.max_iterations,
        bo_budget=args.bo_budget,
        spacing_mm=args.spacing_mm,
    )
    runs = {}
    for name, executor in (
        ("local", LocalExecutor(args.workers)),
        ("ray", RayExecutor("local", workers=args.workers)),
    ):
        t0 = time.perf_counter()
        runs[name] = (run_cohort(spec, MockCases(), executor), time.perf_counter() - t0)
    local, ray = runs["local"][0], runs["ray"][0]
    pairs = list(zip(local.results, ray.results, strict=True))
    same = [a.outcome() == b.outcome() for a, b in pairs]
    errors = sum(r.error is not None for r in local.results + ray.results)
    print_table(
        "Ray parity: local pool vs local Ray instance",
        ["scenario", "seed", "policy", "score local", "score ray", "opt to best", "identical"],
        [
            [a.scenario, a.seed, a.policy, a.final_score, b.final_score,
             a.inner_optimizations_to_best, ok]
            for (a, b), ok in zip(pairs, same, strict=True)
        ],
    )  # fmt: skip
    passed = all(same) and errors == 0
    print_table(
        "Ray parity: summary",
        ["cases", "identical", "errors", "local s", "ray s", "target"],
        [[len(pairs), sum(same), errors, runs["local"][1], runs["ray"][1],
          "PASS" if passed else "FAIL"]],
    )  # fmt: skip
    path = write_results(
        "ray_parity",
        {
            "config": vars(args),
            "benchmark_set": stamp(),
            "cases": len(pairs),
            "identical": sum(same),
            "errors": errors,
            "passed": passed,
            "wall_s": {name: wall for name, (_, wall) in runs.items()},
            "workers": {"local": local.driver.model_dump(), "ray": ray.driver.model_dump()},
            "differences": [
                {"local": a.outcome(), "ray": b.outcome()}
                for (a, b), ok in zip(pairs, same, strict=True)
                if not ok
            ],
            "results": [r.model_dump(exclude={"worker"}) for r in local.results],
        },
    )
    print(f"results: {path}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
