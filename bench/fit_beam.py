"""Fit the pencil-beam kernel to the measured TrueBeam 6X data; write ``bench/results/beam_fit.json``.

Fitted on the 4 x 4, 10 x 10 and 30 x 30 cm fields and the square output factors that no test
uses (4, 10, 15, 30 cm; the tests use 3, 6 (the mean of 5 and 7), 20 and 40 cm): depth doses
(3-300 mm, every 3 mm, and the slope at the measured maximum), profiles at 5, 10 and 20 cm depth
(out to 6 cm beyond the edge, every 2 mm; 2x weight beyond 8 mm outside the edge) and output
factors relative to 10 x 10 cm. The parameters are
:data:`mock_tps.engine_params.FITTED_FIELDS` (21); the fixed ones keep their defaults. The result's
values are the defaults of :class:`EngineParams` (copied there by hand, rounded).

Validation, on measured data neither fitted nor tested (printed and in the JSON): the profiles of
the fitted fields at 1.5 and 30 cm depth and the 8 x 8 cm depth dose. It is what the physical
priors in :data:`BOUNDS` were checked against (freeing the far-scatter length makes the fit's
residual smaller and the validation worse).

Run: ``python -m bench.fit_beam [--max-evals 200]`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

from bench.common import console, print_table, write_results
from mock_tps.beam_data import (
    field_edge_mm,
    load_measured,
    model_depth_dose,
    model_output,
    model_pdd,
    model_profile,
    peak,
)
from mock_tps.engine_params import FITTED_FIELDS, EngineParams

FIT_FIELDS_CM = (4, 10, 30)
#: Square output factors fitted besides those of FIT_FIELDS_CM (none of them is tested).
EXTRA_OUTPUT_FIELDS_CM = (15,)
PROFILE_DEPTHS_CM = (5.0, 10.0, 20.0)
VALIDATION_PROFILE_DEPTHS_CM = (1.5, 30.0)
VALIDATION_PDD_FIELD_CM = 8
BOUNDS: dict[str, tuple[float, float]] = {
    "surface_dose_fraction": (0.0, 1.0),
    "buildup_coefficient_per_mm": (0.05, 3.0),
    "attenuation_coefficient_per_mm": (0.001, 0.01),
    "softening_at_10cm": (-0.5, 1.0),
    "sigma_at_surface_mm": (0.3, 6.0),
    "sigma_growth_mm_per_mm": (0.0, 0.05),
    "scatter_near_per_10cm": (0.0, 2.0),
    "scatter_near_growth_mm_per_mm": (0.0, 0.5),
    "scatter_far_per_10cm": (0.0, 2.0),
    # physical prior: the far-scatter decay length at the surface stays <= 80 mm (it grows with
    # depth, free); see the module docstring for what freeing it does
    "scatter_far_length_mm": (5.0, 80.0),
    "scatter_far_length_growth_mm_per_mm": (0.0, 2.0),
    "scatter_buildup_coefficient_per_mm": (0.005, 5.0),
    "scatter_depth_offset_mm": (0.0, 200.0),
    "extra_focal_fraction": (0.0, 0.5),
    "extra_focal_sigma_mm": (10.0, 150.0),
    "extra_focal_broad_fraction": (0.0, 1.0),
    "extra_focal_broad_sigma_mm": (20.0, 480.0),
    "horn_at_10cm": (-0.2, 0.3),
    "contamination_fraction": (0.0, 1.0),
    "contamination_depth_mm": (1.0, 30.0),
    "contamination_sigma_mm": (10.0, 200.0),
}
W_PDD, W_SLOPE, W_OUTPUT, W_IN, W_OUT = 1.0, 30.0, 10.0, 0.7, 2.0


def _params(x: NDArray[np.float64], base: EngineParams) -> EngineParams:
    return replace(base, **{name: float(v) for name, v in zip(FITTED_FIELDS, x, strict=True)})


def residuals(x: NDArray[np.float64], base: EngineParams) -> NDArray[np.float64]:
    """Weighted differences model - measurement (points of % or of output x 100)."""
    p = _params(x, base)
    m = load_measured()
    out: list[NDArray[np.float64]] = []
    for side in FIT_FIELDS_CM:
        d, dose = model_depth_dose(side, side, p)
        _, top = peak(d, dose)
        sel = (m.pdd_depth_mm >= 3.0) & (m.pdd_depth_mm <= 300.0)
        depths = m.pdd_depth_mm[sel][::3]
        pdd = 100.0 * np.interp(depths, d, dose) / top
        out.append(W_PDD * (pdd - m.pdd[side][sel][::3]))
        md = m.dmax_mm(side)
        slope = 100.0 * (np.interp(md + 1.0, d, dose) - np.interp(md - 1.0, d, dose)) / (2 * top)
        out.append(np.array([W_SLOPE * slope]))
        out.append(
            np.array([W_OUTPUT * 100.0 * (model_output(side, side, p) - m.output(side, side))])
        )
        for depth_cm in PROFILE_DEPTHS_CM:
            xs, vs = m.profile_points(depth_cm, side)
            edge = field_edge_mm(side, 10.0 * depth_cm)
            keep = xs <= edge + 60.0
            xs, vs = xs[keep][::2], vs[keep][::2]
            w = np.where(xs > edge + 8.0, W_OUT, W_IN)
            out.append(w * (model_profile(side, depth_cm, xs, p) - vs))
    for side in EXTRA_OUTPUT_FIELDS_CM:
        out.append(
            np.array([W_OUTPUT * 100.0 * (model_output(side, side, p) - m.output(side, side))])
        )
    return np.concatenate(out)


def validation(p: EngineParams) -> dict[str, float]:
    """RMS differences (points) on measured data neither fitted nor tested."""
    m = load_measured()
    out: dict[str, float] = {}
    for depth_cm in VALIDATION_PROFILE_DEPTHS_CM:
        for side in FIT_FIELDS_CM:
            xs, vs = m.profile_points(depth_cm, side)
            edge = field_edge_mm(side, 10.0 * depth_cm)
            keep = xs <= edge + 50.0
            xs, vs = xs[keep], vs[keep]
            r = model_profile(side, depth_cm, xs, p) - vs
            out[f"profile {side}x{side} at {depth_cm:g} cm, in field"] = _rms(r[xs <= edge - 8.0])
            out[f"profile {side}x{side} at {depth_cm:g} cm, outside"] = _rms(r[xs > edge + 8.0])
    side = VALIDATION_PDD_FIELD_CM
    depths = np.arange(30.0, 301.0, 10.0)
    measured = np.array([m.pdd_at(side, d) for d in depths])
    out[f"PDD {side}x{side} 3-30 cm"] = _rms(model_pdd(side, depths, p) - measured)
    out["all"] = _rms(np.array(list(out.values())))
    return out


def _rms(r: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(r**2)))


def fit(max_evals: int) -> tuple[EngineParams, Any]:
    """Least squares from the current defaults; returns the fitted params and scipy's result."""
    base = EngineParams()
    x0 = np.array([getattr(base, n) for n in FITTED_FIELDS], dtype=np.float64)
    lo = np.array([BOUNDS[n][0] for n in FITTED_FIELDS])
    hi = np.array([BOUNDS[n][1] for n in FITTED_FIELDS])
    res = optimize.least_squares(
        residuals,
        np.clip(x0, lo, hi),
        bounds=(lo, hi),
        x_scale="jac",
        args=(base,),
        max_nfev=max_evals,
    )
    return _params(res.x, base), res


