"""Figure of the dose planes (axial, coronal, sagittal) with isodose lines and structure contours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.patheffects as path_effects
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import NDArray

from agent.report.artifacts import PlanSnapshot
from agent.report.plots import is_body, save_figure
from esapi_bridge.dto import DoseSlice, SlicePlane

#: Isodose levels (% of the prescription) and their line colours.
ISODOSE_LEVELS_PCT: tuple[tuple[float, str], ...] = (
    (30.0, "#1f4fff"),
    (50.0, "#00c8ff"),
    (80.0, "#22cc44"),
    (95.0, "#ffe500"),
    (100.0, "#ff8c00"),
    (105.0, "#ff1a1a"),
)
_AXIS_LABEL = {"x": "x (mm)  R → L", "y": "y (mm)  A → P", "z": "z (mm)  I → S"}


def _coords(
    s: DoseSlice, n_rows: int, n_cols: int
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    rows = s.origin_mm[0] + s.spacing_mm[0] * np.arange(n_rows)
    cols = s.origin_mm[1] + s.spacing_mm[1] * np.arange(n_cols)
    return rows, cols


def _draw_slice(
    ax: Any, s: DoseSlice, prescription_gy: float, colours: Mapping[str, str], label: str
) -> None:
    dose = np.asarray(s.dose_gy, dtype=np.float64)
    rows, cols = _coords(s, *dose.shape)
    masks = {sid: np.asarray(m, dtype=bool) for sid, m in s.masks.items()}
    union = np.zeros(dose.shape, dtype=bool)
    for m in masks.values():
        union |= m
    body = next((m for sid, m in masks.items() if is_body(sid)), union)
    # crop to the organs and the dose above 10 % Rx, with a 15 mm margin
    organs = np.zeros(dose.shape, dtype=bool)
    for sid, m in masks.items():
        if not is_body(sid):
            organs |= m
    r_idx, c_idx = np.nonzero(organs | (dose > 0.1 * prescription_gy))
    if r_idx.size:
        mr, mc = (int(np.ceil(15.0 / max(sp, 1e-6))) for sp in s.spacing_mm)
        r0, r1 = max(0, r_idx.min() - mr), min(dose.shape[0], r_idx.max() + mr + 1)
        c0, c1 = max(0, c_idx.min() - mc), min(dose.shape[1], c_idx.max() + mc + 1)
    else:
        r0, r1, c0, c1 = 0, dose.shape[0], 0, dose.shape[1]
    sr, sc = s.spacing_mm
    extent = (cols[c0] - sc / 2, cols[c1 - 1] + sc / 2, rows[r0] - sr / 2, rows[r1 - 1] + sr / 2)
    crop = (slice(r0, r1), slice(c0, c1))
    ax.set_facecolor("black")
    ax.imshow(
        np.where(body, 0.32, 0.0)[crop],
        cmap="gray",
        vmin=0,
        vmax=1,
        origin="lower",
        extent=extent,
        interpolation="nearest",
    )
    wash = np.ma.masked_less(dose[crop], 0.3 * prescription_gy)
    ax.imshow(
        wash,
        cmap="jet",
        vmin=0.3 * prescription_gy,
        vmax=1.1 * prescription_gy,
        alpha=0.28,
        origin="lower",
        extent=extent,
        interpolation="bilinear",
    )
    rr, cc = rows[r0:r1], cols[c0:c1]
    for pct, colour in ISODOSE_LEVELS_PCT:
        level = pct / 100.0 * prescription_gy
        if dose[crop].max() > level:
            ax.contour(cc, rr, dose[crop], levels=[level], colors=[colour], linewidths=1.1)
    outline = [path_effects.withStroke(linewidth=3.6, foreground="black")]
    for sid, m in masks.items():
        if not m[crop].any() or m[crop].all():
            continue
        if is_body(sid):
            ax.contour(
                cc, rr, m[crop].astype(float), levels=[0.5], linewidths=1.0, colors=["#bbbbbb"]
            )
        else:
            cs = ax.contour(
                cc,
                rr,
                m[crop].astype(float),
                levels=[0.5],
                linewidths=2.0,
                colors=[colours.get(sid, "white")],
            )
            cs.set_path_effects(outline)
    if s.row_axis == "y":  # anterior at the top
        ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_xlabel(_AXIS_LABEL.get(s.col_axis, s.col_axis), fontsize=8)
    ax.set_ylabel(_AXIS_LABEL.get(s.row_axis, s.row_axis), fontsize=8)
    ax.tick_params(labelsize=7)
    cut = ({"x", "y", "z"} - {s.row_axis, s.col_axis}).pop()
    ax.set_title(f"{label} — {s.plane.value}  ({cut} = {s.position_mm:.1f} mm)", fontsize=10)


def plot_slices(
    snapshots: Sequence[PlanSnapshot],
    colours: Mapping[str, str],
    prescription_gy: float,
    path: Path,
) -> Path | None:
    """Axial, coronal and sagittal planes, one row per snapshot that has them (else ``None``)."""
    rows = [s for s in snapshots if s.slices]
    if not rows:
        return None
    planes = [
        p
        for p in (SlicePlane.AXIAL, SlicePlane.CORONAL, SlicePlane.SAGITTAL)
        if any(p in s.slices for s in rows)
    ]
    fig = Figure(figsize=(4.6 * len(planes) + 2.2, 4.4 * len(rows)))
    axes = fig.subplots(len(rows), len(planes), squeeze=False)
    for r, snap in enumerate(rows):
        for c, plane in enumerate(planes):
            ax = axes[r, c]
            if plane in snap.slices:
                _draw_slice(ax, snap.slices[plane], prescription_gy, colours, snap.label)
            else:
                ax.axis("off")
                ax.text(0.5, 0.5, f"no {plane.value} plane", ha="center", transform=ax.transAxes)
    present = {sid for snap in rows for s in snap.slices.values() for sid in s.masks}
    structures = [sid for sid in colours if sid in present]
    structures += sorted(present - set(structures))
    handles = [
        Line2D(
            [], [], color=colour, lw=2.0, label=f"{pct:g} % ({pct / 100 * prescription_gy:.1f} Gy)"
        )
        for pct, colour in ISODOSE_LEVELS_PCT
    ]
    handles += [Line2D([], [], color="none", label=" ")]
    handles += [
        Line2D(
            [],
            [],
            color=colours.get(sid, "white") if not is_body(sid) else "#999999",
            lw=2.0,
            label=sid,
            path_effects=None
            if is_body(sid)
            else [path_effects.withStroke(linewidth=3.6, foreground="black")],
        )
        for sid in structures
    ]
    fig.legend(
        handles=handles,
        loc="center right",
        fontsize=8.5,
        frameon=False,
        title=f"isodose (% of {prescription_gy:g} Gy)\nand structures",
        title_fontsize=8.5,
    )
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - 2.0 / (4.6 * len(planes) + 2.2), 1.0))
    return save_figure(fig, path)
