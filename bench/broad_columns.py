"""What the coarse broad columns cost: DVH metrics with 2 x 2-beamlet columns against one per beamlet.

The broad part of the kernel (scatter, head scatter, contamination) is stored as a dense
nodes x columns block; with ``broad_column_mm`` = 10 mm a column is a square of 2 x 2 beamlets of
5 mm (a beamlet's broad dose moves by at most 2.5 mm; its primary is exact), which makes the
block and every optimizer product four times smaller. This bench optimizes prostate-basic
(seed 0) with the default engine, then computes the dose of the same weights with one column per
beamlet (``broad_column_mm`` = 0) and reports, per structure, the largest voxel difference and the
differences of Dmean, D2 %, D50 % and D98 % (Gy and % of the prescription), plus both operators'
sizes and optimization times. Writes ``bench/results/broad_columns.json``.

Run: ``python -m bench.broad_columns`` (about a minute).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import console, print_table, write_results

SCENARIO = "prostate-basic"


def _metrics(dose: np.ndarray) -> dict[str, float]:
    d = np.sort(dose)[::-1]
    n = d.size

    def at(pct: float) -> float:
        return float(d[min(n - 1, max(0, int(np.ceil(pct / 100.0 * n)) - 1))])

    return {"Dmean": float(dose.mean()), "D2": at(2.0), "D50": at(50.0), "D98": at(98.0)}


def run() -> dict[str, Any]:
    """Optimize with the default engine; compare its dose with one-column-per-beamlet's."""
    from agent.templates import load_template, match_structures
    from bench.inner_loop import _in_tension
    from esapi_bridge.dto import OptimizationMode, OptimizeRequest
    from mock_tps.dose_engine import EngineParams, compute_dose_influence
    from mock_tps.phantoms import make_case
    from mock_tps.session import MockTpsSession

    case = make_case(SCENARIO, 0)
    template = load_template(SCENARIO)
    smap = match_structures(template, list(case.structures))
    targets = set(case.prescription.target_levels_gy)
    objectives = _in_tension(template.initial_objectives(smap), targets)
    rx = float(case.prescription.total_dose_gy)
    out: dict[str, Any] = {"scenario": SCENARIO, "prescription_gy": rx, "engines": {}}
    doses = {}
    weights = None
    for name, params in (
        ("2x2 columns (default)", EngineParams()),
        ("1 column per beamlet", replace(EngineParams(), broad_column_mm=0.0)),
    ):
        dij = compute_dose_influence(case, params)
        session = MockTpsSession(case, objectives, dose_influence=dij)
        t0 = time.perf_counter()
        result = session.optimize(OptimizeRequest(mode=OptimizationMode.RESTART))
        opt_s = time.perf_counter() - t0
        if weights is None:
            weights = session._weights  # the bench reads the fluence
        assert dij.broad is not None
        out["engines"][name] = {
            "broad_shape": list(dij.broad.values.shape),
            "full_opt_s": opt_s,
            "iterations": result.iterations,
        }
        doses[name] = dij.dose_grid(weights)
    a, b = doses["2x2 columns (default)"], doses["1 column per beamlet"]
    rows: list[dict[str, Any]] = []
    for sid, structure in case.structures.items():
        mask = structure.mask
        if not mask.any():
            continue
        ma, mb = _metrics(a[mask]), _metrics(b[mask])
        row: dict[str, Any] = {
            "structure": sid,
            "voxels": int(mask.sum()),
            "max_voxel_diff_pct_rx": float(np.abs(a[mask] - b[mask]).max()) / rx * 100.0,
        }
        for key in ma:
            row[f"{key}_diff_gy"] = ma[key] - mb[key]
        rows.append(row)
    out["structures"] = rows
    out["worst_metric_diff_pct_rx"] = max(
        abs(r[k]) / rx * 100.0 for r in rows for k in r if k.endswith("_diff_gy")
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the table, write ``bench/results/broad_columns.json``."""
    del argv
    out = run()
    print_table(
        f"{SCENARIO}: dose of the same weights, 2x2-beamlet broad columns minus one per beamlet",
        [
            "structure",
            "voxels",
            "max voxel (% Rx)",
            "Dmean (Gy)",
            "D2 (Gy)",
            "D50 (Gy)",
            "D98 (Gy)",
        ],
        [
            [
                r["structure"],
                r["voxels"],
                f"{r['max_voxel_diff_pct_rx']:.2f}",
                *(f"{r[f'{k}_diff_gy']:+.3f}" for k in ("Dmean", "D2", "D50", "D98")),
            ]
            for r in out["structures"]
        ],
    )
    for name, e in out["engines"].items():
        console.print(
            f"{name}: broad block {e['broad_shape'][0]:,} x {e['broad_shape'][1]:,}, "
            f"full optimization {e['full_opt_s']:.2f} s ({e['iterations']} it)"
        )
    console.print(f"largest DVH-metric difference: {out['worst_metric_diff_pct_rx']:.2f} % of Rx")
    path = write_results("broad_columns", out)
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
