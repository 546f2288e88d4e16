"""Figures of a session report: plan progress and DVHs; shared colours and saving.

Figures are drawn with matplotlib's object-oriented API (:class:`matplotlib.figure.Figure`,
rendered by the Agg canvas), so no pyplot state or global backend is touched. Colours of a
structure are the same in every figure (:func:`structure_colours`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from agent.report.artifacts import PlanSnapshot
from agent.templates.metric import MetricError, MetricKind, parse_metric
from esapi_bridge.dto import DvhCurve

DPI = 110
_BODY_NAMES = ("body", "external", "outline", "skin")
# A TPS-like palette for common structure names (lower case prefix -> colour)
_NAMED = {
    "ptv": "#d62728",
    "ctv": "#ff7f0e",
    "gtv": "#8c1515",
    "outertarget": "#d62728",
    "core": "#2ca02c",
    "bladder": "#e6b800",
    "rectum": "#c07a3c",
    "femur_head_l": "#ff77e0",
    "femur_head_r": "#a66bff",
    "spinalcord": "#9467bd",
    "brainstem": "#e377c2",
    "parotid_l": "#2ca02c",
    "parotid_r": "#98df8a",
    "liver": "#bcbd22",
    "stomach": "#ff9896",
}
_CYCLE = (
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
)


def is_body(structure_id: str) -> bool:
    """Whether a structure id names the external contour."""
    return structure_id.strip().lower() in _BODY_NAMES


def structure_colours(structure_ids: Sequence[str]) -> dict[str, str]:
    """A stable colour per structure: named ones first, the rest from a cycle."""
    colours: dict[str, str] = {}
    used: set[str] = set()
    for sid in structure_ids:
        key = sid.strip().lower()
        if is_body(sid):
            colours[sid] = "#555555"
        else:
            match = next((c for name, c in _NAMED.items() if key.startswith(name)), None)
            if match is not None and match not in used:
                colours[sid] = match
                used.add(match)
    free = [c for c in _CYCLE if c not in used]
    for i, sid in enumerate(s for s in structure_ids if s not in colours):
        colours[sid] = free[i % len(free)] if free else _CYCLE[i % len(_CYCLE)]
    return colours


def save_figure(fig: Figure, path: Path) -> Path:
    """Save ``fig`` as a PNG at :data:`DPI` on white; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white", format="png")
    return path


