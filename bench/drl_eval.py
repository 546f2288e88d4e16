"""DRL policy alone on the evaluation seeds, in the real planning loop on the full grid (#14, item 4).

For each scenario with a trained policy (``site_templates/drl/<scenario>.zip``, or ``--policy-dir``)
and each evaluation seed (:data:`agent.cohort.seeds.EVALUATION_SEEDS`, never trained on): the
planning loop with ``--policy drl`` from the template plan, at most ``--max-iterations``
iterations. Reported per case: initial and final score, whether the maximum was reached,
iterations, wall time; per scenario: mean score, fraction at the maximum, mean iterations.
Every session is also written as an episode record (``source="eval"``) to
``bench/results/drl_episodes_<scenario>.jsonl`` with ``--episodes``.

Run: ``nice python -m bench.drl_eval [--scenarios prostate-basic] [--seeds 0-9]
[--max-iterations 20] [--episodes]``; writes ``bench/results/drl_eval.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import console, print_table, write_results
from bench.freeze import stamp

SCENARIOS = ("prostate-basic", "prostate-complex", "liver")


def run_case(
    scenario: str, seed: int, max_iterations: int, policy_path: Path, episodes: Path | None
) -> dict[str, Any]:
    """Plan one case with the DRL policy; its row (errors are reported in the row)."""
    from agent.policies.drl import DrlPolicy
    from agent.policies.drl.episodes import append_episodes, episode_from_iterations, is_success
    from agent.policies.drl.tpps import tpps_of
    from agent.session.identity import template_hash
    from agent.session.loop import PlanningLoop
    from agent.session.records import IterationRecord, SessionConfig
    from agent.templates import load_template, match_structures
    from mock_tps.dose_engine import ENGINE_VERSION
    from mock_tps.factory import open_mock_session

    row: dict[str, Any] = {"scenario": scenario, "seed": seed}
    t0 = time.perf_counter()
    template = load_template(scenario)
    records: list[IterationRecord] = []
    try:
        session = open_mock_session(scenario, seed)
        config = SessionConfig(
            scenario=scenario,
            seed=seed,
            template=scenario,
            policy="drl",
            max_iterations=max_iterations,
        )
        with tempfile.TemporaryDirectory(prefix="rtplan-drl-eval-") as tmp:
            summary = PlanningLoop(
                session,
                template,
                DrlPolicy(policy_path),
                config,
                Path(tmp) / "session",
                on_iteration=records.append,
                save_snapshots=False,
                case_label=f"{scenario}/seed{seed}",
            ).run()
    except Exception as exc:  # a benchmark row, not a crash of the whole run
        row.update(error=f"{type(exc).__name__}: {exc}", wall_s=time.perf_counter() - t0)
        return row
    first, last = summary.initial_evaluation, summary.final_evaluation
    max_score = None if last is None else last.max_score
    final = None if last is None else last.score
    row.update(
        initial_score=None if first is None else first.score,
        final_score=final,
        max_score=max_score,
        at_max=bool(final is not None and max_score and is_success(final, max_score)),
        iterations=summary.iterations,
        best_iteration=summary.best_iteration,
        stop_reason=summary.stop_reason.value,
        wall_s=time.perf_counter() - t0,
    )
    if episodes is not None and records:
        smap = match_structures(template, session.structures())
        record = episode_from_iterations(
            records,
            tpps_of(template),
            smap,
            scenario=scenario,
            seed=seed,
            template_hash=template_hash(template),
            engine_version=ENGINE_VERSION,
        )
        append_episodes(episodes, [record])
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean score, fraction at the maximum, mean iterations of one scenario's rows."""
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return {"cases": len(rows), "errors": len(rows)}
    return {
        "cases": len(rows),
        "errors": len(rows) - len(ok),
        "mean_initial_score": statistics.fmean(r["initial_score"] for r in ok),
        "mean_score": statistics.fmean(r["final_score"] for r in ok),
        "max_score": ok[0]["max_score"],
        "full_score_fraction": sum(r["at_max"] for r in ok) / len(rows),
        "mean_iterations": statistics.fmean(r["iterations"] for r in ok),
        "mean_wall_s": statistics.fmean(r["wall_s"] for r in ok),
    }


def main(argv: list[str] | None = None) -> int:
    from agent.cohort.seeds import EVALUATION_SEEDS, parse_seeds
    from agent.policies.drl.episodes import episodes_path
    from agent.policies.drl.files import SHIPPED_DIR, read_provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--seeds", default=",".join(str(s) for s in EVALUATION_SEEDS))
    parser.add_argument("--max-iterations", type=int, default=20)
    parser.add_argument("--policy-dir", type=Path, default=SHIPPED_DIR)
    parser.add_argument("--episodes", action="store_true", help="append eval episode records")
    parser.add_argument("--name", default="drl_eval", help="results file name")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    rows: list[dict[str, Any]] = []
    policies: dict[str, Any] = {}
    for scenario in args.scenarios:
        path = args.policy_dir / f"{scenario}.zip"
        if not path.is_file():
            console.print(f"{scenario}: no trained policy at {path}; skipped")
            continue
        policies[scenario] = read_provenance(path).model_dump(mode="json")
        target = episodes_path(scenario) if args.episodes else None
        for seed in seeds:
            row = run_case(scenario, seed, args.max_iterations, path, target)
            rows.append(row)
            console.print(
                f"{scenario} seed {seed}: "
                + (
                    row.get("error")
                    or f"{row['initial_score']:.2f} -> {row['final_score']:.2f}, "
                    f"{row['iterations']} it, {row['wall_s']:.0f} s, {row['stop_reason']}"
                )
            )
    summaries = {s: summarize([r for r in rows if r["scenario"] == s]) for s in policies}
    print_table(
        f"DRL policy alone, full grid, evaluation seeds {args.seeds}",
        ["scenario", "cases", "score 0", "score", "max", "at max", "iterations", "wall s"],
        [
            [
                s, v["cases"], f"{v.get('mean_initial_score', float('nan')):.2f}",
                f"{v.get('mean_score', float('nan')):.2f}", v.get("max_score"),
                f"{v.get('full_score_fraction', 0.0):.0%}",
                f"{v.get('mean_iterations', float('nan')):.1f}",
                f"{v.get('mean_wall_s', float('nan')):.0f}",
            ]
            for s, v in summaries.items()
        ],
    )  # fmt: skip
    path = write_results(
        args.name,
        {
            "config": {**vars(args), "policy_dir": str(args.policy_dir), "seeds": list(seeds)},
            "benchmark_set": stamp(),
            "policies": policies,
            "scenarios": summaries,
            "cases": rows,
        },
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
