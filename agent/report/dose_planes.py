"""Figure of the dose planes (axial, coronal, sagittal) with isodose lines, structure contours,
and a colour bar of the dose wash (Gy and % of the prescription)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib.patheffects as path_effects
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Normalize
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
#: The dose colour wash: colour map, shown range (fraction of the prescription) and opacity.
WASH_CMAP = "jet"
WASH_RANGE_RX = (0.3, 1.1)
WASH_ALPHA = 0.28
#: Grey of the body under the wash (the colour bar is drawn over the same grey).
BODY_GREY = 0.32
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
        np.where(body, BODY_GREY, 0.0)[crop],
        cmap="gray",
        vmin=0,
        vmax=1,
        origin="lower",
        extent=extent,
        interpolation="nearest",
    )
    wash = np.ma.masked_less(dose[crop], WASH_RANGE_RX[0] * prescription_gy)
    ax.imshow(
        wash,
        cmap=WASH_CMAP,
        norm=wash_norm(prescription_gy),
        alpha=WASH_ALPHA,
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


def wash_norm(prescription_gy: float) -> Normalize:
    """Dose (Gy) to colour of the wash: :data:`WASH_RANGE_RX` of the prescription."""
    low, high = WASH_RANGE_RX
    return Normalize(vmin=low * prescription_gy, vmax=high * prescription_gy)


def _scale(factor: float, values: Any) -> Any:
    return np.asarray(values, dtype=np.float64) * factor


def add_colour_bar(
    fig: Figure, prescription_gy: float, rect: tuple[float, float, float, float]
) -> Colorbar:
    """A horizontal colour bar of the dose wash in ``rect`` (figure fraction), in Gy and % Rx.

    Drawn with the wash's opacity over the body's grey, so its colours match the planes.
    """
    cax = fig.add_axes(rect)
    cax.set_facecolor(str(BODY_GREY))
    mappable = ScalarMappable(norm=wash_norm(prescription_gy), cmap=WASH_CMAP)
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    if bar.solids is not None:
        bar.solids.set_alpha(WASH_ALPHA)
    low, high = WASH_RANGE_RX
    bar.set_label(
        f"dose wash (Gy): {100 * low:g} % to {100 * high:g} % of {prescription_gy:g} Gy "
        f"(no colour below {100 * low:g} %)",
        fontsize=8.5,
    )
    bar.ax.tick_params(labelsize=7.5)
    top = bar.ax.secondary_xaxis(
        "top",
        functions=(
            partial(_scale, 100.0 / prescription_gy),
            partial(_scale, prescription_gy / 100.0),
        ),
    )
    top.set_xlabel("% of Rx", fontsize=7.5, labelpad=1, loc="left")
    top.tick_params(labelsize=7)
    return bar


def plot_slices(
    snapshots: Sequence[PlanSnapshot],
    colours: Mapping[str, str],
    prescription_gy: float,
    path: Path,
) -> Path | None:
    """Axial, coronal and sagittal planes, one row per snapshot that has them (else ``None``)."""
    fig = slices_figure(snapshots, colours, prescription_gy)
    return None if fig is None else save_figure(fig, path)


def slices_figure(
    snapshots: Sequence[PlanSnapshot], colours: Mapping[str, str], prescription_gy: float
) -> Figure | None:
    """The figure of :func:`plot_slices` (``None`` when no snapshot has planes): the only
    text drawn is the snapshots' labels, the structure ids of the masks and the doses."""
    rows = [s for s in snapshots if s.slices]
    if not rows:
        return None
    planes = [
        p
        for p in (SlicePlane.AXIAL, SlicePlane.CORONAL, SlicePlane.SAGITTAL)
        if any(p in s.slices for s in rows)
    ]
    height_in = 4.4 * len(rows) + 0.9  # + the colour bar
    fig = Figure(figsize=(4.6 * len(planes) + 2.2, height_in))
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
    right = 1.0 - 2.0 / (4.6 * len(planes) + 2.2)
    bar_in = 0.9 / height_in  # the colour bar's band, as a fraction of the height
    fig.tight_layout(rect=(0.0, bar_in, right, 1.0))
    add_colour_bar(fig, prescription_gy, (0.12 * right, 0.42 * bar_in, 0.76 * right, 0.22 * bar_in))
    return fig
