"""Knowledge cards of issue #14: extraction, the non-DRL prior, and the evaluation with ablations.

- ``extract``: the DRL card of a scenario from the successful *training* episodes of
  ``bench/results/drl_episodes_<scenario>.jsonl`` -> ``site_templates/knowledge/<scenario>.json``
  (the installed card of ``--policy knowledge`` and ``--policy llm --knowledge``).
- ``prior``: the non-DRL prior: the calibration search (:func:`bench.tpp_search.search`) on
  training seeds (``python -m bench.calibration --seeds 1000,...,1007 --name
  knowledge_calibration_training``), the TPP values of its optima that reached the target
  summarized as a card of the same schema (source ``calibration-search``) ->
  ``bench/results/knowledge_cards/<scenario>.calibration-search.json``.
- ``run``: on the evaluation seeds, paired on the same cases: the rule policy, the knowledge
  policy with the DRL card, with the non-DRL prior, with the shuffled card (the DRL card's
  values permuted across TPPs, seeded; the prior's when there is no DRL card) and, when it is
  installed, the DRL policy alone. Final score, fraction at the maximum, mean iterations, and
  a paired Wilcoxon signed-rank test of the iterations (knowledge vs rule). Table and
  ``bench/results/knowledge.json``.

Run: ``python -m bench.knowledge run [--scenarios prostate-basic liver] [--seeds 0-9]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from agent.cohort.seeds import EVALUATION_SEEDS, parse_seeds
from agent.policies import Policy, make_policy, register_policy
from bench.common import RESULTS_DIR, console, machine_info, print_table, write_results
from bench.freeze import stamp

SCENARIOS = ("prostate-basic", "prostate-complex", "liver")
#: Targets of issue #14 for the knowledge-guided policy: (fraction at the maximum, mean iterations).
TARGETS: dict[str, tuple[float, float]] = {
    "prostate-basic": (1.0, 3.0),
    "prostate-complex": (0.9, 5.0),
    "liver": (1.0, 3.0),
}
CARDS_DIR = RESULTS_DIR / "knowledge_cards"
CALIBRATION_RESULTS = RESULTS_DIR / "knowledge_calibration_training.json"
#: Training seeds of the non-DRL prior's search.
PRIOR_SEEDS = tuple(range(1000, 1008))
SHUFFLE_SEED = 14


def _engine() -> str:
    from mock_tps.dose_engine import ENGINE_VERSION

    return ENGINE_VERSION


def prior_path(scenario: str) -> Path:
    """Where the non-DRL prior card of ``scenario`` is written."""
    return CARDS_DIR / f"{scenario}.calibration-search.json"


def card_tpp_template(scenario: str, folder: Path) -> Path:
    """The template of ``scenario`` with TPP ranges on the card's TPPs only (written to
    ``folder``): the calibration search then moves what a card describes, nothing else."""
    from agent.policies.drl.tpps import tpps_of
    from agent.templates import load_template

    template = load_template(scenario)
    keep = {(t.objective_index, t.parameter) for t in tpps_of(template)}
    data = template.model_dump(mode="json")
    for i, objective in enumerate(data["objectives"]):
        for name in objective["range"]:
            parameter = "dose_gy" if name == "dose" else name
            if (i, parameter) not in keep:
                objective["range"][name] = None
    path = folder / f"{scenario}.card-tpps.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def search_training(scenario: str, seeds: tuple[int, ...], budget: int) -> Path:
    """The calibration search over the card's TPPs on training ``seeds``; writes
    ``bench/results/knowledge_search_<scenario>.json`` (the calibration's run format)."""
    import tempfile

    from agent.cohort.seeds import TRAINING_SEEDS
    from bench.calibration import run_seed

    foreign = [s for s in seeds if s not in TRAINING_SEEDS]
    if foreign:
        raise SystemExit(f"seeds {foreign} are not training seeds (1000-1049)")
    runs = []
    with tempfile.TemporaryDirectory(prefix="rtplan-knowledge-") as tmp:
        template_path = card_tpp_template(scenario, Path(tmp))
        for seed in seeds:
            run = run_seed(str(template_path), seed, budget)
            runs.append(run | {"template": scenario})
            console.print(
                f"{scenario} seed {seed}: {run['initial_score']:.2f} -> {run['best_score']:.2f}, "
                f"{run['evaluations']} optimizations, {run['wall_s']:.0f} s"
            )
    return write_results(
        f"knowledge_search_{scenario}",
        {
            "seeds": list(seeds),
            "budget": budget,
            "benchmark_set": stamp(),
            "note": "bench.tpp_search.search over the card's TPPs only (other ranges removed)",
            "runs": {scenario: runs},
        },
    )


def make_prior(scenario: str, results: Path | None = None) -> Path:
    """The calibration-search card of ``scenario`` from the runs in ``results`` (default:
    :func:`search_training`'s file)."""
    from pydantic import TypeAdapter

    from agent.cohort.seeds import TRAINING_SEEDS
    from agent.policies.knowledge import write_card
    from agent.policies.knowledge.extract import Origin, card_from_objective_lists
    from agent.templates import load_template, match_structures
    from esapi_bridge.dto import Objective
    from mock_tps.phantoms import make_case

    results = results or RESULTS_DIR / f"knowledge_search_{scenario}.json"
    data = json.loads(results.read_text(encoding="utf-8"))
    runs = data["runs"].get(scenario, [])
    foreign = [r["seed"] for r in runs if r["seed"] not in TRAINING_SEEDS]
    if foreign:
        raise SystemExit(f"{results}: seeds {foreign} are not training seeds (1000-1049)")
    if data["benchmark_set"]["engine_version"] != _engine():
        raise SystemExit(f"{results} was measured on another engine: re-run the calibration")
    template = load_template(scenario)
    reached = [r for r in runs if r["target_reached"]]
    if not reached:
        raise SystemExit(f"{results}: no calibration run of {scenario} reached the target")
    adapter = TypeAdapter(list[Objective])
    smap = match_structures(template, list(make_case(scenario, reached[0]["seed"]).structures))
    lists = [adapter.validate_python(r["best_objectives"]) for r in reached]
    origin = Origin(
        source="calibration-search",
        seeds=tuple(r["seed"] for r in runs),
        episodes=len(runs),
        engine_version=_engine(),
        commit=machine_info()["commit"],
        note=f"optima of the calibration search (budget {data['budget']} optimizations) that "
        "reached the target",
    )
    card = card_from_objective_lists(template, smap, lists, origin)
    return write_card(card, prior_path(scenario))


def extract(scenario: str, episodes: Path | None = None) -> Path:
    """The DRL card of ``scenario`` from its episode file, installed in site_templates."""
    from agent.policies.drl.episodes import episodes_path, read_episodes
    from agent.policies.knowledge import installed_card_path, write_card
    from agent.policies.knowledge.extract import card_from_episodes
    from agent.templates import load_template

    path = episodes or episodes_path(scenario)
    template = load_template(scenario)
    commit = machine_info()["commit"]
    card = card_from_episodes(template, read_episodes(path), _engine(), commit)
    return write_card(card, installed_card_path(scenario))


def _factories(scenario: str) -> dict[str, Callable[[], Policy]]:
    """The compared policies of ``scenario`` that can be built here (name -> factory)."""
    from agent.cli.cohort import MockCases
    from agent.policies.knowledge import (
        KnowledgePolicy,
        installed_card_path,
        read_card,
        shuffled_card,
    )

    engine = _engine()
    out: dict[str, Callable[[], Policy]] = {"rule": lambda: make_policy("rule")}
    drl_card = installed_card_path(scenario)
    has_drl_card = drl_card.is_file() and read_card(drl_card).provenance.source == "drl-episodes"
    if has_drl_card:
        out["knowledge"] = lambda: KnowledgePolicy(engine_version=engine)
    prior = prior_path(scenario)
    if prior.is_file():
        out["prior"] = lambda: KnowledgePolicy(read_card(prior), engine_version=engine)
    base = drl_card if has_drl_card else prior if prior.is_file() else None
    if base is not None:
        shuffled = shuffled_card(read_card(base), SHUFFLE_SEED)
        out["shuffled"] = lambda: KnowledgePolicy(shuffled, engine_version=engine)
    from agent.policies.drl.files import shipped_policy

    if shipped_policy(scenario).is_file():
        out["drl"] = lambda: make_policy("drl", **MockCases().policy_options("drl"))
    else:
        logger.warning(f"drl policy not compared: no trained policy at {shipped_policy(scenario)}")
    return out


def run_cases(
    scenario: str, seeds: tuple[int, ...], max_iterations: int, names: list[str] | None
) -> dict[str, list[dict[str, Any]]]:
    """Rows per policy of ``scenario`` on ``seeds`` (the cohort runner's results, planned in
    this process one after the other)."""
    from agent.cli.cohort import MockCases, result_line
    from agent.cohort.case import run_case
    from agent.cohort.models import CohortJob

    factories = _factories(scenario)
    chosen = [n for n in (names or list(factories)) if n in factories]
    rows: dict[str, list[dict[str, Any]]] = {}
    cases = MockCases()
    for name in chosen:
        register_policy(f"bench-{name}", lambda f=factories[name], **_: f())
        rows[name] = []
        for seed in seeds:
            job = CohortJob(
                scenario=scenario, seed=seed, policy=f"bench-{name}", max_iterations=max_iterations
            )
            result = run_case(job, cases)
            rows[name].append(result.model_dump(exclude={"curve", "worker"}) | {"policy": name})
            console.print(result_line(result), highlight=False)
    return rows


def paired_test(a: list[float], b: list[float]) -> dict[str, Any]:
    """Wilcoxon signed-rank test of ``a`` vs ``b`` (paired; two-sided and 'a < b')."""
    from scipy.stats import wilcoxon

    diffs = [x - y for x, y in zip(a, b, strict=True)]
    out: dict[str, Any] = {"n": len(diffs), "nonzero": sum(1 for d in diffs if d != 0)}
    if out["nonzero"] == 0:
        return out | {"p_two_sided": 1.0, "p_less": 1.0, "note": "every pair is equal"}
    out["p_two_sided"] = float(wilcoxon(a, b).pvalue)
    out["p_less"] = float(wilcoxon(a, b, alternative="less").pvalue)
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean final score, fraction at the maximum, mean iterations of one policy's rows."""
    ok = [r for r in rows if r["error"] is None]
    at_max = [r for r in ok if r["max_reached"]]
    return {
        "cases": len(rows),
        "errors": len(rows) - len(ok),
        "mean_score": statistics.fmean(r["final_score"] for r in ok) if ok else None,
        "max_score": ok[0]["max_score"] if ok else None,
        "at_max_fraction": len(at_max) / len(rows) if rows else 0.0,
        "mean_iterations": statistics.fmean(r["iterations"] for r in ok) if ok else None,
        "mean_wall_s": statistics.fmean(r["wall_s"] for r in ok) if ok else None,
    }


def _run(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds)
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    table: list[list[Any]] = []
    for scenario in args.scenarios:
        rows = run_cases(scenario, seeds, args.max_iterations, args.policies)
        summaries = {name: summarize(r) for name, r in rows.items()}
        tests: dict[str, dict[str, Any]] = {}
        for name in ("knowledge", "prior", "shuffled", "drl"):
            if name in rows and "rule" in rows:
                pairs = [
                    (k["iterations"], r["iterations"])
                    for k, r in zip(rows[name], rows["rule"], strict=True)
                    if k["error"] is None and r["error"] is None
                ]
                tests[name] = paired_test([p[0] for p in pairs], [p[1] for p in pairs])
        fraction, iterations = TARGETS[scenario]
        target = None
        if "knowledge" in summaries:
            s = summaries["knowledge"]
            target = {
                "at_max_fraction": s["at_max_fraction"] >= fraction,
                "mean_iterations": (s["mean_iterations"] or 99) <= iterations,
            }
            if scenario == "prostate-basic":
                target["fewer_than_rule"] = tests["knowledge"].get("p_less", 1.0) < 0.05
        results[scenario] = {
            "rows": rows,
            "summaries": summaries,
            "wilcoxon_iterations_vs_rule": tests,
            "targets": {"at_max_fraction": fraction, "mean_iterations": iterations},
            "knowledge_targets_met": target,
        }
        for name, s in summaries.items():
            test = tests.get(name, {})
            table.append(
                [
                    scenario,
                    name,
                    f"{s['mean_score']:.2f}/{s['max_score']:g}" if s["mean_score"] else "-",
                    f"{100 * s['at_max_fraction']:.0f} %",
                    f"{s['mean_iterations']:.1f}" if s["mean_iterations"] else "-",
                    f"{test['p_less']:.3g}" if "p_less" in test else "-",
                ]
            )
    print_table(
        f"Knowledge-guided planning, evaluation seeds {args.seeds} (paired), "
        f"{time.perf_counter() - t0:.0f} s",
        ["scenario", "policy", "mean score", "at max", "mean iterations", "p (fewer than rule)"],
        table,
    )
    path = write_results(
        args.name,
        {
            "seeds": list(seeds),
            "max_iterations": args.max_iterations,
            "shuffle_seed": SHUFFLE_SEED,
            "benchmark_set": stamp(),
            "scenarios": results,
        },
    )
    console.print(f"results: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``extract``, ``prior`` or ``run`` (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    ext = sub.add_parser("extract", help="the DRL card from the episodes (installed)")
    ext.add_argument("--scenario", required=True, choices=SCENARIOS)
    ext.add_argument("--episodes", type=Path, default=None, help="episode JSONL file")
    sea = sub.add_parser("search", help="the calibration search over the card's TPPs")
    sea.add_argument("--scenario", required=True, choices=SCENARIOS)
    sea.add_argument("--seeds", default=f"{PRIOR_SEEDS[0]}-{PRIOR_SEEDS[-1]}")
    sea.add_argument("--budget", type=int, default=60)
    pri = sub.add_parser("prior", help="the calibration-search card (non-DRL prior)")
    pri.add_argument("--scenario", required=True, choices=SCENARIOS)
    pri.add_argument("--results", type=Path, default=None, help="search or calibration results")
    run = sub.add_parser("run", help="evaluation and ablations")
    run.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    run.add_argument("--seeds", default=f"{EVALUATION_SEEDS[0]}-{EVALUATION_SEEDS[-1]}")
    run.add_argument("--max-iterations", type=int, default=20)
    run.add_argument("--policies", nargs="+", default=None, help="default: all available")
    run.add_argument("--name", default="knowledge", help="results file name")
    args = parser.parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if args.command == "extract":
        console.print(f"wrote {extract(args.scenario, args.episodes)}")
        return 0
    if args.command == "search":
        path = search_training(args.scenario, parse_seeds(args.seeds), args.budget)
        console.print(f"wrote {path}")
        return 0
    if args.command == "prior":
        console.print(f"wrote {make_prior(args.scenario, args.results)}")
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
