"""TG-119 C-shape planned in pyRadPlan 0.5.0: the peer side of the TG-119 benchmark.

Run with the peer venv (``bash bench/setup_peer.sh`` creates it)::

    bench/.peer-venv/bin/python bench/peer_pyradplan.py --out peer.json

Problem (the same as ours): the TG119 phantom bundled with pyRadPlan (identical to
``shared/data/tg119/TG119.mat``), photons 6 MV (pyRadPlan's ``Generic`` photon machine),
7 equispaced coplanar gantry angles, couch 0, bixel width 5 mm, dose grid = CT grid
(3 x 3 x 2.5 mm), objectives stored with the phantom (Core squared overdosing 25 Gy p300,
OuterTarget squared deviation 50 Gy p1000, BODY squared overdosing 30 Gy p100), dose engine,
problem and solver left at pyRadPlan's defaults (``--solver`` can force one).

Timed: ``calc_dose_influence`` (dij_s) and ``fluence_optimization`` to its convergence (opt_s).
Reported plan quality after scaling the dose so that OuterTarget D95 = 50 Gy.

pyRadPlan is imported inside :func:`run_benchmark` only, so this module imports (and ``--help``
runs) with any Python >= 3.11 that has numpy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Pinned peer version (bench/setup_peer.sh installs it).
PYRADPLAN_VERSION = "0.5.0"
NUM_BEAMS = 7
#: 0, 51.43, ..., 308.57 degrees.
GANTRY_ANGLES_DEG: tuple[float, ...] = tuple(360.0 * i / NUM_BEAMS for i in range(NUM_BEAMS))
COUCH_ANGLE_DEG = 0.0
BIXEL_WIDTH_MM = 5.0
PRESCRIPTION_GY = 50.0
NUM_FRACTIONS = 1
TARGET_NAME = "OuterTarget"
CORE_NAME = "Core"
SOLVER_CHOICES = ("auto", "scipy", "ipopt")

#: Keys every result JSON has (the lead's bench/tg119.py reads these).
REQUIRED_KEYS: tuple[str, ...] = (
    "dij_s",
    "opt_s",
    "n_voxels",
    "n_beamlets",
    "nnz",
    "target_d95_gy",
    "core_d10_gy",
    "peak_rss_mb",
    "version",
)
_INT_KEYS = frozenset({"n_voxels", "n_beamlets", "nnz"})
_STR_KEYS = frozenset({"version"})


def dose_at_volume_pct(doses_gy: NDArray[np.floating], volume_pct: float) -> float:
    """Dose received by at least ``volume_pct`` % of the voxels (D_x, e.g. D95).

    Parameters
    ----------
    doses_gy : array of float
        One dose per voxel of the structure (Gy).
    volume_pct : float
        Volume share in (0, 100].

    Returns
    -------
    float
        The largest dose d such that at least ``volume_pct`` % of the voxels get >= d (Gy).
    """
    d = np.sort(np.asarray(doses_gy, dtype=np.float64).ravel())[::-1]
    if d.size == 0:
        raise ValueError("doses_gy is empty: D_x needs at least one voxel")
    if not 0.0 < volume_pct <= 100.0:
        raise ValueError(f"volume_pct must be within (0, 100], got {volume_pct}")
    # the k highest doses cover k / n of the volume: take the smallest k with k / n >= x / 100
    k = math.ceil(volume_pct / 100.0 * d.size - 1e-9)
    return float(d[min(max(k, 1), d.size) - 1])


def result_json(result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON payload of one peer run: required keys first, typed, then any extras.

    Parameters
    ----------
    result : mapping
        Must hold every key of :data:`REQUIRED_KEYS`; other keys are kept as they are.

    Returns
    -------
    dict
        Counts as int, ``version`` as str, the other required values as finite floats.
    """
    missing = [k for k in REQUIRED_KEYS if k not in result]
    if missing:
        raise KeyError(f"result lacks required keys {missing} (required: {list(REQUIRED_KEYS)})")
    out: dict[str, Any] = {}
    for key in REQUIRED_KEYS:
        value = result[key]
        if key in _STR_KEYS:
            out[key] = str(value)
        elif key in _INT_KEYS:
            out[key] = int(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(f"result[{key!r}] must be finite, got {value!r}")
            out[key] = number
    for key, value in result.items():
        if key not in out:
            out[key] = value
    return out


def write_result_json(result: Mapping[str, Any], path: Path) -> Path:
    """Write :func:`result_json` of ``result`` to ``path`` (atomically) and return the path."""
    payload = result_json(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    return path


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_benchmark(
    phantom: Path | None = None, solver: str = "auto", dose_grid_mm: float | None = None
) -> dict[str, Any]:
    """Plan TG-119 in pyRadPlan and measure it (needs the peer venv).

    Parameters
    ----------
    phantom : Path, optional
        A matRad TG119 ``.mat`` file; None loads the copy bundled with pyRadPlan.
    solver : {"auto", "scipy", "ipopt"}
        "auto" keeps pyRadPlan's default (IPOPT when ipyopt is installed, else SciPy L-BFGS-B).
    dose_grid_mm : float, optional
        Isotropic dose-grid spacing; None uses the CT grid (3 x 3 x 2.5 mm).

    Returns
    -------
    dict
        The :data:`REQUIRED_KEYS` plus extras (stf_s, solver, num_iter, unscaled doses, ...).
    """
    import pyRadPlan  # the peer venv only: keep module import (and --help) light

    if solver not in SOLVER_CHOICES:
        raise ValueError(f"solver must be one of {SOLVER_CHOICES}, got {solver!r}")
    if dose_grid_mm is not None and not 0.0 < dose_grid_mm <= 20.0:
        raise ValueError(f"dose_grid_mm must be within (0, 20] mm, got {dose_grid_mm}")
    ct, cst = pyRadPlan.load_tg119() if phantom is None else pyRadPlan.load_patient(phantom)

    pln = pyRadPlan.PhotonPlan(machine="Generic", num_of_fractions=NUM_FRACTIONS)
    pln.prop_stf = {
        "gantry_angles": list(GANTRY_ANGLES_DEG),
        "couch_angles": [COUCH_ANGLE_DEG] * NUM_BEAMS,
        "bixel_width": BIXEL_WIDTH_MM,
    }
    # dose grid = CT grid unless asked otherwise (the engine's own default is 5 mm isotropic)
    pln.prop_dose_calc = {
        "dose_grid": ct.grid
        if dose_grid_mm is None
        else {"resolution": {"x": dose_grid_mm, "y": dose_grid_mm, "z": dose_grid_mm}}
    }
    if solver != "auto":
        pln.prop_opt = {"solver": solver}

    t0 = time.perf_counter()
    stf = pyRadPlan.generate_stf(ct, cst, pln)
    stf_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    dij = pyRadPlan.calc_dose_influence(ct, cst, stf, pln)
    dij_s = time.perf_counter() - t0

    opt_info: dict[str, Any] = {}
    t0 = time.perf_counter()
    fluence = pyRadPlan.fluence_optimization(ct, cst, stf, dij, pln, opt_info=opt_info)
    opt_s = time.perf_counter() - t0

    matrix = dij.physical_dose.flat[0].tocsr()
    dose_gy = _dose_on_ct_grid_gy(dij, fluence)
    vois = {voi.name: voi for voi in cst.vois}
    target_dose = dose_gy[vois[TARGET_NAME].indices_numpy]
    core_dose = dose_gy[vois[CORE_NAME].indices_numpy]
    target_d95_raw = dose_at_volume_pct(target_dose, 95.0)
    if target_d95_raw <= 0.0:
        raise RuntimeError(f"OuterTarget D95 is {target_d95_raw} Gy: the plan cannot be scaled")
    scale = PRESCRIPTION_GY / target_d95_raw
    result_info = opt_info.get("result_info", {})
    grid = dij.dose_grid
    return {
        "dij_s": dij_s,
        "opt_s": opt_s,
        "n_voxels": int(matrix.shape[0]),
        "n_beamlets": int(matrix.shape[1]),
        "nnz": int(matrix.nnz),
        "target_d95_gy": dose_at_volume_pct(target_dose * scale, 95.0),
        "core_d10_gy": dose_at_volume_pct(core_dose * scale, 10.0),
        "peak_rss_mb": peak_rss_mb(),
        "version": pyRadPlan.__version__,
        "stf_s": stf_s,
        "n_voxels_nonzero": int(np.count_nonzero(np.diff(matrix.indptr))),
        "target_d10_gy": dose_at_volume_pct(target_dose * scale, 10.0),
        "scale_to_d95": scale,
        "target_d95_unscaled_gy": target_d95_raw,
        "core_d10_unscaled_gy": dose_at_volume_pct(core_dose, 10.0),
        "solver": _solver_name(pln),
        "num_iter": opt_info.get("num_iter"),
        "converged": _as_jsonable(result_info.get("success", result_info.get("status"))),
        "dose_grid_mm": [float(grid.resolution[a]) for a in ("x", "y", "z")],
        "gantry_angles_deg": list(GANTRY_ANGLES_DEG),
        "bixel_width_mm": BIXEL_WIDTH_MM,
        "engine_settings": engine_settings(pln),
    }


def engine_settings(pln: Any) -> dict[str, Any]:
    """The dose engine pyRadPlan picks for ``pln`` and its lateral cut-off and sampling."""
    from pyRadPlan.dose.engines import get_engine

    engine = get_engine(pln)
    out: dict[str, Any] = {"engine": f"{type(engine).__name__} ({engine.short_name})"}
    for name in (
        "geometric_lateral_cutoff",
        "dosimetric_lateral_cutoff",
        "kernel_cutoff",
        "enable_dij_sampling",
        "dij_sampling",
        "int_conv_resolution",
    ):
        if hasattr(engine, name):
            value = getattr(engine, name)
            value = dict(value) if isinstance(value, Mapping) else _as_jsonable(value)
            if isinstance(value, float) and not math.isfinite(value):
                value = str(value)  # "inf": no cut-off (JSON has no infinity)
            out[name] = value
    return out


def _dose_on_ct_grid_gy(dij: Any, fluence: NDArray[np.floating]) -> NDArray[np.float64]:
    """Dose per CT voxel, flat in numpy (C) order so that ``voi.indices_numpy`` index it."""
    if dij.dose_grid == dij.ct_grid:
        dose = dij.get_result_arrays_from_intensity(fluence)["physical_dose"]
        return np.asarray(dose, dtype=np.float64).ravel()
    import SimpleITK  # a pyRadPlan dependency (peer venv only)

    image = dij.compute_result_ct_grid(fluence)["physical_dose"]  # linear interpolation
    return np.asarray(SimpleITK.GetArrayFromImage(image), dtype=np.float64).ravel()


def _solver_name(pln: Any) -> str:
    """Name of the solver pyRadPlan picks for ``pln`` (after its fallbacks)."""
    from pyRadPlan.optimization.problems import get_problem_from_pln
    from pyRadPlan.optimization.solvers import get_solver

    solver = get_problem_from_pln(pln).solver
    if isinstance(solver, str | dict):
        solver = get_solver(solver)
    name = solver if isinstance(solver, str) else getattr(solver, "short_name", type(solver))
    method = getattr(solver, "method", None)
    return f"{name}:{method}" if isinstance(method, str) else str(name)


def _as_jsonable(value: Any) -> Any:
    """``value`` as a plain JSON scalar (numpy scalars and others become bool/int/float/str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description="Plan TG-119 in pyRadPlan 0.5.0 and write timings and plan metrics as JSON."
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument(
        "--phantom",
        type=Path,
        default=None,
        help="matRad TG119 .mat file (default: the copy bundled with pyRadPlan)",
    )
    parser.add_argument(
        "--solver",
        choices=SOLVER_CHOICES,
        default="auto",
        help="optimizer: pyRadPlan's default (auto) or a forced one",
    )
    parser.add_argument(
        "--dose-grid-mm",
        type=float,
        default=None,
        help="isotropic dose grid spacing in mm (default: the CT grid, 3 x 3 x 2.5 mm)",
    )
    parser.add_argument("--verbose", action="store_true", help="show pyRadPlan's INFO log")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the peer benchmark, print the JSON and write it to ``--out``."""
    args = parse_args(argv)
    if args.phantom is not None and not args.phantom.is_file():
        print(f"--phantom: no such file: {args.phantom}", file=sys.stderr)
        return 2
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO)
    else:
        os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm when pyRadPlan imports it
    try:
        import pyRadPlan  # fail early with a clear message
    except ImportError as exc:
        print(
            f"pyRadPlan is not importable ({exc}): run with bench/.peer-venv/bin/python "
            "(bash bench/setup_peer.sh creates it)",
            file=sys.stderr,
        )
        return 3
    if pyRadPlan.__version__ != PYRADPLAN_VERSION:
        print(
            f"warning: pyRadPlan {pyRadPlan.__version__} found, the benchmark pins "
            f"{PYRADPLAN_VERSION}",
            file=sys.stderr,
        )
    result = run_benchmark(args.phantom, args.solver, args.dose_grid_mm)
    path = write_result_json(result, args.out)
    print(json.dumps(result_json(result), indent=2))
    print(f"written: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