def png_without_metadata(fig: Figure, dpi: float) -> bytes:
    """``fig`` as PNG bytes on white with no text chunks (matplotlib's ``Software`` entry,
    the only metadata it writes by default, is dropped): pixels, size and resolution only."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, facecolor="white", format="png", metadata={"Software": None})
    return buffer.getvalue()


# ----------------------------------------------------------------- progress
_UNIT_TITLES = {
    "Gy": "dose goals: margin (Gy)",
    "%": "volume goals: margin (% of volume)",
    "cm3": "volume goals: margin (cm³)",
    "": "index goals: margin",
}
_PRIORITY_STYLE = {1: "-", 2: "--", 3: ":"}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_TAB10 = tuple(matplotlib.colormaps["tab10"].colors)  # type: ignore[attr-defined]
_TAB20 = tuple(matplotlib.colormaps["tab20"].colors)  # type: ignore[attr-defined]


def plot_progress(
    iteration_rows: Sequence[Mapping[str, Any]],
    margins: Mapping[str, Mapping[str, Any]],
    colours: Mapping[str, str],
    path: Path,
    best_iteration: int | None = None,
) -> Path:
    """Score per iteration (top) and goal margins per iteration, one panel per unit.

    Without a score (a template with no score criteria) the top panel shows the number
    of goals met instead. ``margins[goal_id]`` holds ``label``, ``unit``, ``priority``, ``structure`` and
    ``values`` (iteration -> margin, > 0 met).
    """
    units = [u for u in ("Gy", "%", "cm3", "") if any(m["unit"] == u for m in margins.values())]
    n_panels = 1 + len(units)
    fig = Figure(figsize=(11.0, 2.9 + 2.6 * len(units)))
    axes = fig.subplots(
        n_panels,
        1,
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [1.0] + [1.15] * len(units)},
    )
    ax = axes[0, 0]
    key = "score" if any(r["score"] is not None for r in iteration_rows) else "goals_met"
    rows = [r for r in iteration_rows if r[key] is not None]
    its = [r["iteration"] for r in rows]
    scores = [float(r[key]) for r in rows]
    met = [bool(r["all_priority1_met"]) for r in rows]
    ax.plot(its, scores, color="#333333", lw=1.8, zorder=2)
    for p1_met, style in (
        (True, {"color": "#2a9d3c", "label": "all priority-1 goals met"}),
        (
            False,
            {
                "facecolor": "white",
                "edgecolor": "#c0392b",
                "lw": 1.6,
                "label": "priority-1 goal(s) failed",
            },
        ),
    ):
        xs = [i for i, m in zip(its, met, strict=True) if m is p1_met]
        ys = [s for s, m in zip(scores, met, strict=True) if m is p1_met]
        if xs:
            ax.scatter(xs, ys, s=46, zorder=3, **style)
    if key == "score":
        tops = {r["max_score"] for r in rows if r["max_score"] is not None}
    else:
        tops = {r["goals_met"] + r["goals_within_variation"] + r["goals_failed"] for r in rows}
    if len(tops) == 1:
        top_label = "maximum score" if key == "score" else "number of goals"
        ax.axhline(tops.pop(), color="#888888", ls="--", lw=1.0, label=top_label)
    if best_iteration is not None and best_iteration in its:
        best = scores[its.index(best_iteration)]
        ax.scatter(
            [best_iteration],
            [best],
            marker="*",
            s=220,
            color="#f4b400",
            edgecolor="#7a5a00",
            zorder=4,
            label=f"best (iteration {best_iteration})",
        )
    if not its:
        ax.text(0.5, 0.5, "no evaluated iteration", transform=ax.transAxes, ha="center")
    ax.set_ylabel("plan score" if key == "score" else "goals met")
    title = "Plan score per iteration" if key == "score" else "Goals met per iteration (no score)"
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    for panel, unit in enumerate(units, start=1):
        ax = axes[panel, 0]
        ax.axhline(0.0, color="black", lw=1.0)
        ax.axhspan(-1e9, 0.0, color="#c0392b", alpha=0.06)
        in_panel = [m for m in margins.values() if m["unit"] == unit and m["values"]]
        palette = _TAB10 if len(in_panel) <= len(_TAB10) else _TAB20
        values_seen: list[float] = [0.0]
        for k, m in enumerate(in_panel):
            xs = sorted(m["values"])
            ys = [m["values"][x] for x in xs]
            values_seen += ys
            ax.plot(
                xs,
                ys,
                ls=_PRIORITY_STYLE.get(int(m["priority"]), ":"),
                marker=_MARKERS[k % len(_MARKERS)],
                ms=4,
                color=palette[k % len(palette)],
                lw=1.4,
                label=f"P{m['priority']} {m['label']}",
            )
        lo, hi = min(values_seen), max(values_seen)
        pad = 0.08 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_ylabel(_UNIT_TITLES[unit].split(": ")[1])
        ax.set_title(
            f"Goal margins — {_UNIT_TITLES[unit].split(':')[0]} (> 0: met)", loc="left", fontsize=10
        )
        ax.grid(alpha=0.3)
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=7.5,
            frameon=False,
            ncol=1 if len(in_panel) <= 16 else 2,
        )
    axes[-1, 0].set_xlabel("iteration")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return save_figure(fig, path)


# -------------------------------------------------------------------- DVHs
def goal_markers(
    goals: Sequence[Mapping[str, Any]], dvhs: Mapping[str, DvhCurve], prescription_gy: float
) -> list[tuple[str, float, float, str]]:
    """Where DVH goals sit on a DVH plot: ``(structure, dose_gy, volume_pct, marker)``.

    ``D`` goals become a point at (limit, volume) with ``<``/``>`` markers (the dose must
    lie left / right of it), ``V`` goals a point at (dose level, limit) with ``v``/``^``.
    Mean, max, min and index goals, and goals of structures without a curve, are left out.
    """
    markers: list[tuple[str, float, float, str]] = []
    for g in goals:
        sid, upper = g["plan_structure_id"], str(g["comparator"]).startswith("<")
        curve = dvhs.get(sid)
        try:
            metric = parse_metric(str(g["metric"]))
        except MetricError:
            continue
        if curve is None or (metric.volume is None and metric.dose is None):
            continue
        if metric.kind is MetricKind.DOSE_AT_VOLUME and metric.volume is not None:
            vol = metric.volume
            if metric.volume_unit == "cm3":
                vol = min(100.0, 100.0 * metric.volume / curve.volume_cm3)
            markers.append((sid, float(g["limit"]), vol, "<" if upper else ">"))
        elif metric.kind is MetricKind.VOLUME_AT_DOSE:
            vol = float(g["limit"])
            if g["unit"] == "cm3":
                vol = min(100.0, 100.0 * vol / curve.volume_cm3)
            markers.append((sid, metric.dose_level_gy(prescription_gy), vol, "v" if upper else "^"))
    return markers


def plot_dvh(
    initial: PlanSnapshot | None,
    final: PlanSnapshot | None,
    colours: Mapping[str, str],
    prescription_gy: float,
    path: Path,
    goals: Sequence[Mapping[str, Any]] = (),
    reference: Mapping[str, DvhCurve] | None = None,
) -> Path:
    """Cumulative DVHs of every structure: initial dashed, final solid; DVH goals as markers.

    ``goals`` are goal rows (``plan_structure_id``, ``metric``, ``comparator``, ``limit``,
    ``unit``), see :func:`goal_markers`. ``reference`` (the rescaled clinical plan's DVHs of a
    real patient) is drawn dotted over the structures the plan shows.
    """
    fig = Figure(figsize=(11.0, 6.2))
    ax = fig.subplots()
    order = list(
        dict.fromkeys([*(final.dvhs if final else {}), *(initial.dvhs if initial else {})])
    )
    d_max = prescription_gy * 1.1
    for sid in order:
        for snap, style, lw in ((initial, "--", 1.3), (final, "-", 1.9)):
            curve = snap.dvhs.get(sid) if snap else None
            if curve is None:
                continue
            ax.plot(
                curve.dose_gy, curve.volume_pct, ls=style, lw=lw, color=colours.get(sid, "#333")
            )
            d_max = max(d_max, curve.max_dose_gy)
    shown_reference = {sid: c for sid, c in (reference or {}).items() if sid in order}
    for sid, curve in shown_reference.items():
        ax.plot(curve.dose_gy, curve.volume_pct, ls=":", lw=1.6, color=colours.get(sid, "#333"))
        d_max = max(d_max, curve.max_dose_gy)
    curves = {**(initial.dvhs if initial else {}), **(final.dvhs if final else {})}
    markers = goal_markers(goals, curves, prescription_gy)
    for sid, dose_gy, vol, marker in markers:
        ax.scatter(
            [dose_gy],
            [vol],
            marker=marker,
            s=70,
            color=colours.get(sid, "#333"),
            edgecolor="black",
            linewidth=0.9,
            zorder=5,
        )
    ax.axvline(prescription_gy, color="black", ls=":", lw=1.0)
    ax.text(prescription_gy, 101.5, f" Rx {prescription_gy:g} Gy", fontsize=8, va="bottom")
    ax.set_xlim(0.0, d_max * 1.03)
    ax.set_ylim(0.0, 105.0)
    ax.set_xlabel("dose (Gy)")
    ax.set_ylabel("volume (%)")
    ax.grid(alpha=0.3)
    if not order:
        ax.text(0.5, 0.5, "no DVH snapshot", transform=ax.transAxes, ha="center", fontsize=14)
    handles = [Line2D([], [], color=colours.get(s, "#333"), lw=2.0, label=s) for s in order]
    handles += [
        Line2D([], [], color="black", ls="--", lw=1.3, label="initial (iteration 0)"),
        Line2D([], [], color="black", ls="-", lw=1.9, label="final"),
    ]
    if shown_reference:
        handles.append(
            Line2D([], [], color="black", ls=":", lw=1.6, label="clinical plan (rescaled)")
        )
    if markers:
        handles.append(
            Line2D(
                [],
                [],
                color="white",
                marker="v",
                markersize=8,
                markeredgecolor="black",
                markerfacecolor="#bbbbbb",
                label="goal limit (points to\nthe allowed side)",
            )
        )
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5, frameon=False
    )
    ax.set_title(
        "Cumulative DVH — initial (dashed) vs final (solid)"
        + (", clinical plan (dotted)" if shown_reference else ""),
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    fig.tight_layout()
    return save_figure(fig, path)
