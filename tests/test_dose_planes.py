"""The dose-plane figure: its colour wash comes with a colour bar in Gy and % of Rx."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import agent.report.dose_planes as dose_planes
from agent.report.artifacts import PlanSnapshot
from esapi_bridge.dto import DoseSlice, SlicePlane


def _snapshot() -> PlanSnapshot:
    yy, xx = np.mgrid[0:30, 0:30]
    r = np.hypot(yy - 15, xx - 15)
    plane = DoseSlice(
        plane=SlicePlane.AXIAL, index=5, position_mm=0.0, row_axis="y", col_axis="x",
        spacing_mm=(3.0, 3.0), origin_mm=(-45.0, -45.0),
        dose_gy=(60.0 * np.exp(-((r / 8) ** 2))).tolist(),
        masks={"BODY": (r < 14).tolist(), "PTV": (r < 4).tolist()},
    )  # fmt: skip
    return PlanSnapshot(label="final", dvhs={}, slices={SlicePlane.AXIAL: plane})


def test_the_dose_wash_has_a_colour_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures: list[Figure] = []

    def keep(fig: Figure, path: Path) -> Path:
        figures.append(fig)
        return path

    monkeypatch.setattr(dose_planes, "save_figure", keep)
    dose_planes.plot_slices([_snapshot()], {"PTV": "red"}, 50.0, tmp_path / "planes.png")
    (fig,) = figures
    bars = [ax for ax in fig.axes if ax.get_xlabel().startswith("dose wash (Gy)")]
    assert len(bars) == 1
    bar = bars[0]
    assert "30 % to 110 % of 50 Gy" in bar.get_xlabel()
    assert bar.get_xlim() == pytest.approx((15.0, 55.0))  # 30 % and 110 % of 50 Gy
    # the planes' wash uses the same scale as the bar
    images = [im for ax in fig.axes for im in ax.get_images() if im.get_cmap().name == "jet"]
    assert images
    assert all((im.norm.vmin, im.norm.vmax) == pytest.approx((15.0, 55.0)) for im in images)
