"""The LLM planner with a real provider on the simulated TPS (opt-in; needs a key or a local
server). Not run by ``make bench``: these machines have no network and no model weights, so
its figures are "not measured here".

Run: ``python -m bench.llm_live --scenario prostate-basic --seeds 5 [--provider
openai-compatible --base-url URL] [--model NAME] [--lookahead 2] [--allow-cloud]``; writes
``bench/results/llm_live.json`` (score, iterations, calls, format errors, tokens, cost per case).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.policies.llm.providers.base import ProviderSettings
from agent.policies.llm.settings import LlmSettings
from agent.policies.llm.wiring import recording_policy
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig
from agent.templates import load_template
from bench.common import print_table, write_results
from mock_tps.factory import open_mock_session


def run_case(
    scenario: str, seed: int, settings: LlmSettings, lookahead: int, out: Path
) -> dict[str, Any]:
    """One LLM session; its journal and recorded exchanges stay in ``out``."""
    t0 = time.perf_counter()
    policy = recording_policy(settings, out)
    config = SessionConfig(
        scenario=scenario, seed=seed, template=scenario, policy="llm", lookahead_trials=lookahead
    )
    summary = PlanningLoop(
        open_mock_session(scenario, seed), load_template(scenario), policy, config, out,
        case_label=f"{scenario}/seed{seed}", save_snapshots=False,
    ).run()  # fmt: skip
    calls = summary.model_calls
    final = summary.final_evaluation
    return {
        "scenario": scenario,
        "seed": seed,
        "final_score": None if final is None else final.score,
        "all_priority1_met": None if final is None else final.all_priority1_met,
        "iterations": summary.iterations,
        "stop_reason": summary.stop_reason.value,
        "model_calls": None
        if calls is None
        else calls.model_dump(mode="json", exclude={"exchanges"}),
        "wall_s": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the sessions, print the table, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", default="prostate-basic")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--provider", default="anthropic", choices=["anthropic", "openai-compatible"]
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--lookahead", type=int, default=2)
    parser.add_argument("--allow-cloud", action="store_true")
    args = parser.parse_args(argv)
    settings = LlmSettings(
        provider=ProviderSettings(
            provider=args.provider,
            model=args.model,
            base_url=args.base_url,
            allow_cloud=args.allow_cloud,
        )
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="llm-live-") as tmp:
        for seed in range(args.seeds):
            rows.append(
                run_case(args.scenario, seed, settings, args.lookahead, Path(tmp) / f"s{seed}")
            )
    print_table(
        f"LLM planner, {args.provider}, {args.scenario}",
        ["seed", "final score", "iterations", "calls", "format errors", "stop"],
        [
            [str(r["seed"]), str(r["final_score"]), str(r["iterations"]),
             str((r["model_calls"] or {}).get("calls")), str((r["model_calls"] or {}).get("format_errors")),
             r["stop_reason"]]
            for r in rows
        ],
    )  # fmt: skip
    write_results("llm_live", {"settings": settings.model_dump(mode="json"), "cases": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
