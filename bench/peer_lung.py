"""Lung slab in pyRadPlan 0.5.0: the numbers ``tests/data/beam-6x/pyradplan_lung_slab.json`` freezes.

Phantom (issue #9): water 0-5 cm, lung (relative electron density 0.25) 5-10 cm, water beyond,
and the same phantom all water; SSD 100 cm (isocenter on the surface), one beam at gantry 0,
open 10 x 10 and 5 x 5 cm fields (5 mm bixels, every weight 1). Reported per field: the central
axis dose ratio lung / water at 7.5, 12 and 20 cm depth, and the 80-20 % penumbra (along x) at
7.5 cm depth in both phantoms. The engine, machine and settings are pyRadPlan's defaults for
photons (recorded in the output with the version).

Run with the peer venv (``bash bench/setup_peer.sh`` creates it)::

    bench/.peer-venv/bin/python bench/peer_lung.py --out tests/data/beam-6x/pyradplan_lung_slab.json

or ``python -m bench.peer_lung [--freeze]`` from ours: it runs the peer in its venv, compares
our numbers (``bench/results/peer_lung.json``) and, with ``--freeze``, rewrites the frozen file.
pyRadPlan is imported inside :func:`run_peer` only (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

PYRADPLAN_VERSION = "0.5.0"
FIELDS_MM = (100.0, 50.0)
DEPTHS_MM = (75.0, 120.0, 200.0)
PENUMBRA_DEPTH_MM = 75.0
LUNG_DENSITY = 0.25
LUNG_TOP_MM, LUNG_BOTTOM_MM = 50.0, 100.0
#: CT grid: 2 mm across the beam (x, z), 2.5 mm along it (y, depth 0-250 mm).
LATERAL_MM, DEPTH_STEP_MM, DEPTH_MAX_MM = 2.0, 2.5, 250.0
BIXEL_MM = 5.0
#: pyRadPlan's default photon HLUT is linear between -999 HU (0.001) and -90 HU (0.95).
LUNG_HU = -999.0 + (LUNG_DENSITY - 0.001) / (0.95 - 0.001) * (999.0 - 90.0)
HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peer-venv" / "bin" / "python"
FROZEN = HERE.parent / "tests" / "data" / "beam-6x" / "pyradplan_lung_slab.json"


def penumbra_80_20_mm(x_mm: NDArray[np.floating], dose: NDArray[np.floating]) -> float:
    """80-20 % distance of the falling edge of a profile on ``x >= 0`` (100 % = ``dose`` at 0)."""
    x = np.asarray(x_mm, dtype=np.float64)
    d = np.asarray(dose, dtype=np.float64)
    keep = x >= 0.0
    x, d = x[keep], d[keep] / float(d[keep][np.argmin(x[keep])])
    order = np.argsort(x)
    x, d = x[order], d[order]
    k = int(np.flatnonzero(d < 0.5)[0])
    xs, ds = x[max(k - 40, 0) : k + 40][::-1], d[max(k - 40, 0) : k + 40][::-1]
    return float(np.interp(0.2, ds, xs) - np.interp(0.8, ds, xs))


def _phantom(lung: bool, field_mm: float) -> tuple[Any, Any, dict[str, Any]]:
    """CT and structures (body, a target of the field's size on the surface) in pyRadPlan."""
    from pyRadPlan.cst import StructureSet, create_voi
    from pyRadPlan.ct import create_ct

    half = 0.5 * field_mm + 60.0
    nx = round(2 * half / LATERAL_MM)
    ny = round(DEPTH_MAX_MM / DEPTH_STEP_MM)
    x = -half + LATERAL_MM * (np.arange(nx) + 0.5)
    y = DEPTH_STEP_MM * (np.arange(ny) + 0.5)  # depth below the surface (y = 0)
    cube = np.zeros((nx, ny, nx))  # numpy order (z, y, x)
    if lung:
        cube[:, (y > LUNG_TOP_MM) & (y < LUNG_BOTTOM_MM), :] = LUNG_HU
    ct = create_ct(
        {
            "cube_hu": cube,
            "origin": (float(x[0]), float(y[0]), float(x[0])),
            "direction": (1, 0, 0, 0, 1, 0, 0, 0, 1),
            "resolution": {"x": LATERAL_MM, "y": DEPTH_STEP_MM, "z": LATERAL_MM},
        }
    )
    inside = np.abs(x) < 0.5 * field_mm
    target = np.zeros(cube.shape, dtype=np.uint8)
    target[np.ix_(inside, y < DEPTH_STEP_MM, inside)] = 1
    body = np.ones(cube.shape, dtype=np.uint8)
    cst = StructureSet(
        vois=[
            create_voi(voi_type="TARGET", name="field", ct_image=ct, mask=target),
            create_voi(voi_type="OAR", name="body", ct_image=ct, mask=body),
        ],
        ct_image=ct,
    )
    return ct, cst, {"x_mm": x, "depth_mm": y}


def _open_field_dose(lung: bool, field_mm: float) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """Dose cube (z, y, x) of the open field, every bixel weight 1, and the axes."""
    import pyRadPlan
    import SimpleITK

    ct, cst, axes = _phantom(lung, field_mm)
    pln = pyRadPlan.PhotonPlan(machine="Generic", num_of_fractions=1)
    # isocenter on the surface, offset half a bixel so that 5 mm bixels tile the field exactly
    iso = [0.5 * BIXEL_MM, 0.0, 0.5 * BIXEL_MM]
    pln.prop_stf = {
        "gantry_angles": [0.0],
        "couch_angles": [0.0],
        "bixel_width": BIXEL_MM,
        "iso_center": [iso],
        "add_margin": False,
    }
    pln.prop_dose_calc = {"dose_grid": ct.grid}
    stf = pyRadPlan.generate_stf(ct, cst, pln)
    n = stf.total_number_of_bixels
    result = pyRadPlan.calc_dose_forward(ct, cst, stf, pln, np.ones(n))
    dose = result["physical_dose"]
    if isinstance(dose, SimpleITK.Image):
        dose = SimpleITK.GetArrayFromImage(dose)
    positions = np.array([ray.ray_pos_bev for ray in stf.beams[0].rays])
    axes |= {
        "n_bixels": int(n),
        "ray_u_mm": [float(positions[:, 0].min()), float(positions[:, 0].max())],
        "iso_mm": iso,
    }
    return np.asarray(dose, dtype=np.float64), axes


def run_peer() -> dict[str, Any]:
    """Both fields in both phantoms; ratios and penumbrae (needs the peer venv)."""
    import pyRadPlan

    sys.path.insert(0, str(HERE))
    from peer_pyradplan import engine_settings

    out: dict[str, Any] = {
        "version": pyRadPlan.__version__,
        "engine_settings": engine_settings(pyRadPlan.PhotonPlan(machine="Generic")),
        "settings": {
            "machine": "Generic (photons, 6 MV)",
            "engine": "pyRadPlan default photon engine (SVD pencil beam), default settings",
            "dose_grid": "the CT grid (2 mm across, 2.5 mm along the beam)",
            "bixel_width_mm": BIXEL_MM,
            "ssd_mm": 1000.0,
            "lung_hu": LUNG_HU,
            "lung_density": LUNG_DENSITY,
            "hlut": "pyRadPlan default",
            "weights": "1 on every bixel (forward calculation)",
        },
        "fields": {},
    }
    for field_mm in FIELDS_MM:
        t0 = time.perf_counter()
        dose = {}
        axes: dict[str, Any] = {}
        for lung in (False, True):
            dose[lung], axes = _open_field_dose(lung, field_mm)
        x, depth = axes["x_mm"], axes["depth_mm"]
        ix = int(np.argmin(np.abs(x - 0.0)))
        iz = ix
        ratios = {}
        for d_mm in DEPTHS_MM:
            w = float(np.interp(d_mm, depth, dose[False][iz, :, ix]))
            lu = float(np.interp(d_mm, depth, dose[True][iz, :, ix]))
            ratios[f"{d_mm / 10:g}"] = lu / w
        iy = int(np.argmin(np.abs(depth - PENUMBRA_DEPTH_MM)))
        pen = {
            name: penumbra_80_20_mm(x - axes["iso_mm"][0], dose[lung][iz, iy, :])
            for name, lung in (("water", False), ("lung", True))
        }
        out["fields"][f"{field_mm / 10:g}x{field_mm / 10:g}"] = {
            "ratio_lung_to_water_at_depth_cm": ratios,
            "penumbra_80_20_at_7.5cm_mm": pen,
            "n_bixels": axes["n_bixels"],
            "ray_positions_mm": axes["ray_u_mm"],
            "seconds": time.perf_counter() - t0,
        }
    return out


def ours(peer: dict[str, Any]) -> dict[str, Any]:
    """Our ratios and penumbrae on the same phantom (point-dose API), next to the peer's."""
    from mock_tps.beam_data import penumbra_80_20_mm as penumbra
    from mock_tps.water import OpenField, Slab, SlabPhantom, depth_dose_gy, profile_gy

    lung = SlabPhantom(
        slabs=(
            Slab(thickness_mm=LUNG_TOP_MM, density=1.0),
            Slab(thickness_mm=LUNG_BOTTOM_MM - LUNG_TOP_MM, density=LUNG_DENSITY),
        )
    )
    water = SlabPhantom()
    out: dict[str, Any] = {}
    for field_mm in FIELDS_MM:
        key = f"{field_mm / 10:g}x{field_mm / 10:g}"
        field = OpenField.square(field_mm)
        depths = np.asarray(DEPTHS_MM)
        ratio = depth_dose_gy(depths, field, lung) / depth_dose_gy(depths, field, water)
        x = np.arange(0.0, 0.5 * field_mm * 1.075 + 40.0, 0.1)
        pen = {}
        for name, phantom in (("water", water), ("lung", lung)):
            dose = profile_gy(x, PENUMBRA_DEPTH_MM, field, phantom)
            pen[name] = penumbra(x, 100.0 * dose / dose[0])
        ref = peer["fields"][key]["ratio_lung_to_water_at_depth_cm"]
        out[key] = {
            "ratio_lung_to_water_at_depth_cm": {
                f"{d / 10:g}": float(r) for d, r in zip(DEPTHS_MM, ratio, strict=True)
            },
            "ratio_vs_peer_pct": {
                f"{d / 10:g}": float(100.0 * (r / ref[f"{d / 10:g}"] - 1.0))
                for d, r in zip(DEPTHS_MM, ratio, strict=True)
            },
            "penumbra_80_20_at_7.5cm_mm": pen,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Peer side with ``--out`` (in the peer venv); else run it there, compare with ours, write
    ``bench/results/peer_lung.json`` (and, with ``--freeze``, the file the tests read)."""
    parser = argparse.ArgumentParser(description="lung slab in pyRadPlan (frozen for the tests)")
    parser.add_argument("--out", type=Path, help="write the peer's JSON here (peer venv only)")
    parser.add_argument("--freeze", action="store_true", help=f"also write {FROZEN.name}")
    args = parser.parse_args(argv)
    if args.out is not None:
        os.environ.setdefault("TQDM_DISABLE", "1")
        result = run_peer()
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    from bench.common import console, print_table, write_results

    if not PEER_PYTHON.exists():
        console.print("[yellow]peer venv missing: running setup_peer.sh (one-off install)[/]")
        subprocess.run(["bash", str(HERE / "setup_peer.sh")], check=False)
    if not PEER_PYTHON.exists():
        console.print(
            "[red]pyRadPlan could not be installed: no comparison (the tests use the frozen file)[/]"
        )
        write_results("peer_lung", {"peer": None, "reason": "pyRadPlan could not be installed"})
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        peer_path = Path(tmp) / "peer_lung.json"
        cmd = [str(PEER_PYTHON), __file__, "--out", str(peer_path)]
        proc = subprocess.run(cmd, check=False, stderr=subprocess.DEVNULL)
        if proc.returncode != 0 or not peer_path.exists():
            print(f"peer run failed (exit {proc.returncode})", file=sys.stderr)
            return proc.returncode or 1
        peer = json.loads(peer_path.read_text())
    if args.freeze:
        FROZEN.write_text(json.dumps(peer, indent=2) + "\n")
    mine = ours(peer)
    rows = []
    for key, o in mine.items():
        p = peer["fields"][key]
        for d, r in o["ratio_lung_to_water_at_depth_cm"].items():
            ref = p["ratio_lung_to_water_at_depth_cm"][d]
            rows.append(
                [key, f"ratio at {d} cm", f"{r:.4f}", f"{ref:.4f}", f"{100 * (r / ref - 1):+.2f} %"]
            )
        for name in ("water", "lung"):
            rows.append(
                [
                    key,
                    f"80-20 % penumbra at 7.5 cm, {name} (mm)",
                    f"{o['penumbra_80_20_at_7.5cm_mm'][name]:.2f}",
                    f"{p['penumbra_80_20_at_7.5cm_mm'][name]:.2f}",
                    "",
                ]
            )
    print_table(
        f"Lung slab: ours vs pyRadPlan {peer['version']} (ratios within 2 %)",
        ["field", "quantity", "ours", "pyRadPlan", "diff"],
        rows,
    )
    path = write_results("peer_lung", {"peer": peer, "ours": mine, "frozen": str(FROZEN.name)})
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
