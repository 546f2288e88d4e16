"""The cohort's figure: best-so-far score against inner optimizations, per policy and scenario
(the mean over seeds, each case's curve carried forward to the policy's longest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from agent.cohort.models import CaseResult
from agent.report.plots import save_figure


def mean_curve(results: Sequence[CaseResult]) -> list[tuple[int, float]]:
    """(inner optimizations, mean best-so-far score) over the cases with a curve."""
    curves = [r.curve for r in results if r.curve]
    if not curves:
        return []
    length = max(c[-1].inner_optimizations for c in curves)
    out: list[tuple[int, float]] = []
    for n in range(1, length + 1):
        values = []
        for curve in curves:
            seen = [p.best_score for p in curve if p.inner_optimizations <= n]
            values.append(seen[-1] if seen else curve[0].best_score)
        out.append((n, sum(values) / len(values)))
    return out


def best_so_far_figure(results: Sequence[CaseResult]) -> Figure:
    """One panel per scenario, one line per policy."""
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    fig = Figure(figsize=(4.2 * max(1, len(scenarios)), 3.4))
    for i, scenario in enumerate(scenarios):
        ax = fig.add_subplot(1, len(scenarios), i + 1)
        rows = [r for r in results if r.scenario == scenario and r.error is None]
        for policy in dict.fromkeys(r.policy for r in rows):
            curve = mean_curve([r for r in rows if r.policy == policy])
            if curve:
                xs, ys = zip(*curve, strict=True)
                ax.step(xs, ys, where="post", label=policy)
        max_scores = {r.max_score for r in rows if r.max_score is not None}
        for level in max_scores:
            ax.axhline(level, color="0.6", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_title(scenario)
        ax.set_xlabel("inner optimizations")
        ax.set_ylabel("best score so far (mean over seeds)")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_best_so_far(results: Sequence[CaseResult], path: Path) -> Path:
    """Draw :func:`best_so_far_figure` into the PNG ``path``."""
    return save_figure(best_so_far_figure(results), path)