def main(argv: list[str] | None = None) -> int:
    """Fit, print the parameters, write ``bench/results/beam_fit.json``."""
    parser = argparse.ArgumentParser(description="fit the 6 MV kernel to the golden beam data")
    parser.add_argument("--max-evals", type=int, default=200)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    p, res = fit(args.max_evals)
    r = residuals(res.x, EngineParams())
    fitted = p.fitted()
    checks = validation(p)
    on_bounds = [
        n
        for n in FITTED_FIELDS
        if np.isclose(fitted[n], BOUNDS[n][0]) or np.isclose(fitted[n], BOUNDS[n][1])
    ]
    print_table(
        "Validation (neither fitted nor tested), rms points",
        ["data", "rms"],
        [[k, f"{v:.3f}"] for k, v in checks.items()],
    )
    console.print(f"on a bound: {on_bounds or 'none'}")
    print_table(
        f"Beam fit ({len(fitted)} parameters, rms weighted residual {float(np.sqrt(np.mean(r**2))):.3f})",
        ["parameter", "value"],
        [[k, f"{v:.6g}"] for k, v in fitted.items()],
    )
    path = write_results(
        "beam_fit",
        {
            "fit_fields_cm": list(FIT_FIELDS_CM),
            "extra_output_fields_cm": list(EXTRA_OUTPUT_FIELDS_CM),
            "bounds": {n: list(BOUNDS[n]) for n in FITTED_FIELDS},
            "on_bounds": on_bounds,
            "validation_rms_points": checks,
            "profile_depths_cm": list(PROFILE_DEPTHS_CM),
            "weights": {
                "pdd": W_PDD,
                "slope": W_SLOPE,
                "output": W_OUTPUT,
                "in": W_IN,
                "out": W_OUT,
            },
            "n_parameters": len(fitted),
            "parameters": fitted,
            "fixed": {k: v for k, v in vars(p).items() if k not in fitted},
            "rms_weighted_residual": float(np.sqrt(np.mean(r**2))),
            "n_residuals": int(r.size),
            "nfev": int(res.nfev),
            "seconds": time.perf_counter() - t0,
        },
    )
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
