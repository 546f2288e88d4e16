"""The fit check: the 6 MV kernel against the measured TrueBeam 6X data it was not fitted on.

Prints and writes (``bench/results/beam_check.json``) every quantity of issue #9's physics
targets (the same definitions as ``tests/test_beam_model.py``, which asserts them) and the
issue's before/after table, with the tolerance and whether it is met. The fitted fields are the
4 x 4, 10 x 10 and 30 x 30 cm ones (``bench/fit_beam.py``); these are 3, 6, 20 and 40 cm and the
rectangular output factors, plus the figures of the issue's table (10 x 10 included, marked).

Run: ``python -m bench.beam_check`` (a few seconds).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from bench.common import console, print_table, write_results
from mock_tps.beam_data import (
    OUTSIDE_CM,
    PROFILE_FIELDS_CM,
    TEST_DEPTHS_CM,
    TEST_FIELDS_CM,
    dta_failures,
    field_edge_mm,
    load_measured,
    model_depth_dose,
    model_output,
    model_pdd,
    model_profile,
    peak,
    penumbra_80_20_mm,
)
from mock_tps.engine_params import EngineParams


def _measured_output(u_cm: int, v_cm: int) -> float:
    m = load_measured()
    if (u_cm, v_cm) == (6, 6):  # no 6 x 6 in the table: the mean of 5 x 5 and 7 x 7
        return 0.5 * (m.output(5, 5) + m.output(7, 7))
    return m.output(u_cm, v_cm)


def _row(name: str, measured: float, model: float, error: float, tol: float) -> dict[str, Any]:
    return {
        "quantity": name,
        "measured": measured,
        "model": model,
        "error": error,
        "tolerance": tol,
        "ok": bool(abs(error) <= tol),
    }


def depth_dose_rows(p: EngineParams) -> list[dict[str, Any]]:
    """PDD at 5/10/20 cm (1.5 points) and depth of maximum (3 mm) of the test fields."""
    m = load_measured()
    out = []
    for side in TEST_FIELDS_CM:
        for depth_cm in TEST_DEPTHS_CM:
            model = float(model_pdd(side, np.array([10.0 * depth_cm]), p)[0])
            meas = m.pdd_at(side, 10.0 * depth_cm)
            out.append(
                _row(f"PDD {side}x{side} at {depth_cm:g} cm (%)", meas, model, model - meas, 1.5)
            )
        dmax, _ = peak(*model_depth_dose(side, side, p))
        out.append(
            _row(f"dmax {side}x{side} (mm)", m.dmax_mm(side), dmax, dmax - m.dmax_mm(side), 3.0)
        )
    return out


def output_rows(p: EngineParams) -> list[dict[str, Any]]:
    """Output factors (2 %), square test fields and both orientations of 3 x 40 cm."""
    out = []
    for u, v in ((3, 3), (6, 6), (20, 20), (40, 40), (3, 40), (40, 3)):
        model, meas = model_output(u, v, p), _measured_output(u, v)
        out.append(_row(f"output {u}x{v} (rel %)", meas, model, 100.0 * (model / meas - 1.0), 2.0))
    return out


def profile_rows(p: EngineParams) -> list[dict[str, Any]]:
    """In-field (2 points), penumbra (fails of 2 % / 1 mm) and 1-5 cm outside (1.5 points)."""
    m = load_measured()
    out = []
    for side in PROFILE_FIELDS_CM:
        for depth_cm in TEST_DEPTHS_CM:
            x, v = m.profile_points(depth_cm, side)
            edge = field_edge_mm(side, 10.0 * depth_cm)
            keep = x <= edge + 50.0
            x, v = x[keep], v[keep]
            model = model_profile(side, depth_cm, x, p)
            tag = f"{side}x{side} at {depth_cm:g} cm"
            inside = (x <= 45.0) & (v >= 90.0)
            err = (model - v)[inside]
            worst = float(err[np.argmax(np.abs(err))])
            out.append(_row(f"in-field {tag} (points)", float("nan"), float("nan"), worst, 2.0))
            x90 = float(x[np.flatnonzero(v < 90.0)[0]])
            region = (x >= x90) & (x < edge + 10.0)
            fine = np.arange(max(x90 - 5.0, 0.0), edge + 15.0, 0.1)
            fails = dta_failures(
                x[region], v[region], fine, model_profile(side, depth_cm, fine, p), 2.0, 1.0
            )
            out.append(_row(f"penumbra {tag} (2 %/1 mm fails)", 0.0, fails.size, fails.size, 0))
            far = (x >= edge + 10.0 - 1e-6) & (x <= edge + 50.0)
            err = (model - v)[far]
            worst = float(err[np.argmax(np.abs(err))])
            out.append(_row(f"outside {tag} (points)", float("nan"), float("nan"), worst, 1.5))
    return out


def penumbra_rows(p: EngineParams) -> list[dict[str, Any]]:
    """80-20 % penumbra at 10 cm: 6 x 6 and 20 x 20 (1 mm); 4 x 4 and 10 x 10 for the table."""
    m = load_measured()
    out = []
    for side in (4, 6, 10, 20):
        x, v = m.profile_points(10.0, side)
        meas = penumbra_80_20_mm(x, v)
        fine = np.arange(0.0, field_edge_mm(side, 100.0) + 30.0, 0.1)
        model = penumbra_80_20_mm(fine, model_profile(side, 10.0, fine, p))
        tol = 1.0 if side in (6, 20) else float("inf")
        name = f"penumbra 80-20 {side}x{side} at 10 cm (mm)" + ("" if side in (6, 20) else " (fit)")
        out.append(_row(name, meas, model, model - meas, tol))
    return out


def outside_rows(p: EngineParams) -> list[dict[str, Any]]:
    """Dose 1/2/3/4.9 cm outside the 20 x 20 (test) and 10 x 10 (table) edge at 10 cm."""
    m = load_measured()
    out = []
    for side in (20, 10):
        x, v = m.profile_points(10.0, side)
        edge = field_edge_mm(side, 100.0)
        offsets = edge + 10.0 * np.asarray(OUTSIDE_CM)
        model = model_profile(side, 10.0, offsets, p)
        meas = np.interp(offsets, x, v)
        for cm, mo, me in zip(OUTSIDE_CM, model, meas, strict=True):
            tol = 1.5 if side == 20 else float("inf")
            tag = "" if side == 20 else " (fit)"
            out.append(
                _row(f"{side}x{side} {cm:g} cm outside at 10 cm (%){tag}", me, mo, mo - me, tol)
            )
    x, v = m.profile_points(10.0, 10)
    for off in (40.0, 45.0):
        mo = float(model_profile(10, 10.0, np.array([off]), p)[0])
        me = float(np.interp(off, x, v))
        out.append(
            _row(f"10x10 at 10 cm, {off:g} mm off axis (%) (fit)", me, mo, mo - me, float("inf"))
        )
    return out


def check(p: EngineParams | None = None) -> list[dict[str, Any]]:
    """Every row (quantity, measured, model, error, tolerance, ok)."""
    q = p if p is not None else EngineParams()
    return [
        *depth_dose_rows(q),
        *output_rows(q),
        *profile_rows(q),
        *penumbra_rows(q),
        *outside_rows(q),
    ]


def _fmt(v: float) -> str:
    return "" if v != v else f"{v:.3f}"  # nan -> blank


def main(argv: list[str] | None = None) -> int:
    """Print the table, write ``bench/results/beam_check.json``; exit 0 (misses are reported)."""
    del argv
    p = EngineParams()
    rows = check(p)
    print_table(
        "6 MV kernel vs TrueBeam 6X (test fields; (fit) = fitted field, no target)",
        ["quantity", "measured", "model", "error", "tol", "ok"],
        [
            [
                r["quantity"],
                _fmt(r["measured"]),
                _fmt(r["model"]),
                f"{r['error']:+.3f}",
                f"{r['tolerance']:g}",
                "yes" if r["ok"] else "MISS",
            ]
            for r in rows
        ],
    )
    misses = [r["quantity"] for r in rows if not r["ok"]]
    console.print(
        f"{len(rows) - len(misses)}/{len(rows)} within tolerance; misses: {misses or 'none'}"
    )
    path = write_results(
        "beam_check",
        {"n_fitted_parameters": len(p.fitted()), "rows": rows, "misses": misses},
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
