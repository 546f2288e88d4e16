"""OpenKBP patients: the agent's plan beside the delivered clinical plan, per criterion.

For every patient folder given (default ``../shared/data/openkbp``: a folder of patient
folders, or patient folders themselves), the rule policy plans the patient with its
OpenKBP template (``head-and-neck-openkbp``, ``-3level`` with a PTV63), then the clinical
plan is set beside it (:func:`agent.cli.openkbp_reference.clinical_reference`): OpenKBP's
criteria (targets D99/D95/D1, organs D0.1cc/mean; OpenKBP's definitions) of the agent plan
and of the clinical plan rescaled to the agent's PTV70 D95, with the direction of "better"
and the tie tolerance of each criterion; priority-1 goals met; iterations; wall time, cold
(a fresh dose-influence cache) and warm (the same patient again on that cache).

Patients are named ``patient 1..n`` in the order given with the first 8 hex digits of their
files' sha256: no folder name reaches the table or the JSON. This comparison is reported,
not a pass/fail target; the clinical dose came from a clinical TPS, ours from our engine,
and our fluence has no leaf sequencing or MU limit (the MU proxy stands beside it).

Run: ``python -m bench.openkbp [FOLDER ...] [--max-iterations 20] [--no-warm]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import console, print_table, write_results

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "openkbp"


def patient_folders(paths: list[Path]) -> list[Path]:
    """Patient folders (holding ``ct.csv`` or ``ct.csv.gz``): the paths, or their subfolders."""

    def is_patient(p: Path) -> bool:
        return (p / "ct.csv").is_file() or (p / "ct.csv.gz").is_file()

    out: list[Path] = []
    for path in paths:
        if is_patient(path):
            out.append(path)
        elif path.is_dir():
            out += sorted((p for p in path.iterdir() if p.is_dir() and is_patient(p)), key=_key)
    return out


def _key(path: Path) -> tuple[int, str]:
    digits = "".join(c for c in path.name if c.isdigit())
    return (int(digits) if digits else 0, path.name)


def plan_patient(
    folder: Path, max_iterations: int, policy: str, cache_dir: Path
) -> tuple[dict[str, Any], Any]:
    """Plan one patient; its row (wall time, goals, iterations) and its clinical reference."""
    from agent.cli.case_source import choose_case
    from agent.cli.openkbp_reference import clinical_reference
    from agent.policies import make_policy
    from agent.session.loop import PlanningLoop
    from agent.session.records import SessionConfig
    from agent.templates import match_structures
    from mock_tps.factory import open_mock_session

    t0 = time.perf_counter()
    choice = choose_case(openkbp=folder)
    session = open_mock_session("openkbp", openkbp_dir=folder, cache_dir=cache_dir)
    config = SessionConfig(
        scenario="openkbp",
        template=choice.template.name,
        policy=policy,
        max_iterations=max_iterations,
    )
    with tempfile.TemporaryDirectory(prefix="rtplan-openkbp-") as tmp:
        loop = PlanningLoop(
            session, choice.template, make_policy(policy), config, Path(tmp) / "session",
            save_snapshots=False,
        )  # fmt: skip
        summary = loop.run()
    wall_s = time.perf_counter() - t0
    final = summary.final_evaluation
    reference = None
    if final is not None:
        structure_map = match_structures(choice.template, session.structures())
        reference = clinical_reference(session, folder, choice.template, structure_map)
    row: dict[str, Any] = {
        "template": choice.template.name,
        "stop_reason": summary.stop_reason.value,
        "iterations": summary.iterations,
        "wall_s": wall_s,
        "p1_met": bool(final and final.all_priority1_met),
        "p1_failed": [] if final is None else [g.goal_id for g in final.failed_goals(1)],
        "goals_met": None if final is None else sum(g.status.value == "met" for g in final.goals),
        "goals": None if final is None else len(final.goals),
        "not_applicable": [] if final is None else final.skipped_goals,
    }
    return row, reference


def _p1(ev: Any) -> str:
    p1 = [g for g in ev.goals if g.priority == 1]
    return f"{sum(g.status.value == 'met' for g in p1)}/{len(p1)}"


def main(argv: list[str] | None = None) -> int:
    """Plan every patient, print the tables, write ``bench/results/openkbp.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folders", nargs="*", type=Path, help=f"default: {DEFAULT_DATA}")
    parser.add_argument("--max-iterations", type=int, default=20)
    parser.add_argument("--policy", default="rule")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-cache re-run")
    args = parser.parse_args(argv)
    paths = args.folders or [DEFAULT_DATA]
    folders = patient_folders(paths)
    if not folders:
        console.print(
            "no OpenKBP patient folder found (a folder holding ct.csv, or a folder of them) "
            f"in: {', '.join(map(str, paths))}. Give patient folders as arguments, or put the "
            "OpenKBP patients (the OpenKBP repository's provided-data/train-pats/) at "
            f"{DEFAULT_DATA}",
            highlight=False,
        )
        return 2
    from mock_tps.openkbp import content_hash

    patients: list[dict[str, Any]] = []
    criteria_rows: list[list[Any]] = []
    tally: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="rtplan-openkbp-cache-") as cache:
        for i, folder in enumerate(folders, start=1):
            name = f"patient {i} ({content_hash(folder)[:8]})"
            row, ref = plan_patient(folder, args.max_iterations, args.policy, Path(cache))
            row = {"patient": name, **row}
            if not args.no_warm:
                warm, _ = plan_patient(folder, args.max_iterations, args.policy, Path(cache))
                row["warm_wall_s"] = warm["wall_s"]
            if ref is not None:
                row.update(
                    clinical_ptv70_d95_gy=ref.clinical_ptv70_d95_gy,
                    rescale_factor=ref.rescale_factor,
                    clinical_p1_delivered=_p1(ref.delivered),
                    clinical_p1_rescaled=_p1(ref.rescaled),
                    agent_mu_proxy=ref.agent_mu_proxy,
                    ct_capped_voxels=ref.ct_capped_voxels,
                    ct_max_hu=ref.ct_max_hu,
                    criteria=[c.model_dump() for c in ref.criteria],
                )
                for c in ref.criteria:
                    criteria_rows.append(
                        [name, c.structure_id, c.metric, c.better, c.tie_gy, c.agent_gy,
                         c.clinical_rescaled_gy, c.clinical_gy, c.verdict,
                         round(c.outside_dose_region_pct)]
                    )  # fmt: skip
                    key = f"{'PTV' if c.structure_id.startswith('PTV') else 'organ'} {c.metric}"
                    tally.setdefault(key, Counter())[c.verdict] += 1
            patients.append(row)
            console.print(f"{name}: done in {row['wall_s']:.1f} s", highlight=False)
    print_table(
        "OpenKBP patients: agent (rule policy) vs clinical",
        ["patient", "template", "P1 met", "P1 failed", "goals met", "n/a", "iter", "wall s",
         "warm s", "MU proxy", "clin. D95 Gy", "clin. P1 (deliv./rescaled)"],
        [[p["patient"], p["template"].removeprefix("head-and-neck-"), p["p1_met"],
          ", ".join(p["p1_failed"]) or "-", f"{p['goals_met']}/{p['goals']}",
          len(p["not_applicable"]), p["iterations"], p["wall_s"], p.get("warm_wall_s", "-"),
          p.get("agent_mu_proxy", "-"), p.get("clinical_ptv70_d95_gy", "-"),
          f"{p.get('clinical_p1_delivered', '-')} / {p.get('clinical_p1_rescaled', '-')}"]
         for p in patients],
    )  # fmt: skip
    print_table(
        "OpenKBP criteria per patient (Gy; clinical rescaled to the agent's PTV70 D95)",
        ["patient", "structure", "criterion", "better", "tie Gy", "agent", "clinical resc.",
         "clinical deliv.", "verdict", "outside %"],
        criteria_rows,
    )  # fmt: skip
    print_table(
        "Verdicts per criterion (agent vs clinical rescaled)",
        ["criterion", "agent better", "clinical better", "tie"],
        [[k, v["agent"], v["clinical"], v["tie"]] for k, v in sorted(tally.items())],
    )
    met = sum(p["p1_met"] for p in patients)
    console.print(f"priority-1 goals met on {met}/{len(patients)} patients", highlight=False)
    path = write_results(
        "openkbp",
        {
            "policy": args.policy,
            "max_iterations": args.max_iterations,
            "p1_met_patients": met,
            "patients_planned": len(patients),
            "verdicts": {k: dict(v) for k, v in sorted(tally.items())},
            "patients": patients,
            "note": "clinical dose from a clinical TPS, ours from our pencil-beam engine; "
            "our fluence has no leaf sequencing or MU limit; OpenKBP's criteria count both "
            "doses as 0 outside OpenKBP's possible-dose region (outside_dose_region_pct)",
        },
    )
    console.print(f"wrote {path}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
