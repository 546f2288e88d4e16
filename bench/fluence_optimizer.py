"""Speed of the fluence optimizer on synthetic dose-influence matrices of realistic size.

The matrices come from a crude geometric pencil beam written here (not the project's
dose engine): depth attenuation, erf-shaped beamlet profiles with a scatter tail, cut
below 0.1 % of the peak, so that non-zeros per row and per beamlet resemble a real one.
Cases: a prostate phantom (7 IMRT fields), the same with 180 VMAT control points, and the
TG-119 C-shape masks (the file found by ``mock_tps.tg119_fetch``) (9 fields, about 29 M non-zeros).

Run: ``python -m bench.fluence_optimizer [prostate|vmat|tg119 ...]``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import scipy.io
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import erf

from bench.common import median_runs, print_table, timed, write_results
from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
)
from mock_tps.dose_influence import DoseInfluence
from mock_tps.optimizer import build_problem, optimize_fluence
from mock_tps.tg119_fetch import resolve_tg119_path

UP, LO = ObjectiveOperator.UPPER, ObjectiveOperator.LOWER


@dataclass
class SyntheticCase:
    name: str
    dij: DoseInfluence
    masks: dict[str, NDArray[np.bool_]]
    target_id: str
    spacing_mm: tuple[float, float, float]
    rx_gy: float
    objectives: list[Objective]
    change_index: int
    build_s: float = 0.0


def _profile(
    x: NDArray[np.float64], sigma: NDArray[np.float64], width: float
) -> NDArray[np.float64]:
    s = np.sqrt(2.0) * sigma
    core = 0.5 * (erf((x + width / 2) / s) - erf((x - width / 2) / s))
    return core + 0.03 * np.exp(-np.abs(x) / 15.0)


def pencil_beam_dij(
    masks: dict[str, NDArray[np.bool_]],
    body_id: str,
    target_id: str,
    spacing_mm: tuple[float, float, float],
    gantry_deg: list[float],
    beamlet_mm: float = 5.0,
    window: int = 3,
    cutoff: float = 1e-3,
    dilate: bool = True,
) -> DoseInfluence:
    """A geometric dose-influence matrix (rows = body voxels, C order)."""
    body, target = masks[body_id], masks[target_id]
    shape = body.shape
    flat = np.flatnonzero(body)
    ijk = np.stack(np.unravel_index(flat, shape), axis=1)
    centre = np.argwhere(target).mean(axis=0)
    pos = (ijk - centre) * np.asarray(spacing_mm)
    tpos = (np.argwhere(target) - centre) * np.asarray(spacing_mm)
    rows_l, cols_l, vals_l, beam_l, ij_l = [], [], [], [], []
    n_cols = 0
    for b, g in enumerate(gantry_deg):
        a = np.deg2rad(g)
        direction = np.array([np.sin(a), -np.cos(a), 0.0])
        lateral = np.array([np.cos(a), np.sin(a), 0.0])
        s_t, z_t = tpos @ lateral, tpos[:, 2]
        cells = np.unique(
            np.stack([np.floor(s_t / beamlet_mm), np.floor(z_t / beamlet_mm)], 1), axis=0
        )
        if dilate:  # a beamlet of margin around the target's projection
            ring = np.array([[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]])
            cells = np.unique((cells[:, None, :] + ring).reshape(-1, 2), axis=0)
        cells = cells.astype(np.int64)
        lo = cells.min(axis=0)
        span = cells.max(axis=0) - lo + 1
        lut = -np.ones(span, dtype=np.int64)
        lut[cells[:, 0] - lo[0], cells[:, 1] - lo[1]] = np.arange(cells.shape[0]) + n_cols
        s_v, z_v, depth_axis = pos @ lateral, pos[:, 2], pos @ direction
        reach = (window + 1) * beamlet_mm
        near = (
            (s_v > (lo[0]) * beamlet_mm - reach)
            & (s_v < (lo[0] + span[0]) * beamlet_mm + reach)
            & (z_v > lo[1] * beamlet_mm - reach)
            & (z_v < (lo[1] + span[1]) * beamlet_mm + reach)
        )
        idx = np.flatnonzero(near)
        s, z = s_v[idx], z_v[idx]
        depth = np.maximum(depth_axis[idx] - depth_axis.min(), 0.0)
        dd = np.exp(-0.0045 * depth) * (1 - np.exp(-depth / 8.0) * 0.6)
        sigma = 2.0 + 0.015 * depth
        cs, cz = (
            np.floor(s / beamlet_mm).astype(np.int64),
            np.floor(z / beamlet_mm).astype(np.int64),
        )
        for da in range(-window, window + 1):
            for db in range(-window, window + 1):
                ci, cj = cs + da - lo[0], cz + db - lo[1]
                ok = (ci >= 0) & (ci < span[0]) & (cj >= 0) & (cj < span[1])
                col = np.full(idx.size, -1, dtype=np.int64)
                col[ok] = lut[ci[ok], cj[ok]]
                ok &= col >= 0
                x_s = s[ok] - (cs[ok] + da + 0.5) * beamlet_mm
                x_z = z[ok] - (cz[ok] + db + 0.5) * beamlet_mm
                v = (
                    dd[ok]
                    * _profile(x_s, sigma[ok], beamlet_mm)
                    * _profile(x_z, sigma[ok], beamlet_mm)
                )
                keep = v > cutoff
                rows_l.append(idx[ok][keep])
                cols_l.append(col[ok][keep])
                vals_l.append(v[keep].astype(np.float32))
        beam_l.append(np.full(cells.shape[0], b, dtype=np.int32))
        ij_l.append((cells - lo).astype(np.int32)[:, ::-1])  # (leaf pair = z, travel = s)
        n_cols += cells.shape[0]
    matrix = sp.csr_matrix(
        (np.concatenate(vals_l), (np.concatenate(rows_l), np.concatenate(cols_l))),
        shape=(flat.size, n_cols),
        dtype=np.float32,
    )
    return DoseInfluence(
        matrix, flat.astype(np.int64), shape, np.concatenate(beam_l), np.concatenate(ij_l)
    )


def _ellipsoid(
    shape: tuple[int, int, int],
    sp_mm: tuple[float, ...],
    c_mm: tuple[float, ...],
    r_mm: tuple[float, ...],
) -> NDArray[np.bool_]:
    grids = np.meshgrid(
        *[np.arange(n) * s for n, s in zip(shape, sp_mm, strict=True)], indexing="ij"
    )
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, c_mm, r_mm, strict=True)) <= 1.0


def prostate_case(vmat: bool = False) -> SyntheticCase:
    """About 300 k body voxels (3 mm), PTV about 5 k voxels, four OARs of 5-30 k voxels."""
    spacing = (3.0, 3.0, 3.0)
    shape = (128, 80, 46)
    c = (64 * 3.0, 40 * 3.0, 23 * 3.0)
    body = _ellipsoid(shape, spacing, c, (185.0, 115.0, 1e9)) & (np.arange(46) < 45)[None, None, :]
    ptv = _ellipsoid(shape, spacing, c, (36.0, 30.0, 33.0))
    rectum = _ellipsoid(shape, spacing, (c[0], c[1] + 45.0, c[2]), (20.0, 17.0, 70.0)) & ~ptv
    bladder = (
        _ellipsoid(shape, spacing, (c[0], c[1] - 50.0, c[2] + 15.0), (45.0, 35.0, 40.0)) & ~ptv
    )
    fem_l = _ellipsoid(shape, spacing, (c[0] + 100.0, c[1], c[2]), (25.0, 25.0, 60.0))
    fem_r = _ellipsoid(shape, spacing, (c[0] - 100.0, c[1], c[2]), (25.0, 25.0, 60.0))
    masks = {
        "BODY": body,
        "PTV": ptv & body,
        "Rectum": rectum & body,
        "Bladder": bladder & body,
        "FemoralHead_L": fem_l & body,
        "FemoralHead_R": fem_r & body,
    }
    angles = [i * 2.0 for i in range(180)] if vmat else [i * 360.0 / 7 for i in range(7)]
    t0 = time.perf_counter()
    if vmat:  # 6 mm beamlets on the target's projection, narrow kernels
        dij = pencil_beam_dij(masks, "BODY", "PTV", spacing, angles, 6.0, window=1, dilate=False)
    else:
        dij = pencil_beam_dij(masks, "BODY", "PTV", spacing, angles, window=3)
    rx = 78.0
    objectives: list[Objective] = [
        PointObjective(structure_id="PTV", operator=LO, dose_gy=rx, volume_pct=100, priority=150),
        PointObjective(
            structure_id="PTV", operator=UP, dose_gy=1.04 * rx, volume_pct=0, priority=120
        ),
        PointObjective(
            structure_id="Rectum", operator=UP, dose_gy=0.85 * rx, volume_pct=10, priority=80
        ),
        PointObjective(
            structure_id="Rectum", operator=UP, dose_gy=0.5 * rx, volume_pct=35, priority=60
        ),
        EudObjective(
            structure_id="Rectum", operator=UP, dose_gy=0.45 * rx, parameter_a=8, priority=40
        ),
        PointObjective(
            structure_id="Bladder", operator=UP, dose_gy=0.8 * rx, volume_pct=15, priority=70
        ),
        MeanDoseObjective(structure_id="Bladder", dose_gy=0.35 * rx, priority=40),
        PointObjective(
            structure_id="FemoralHead_L", operator=UP, dose_gy=0.45 * rx, volume_pct=5, priority=40
        ),
        PointObjective(
            structure_id="FemoralHead_R", operator=UP, dose_gy=0.45 * rx, volume_pct=5, priority=40
        ),
        NormalTissueObjective(
            priority=100,
            distance_from_target_border_mm=5,
            start_dose_pct=100,
            end_dose_pct=60,
            fall_off=0.1,
        ),
    ]
    name = "prostate_vmat180" if vmat else "prostate_imrt7"
    return SyntheticCase(
        name, dij, masks, "PTV", spacing, rx, objectives, 4, time.perf_counter() - t0
    )


def tg119_case() -> SyntheticCase:
    """TG-119 C-shape masks (167 x 167 x 129, 3 x 3 x 2.5 mm), 9 fields."""
    mat = scipy.io.loadmat(resolve_tg119_path(), simplify_cells=True)
    shape = (
        tuple(int(n) for n in mat["ct"]["cubeDim"])
        if "cubeDim" in mat["ct"]
        else mat["ct"]["cube"].shape
    )
    masks = {}
    for row in mat["cst"]:
        m = np.zeros(int(np.prod(shape)), dtype=bool)
        idx = np.asarray(row[3], dtype=np.int64).ravel() - 1
        m[idx] = True
        masks[str(row[1])] = m.reshape(shape, order="F")
    res = mat["ct"]["resolution"]
    spacing = (float(res["x"]), float(res["y"]), float(res["z"]))
    t0 = time.perf_counter()
    dij = pencil_beam_dij(
        masks, "BODY", "OuterTarget", spacing, [i * 40.0 for i in range(9)], window=4
    )
    rx = 50.0
    objectives: list[Objective] = [
        PointObjective(
            structure_id="OuterTarget", operator=LO, dose_gy=rx, volume_pct=98, priority=150
        ),
        PointObjective(
            structure_id="OuterTarget", operator=UP, dose_gy=1.08 * rx, volume_pct=2, priority=100
        ),
        PointObjective(structure_id="Core", operator=UP, dose_gy=10.0, volume_pct=10, priority=100),
        NormalTissueObjective(
            priority=80,
            distance_from_target_border_mm=5,
            start_dose_pct=100,
            end_dose_pct=50,
            fall_off=0.1,
        ),
    ]
    return SyntheticCase(
        "tg119_imrt9",
        dij,
        masks,
        "OuterTarget",
        spacing,
        rx,
        objectives,
        2,
        time.perf_counter() - t0,
    )


def run(case: SyntheticCase, runs: int = 3) -> dict[str, float]:
    """Build once (timed), then the median of ``runs`` cold optimizations and of ``runs``
    warm re-optimizations after one objective change (``with_objectives`` included)."""
    dij = case.dij
    target = case.masks[case.target_id]
    t_build, problem = timed(
        lambda: build_problem(dij, case.masks, target, case.objectives, case.rx_gy, case.spacing_mm)
    )
    t_cold, _, cold = median_runs(lambda: optimize_fluence(problem), runs)
    # one objective change: the OAR objective ``change_index`` asks for 20 % less dose
    changed = list(case.objectives)
    old = changed[case.change_index]
    assert not isinstance(old, NormalTissueObjective)
    changed[case.change_index] = old.model_copy(update={"dose_gy": old.dose_gy * 0.8})
    t_warm, _, warm = median_runs(
        lambda: optimize_fluence(problem.with_objectives(changed), x0=cold.weights), runs
    )
    changed_problem = problem.with_objectives(changed)
    t_cold2, cold2 = timed(lambda: optimize_fluence(changed_problem))
    return {
        "rows_body": float(dij.matrix.shape[0]),
        "beamlets": float(dij.n_beamlets),
        "nnz_full_M": dij.matrix.nnz / 1e6,
        "rows_restricted": float(problem.matrix.shape[0]),
        "nnz_restricted_M": problem.matrix.nnz / 1e6,
        "build_problem_s": t_build,
        "cold_opt_s": t_cold,
        "full_incl_build_s": t_build + t_cold,
        "cold_iters": float(cold.iterations),
        "cold_value": cold.total_value,
        "warm_reopt_s": t_warm,
        "warm_iters": float(warm.iterations),
        "warm_value": warm.total_value,
        "cold_after_change_s": t_cold2,
        "cold_after_change_iters": float(cold2.iterations),
        "cold_after_change_value": cold2.total_value,
        "mu_proxy": cold.mu_proxy,
        "modulation_index": cold.modulation_index,
    }


def main(names: list[str]) -> None:
    makers = {
        "prostate": prostate_case,
        "vmat": lambda: prostate_case(vmat=True),
        "tg119": tg119_case,
    }
    results = {}
    for name in names or list(makers):
        case = makers[name]()
        results[case.name] = {"dij_build_s": case.build_s, **run(case)}
        del case
    keys = list(next(iter(results.values())))
    print_table(
        "fluence optimizer (synthetic D_ij)",
        ["metric", *results],
        [[k, *[r[k] for r in results.values()]] for k in keys],
    )
    write_results("fluence_optimizer", {"cases": results})


if __name__ == "__main__":
    main(sys.argv[1:])
