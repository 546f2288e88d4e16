"""Water-box cases for the dose-engine tests (built directly with ``Case(...)``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import Technique
from mock_tps.case import Beam, BeamSet, Case, Prescription, Structure
from mock_tps.grid import Grid

Box = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
DensityFn = Callable[
    [NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]
]


def grid_covering(bounds: Box, spacing_mm: tuple[float, float, float]) -> Grid:
    """Grid whose voxel faces lie on ``bounds`` (lo, hi) along x, y, z."""
    shape = tuple(round((hi - lo) / s) for (lo, hi), s in zip(bounds, spacing_mm, strict=True))
    origin = tuple(lo + s / 2.0 for (lo, _), s in zip(bounds, spacing_mm, strict=True))
    return Grid(
        shape=(shape[0], shape[1], shape[2]),
        spacing_mm=spacing_mm,
        origin_mm=(origin[0], origin[1], origin[2]),
    )


def box_mask(grid: Grid, box: Box) -> NDArray[np.bool_]:
    """Voxels whose centres lie inside ``box`` (bounds inclusive)."""
    x, y, z = grid.coordinates_mm()
    (x0, x1), (y0, y1), (z0, z1) = box
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1) & (z >= z0) & (z <= z1)


def water_case(
    grid: Grid,
    body: Box,
    target: Box,
    beams: tuple[Beam, ...] = (Beam(0.0),),
    isocenter_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    margin_mm: float = 0.0,
    beamlet_mm: float = 5.0,
    density: DensityFn | None = None,
) -> Case:
    """A box of water (density 1, or ``density(x, y, z)``) with a box target."""
    body_mask = box_mask(grid, body)
    target_mask = box_mask(grid, target)
    rho = np.ones(grid.shape, dtype=np.float32)
    if density is not None:
        rho = np.asarray(density(*grid.coordinates_mm()), dtype=np.float32)
    beam_set = BeamSet(
        Technique.IMRT,
        beams,
        isocenter_mm,
        beamlet_size_mm=beamlet_mm,
        target_margin_mm=margin_mm,
    )
    return Case(
        name="water",
        grid=grid,
        density=rho,
        structures={
            "BODY": Structure("BODY", "EXTERNAL", body_mask),
            "PTV": Structure("PTV", "PTV", target_mask),
        },
        prescription=Prescription(total_dose_gy=2.0, fractions=1, target_id="PTV"),
        beams=beam_set,
    )


def field_10x10_case() -> Case:
    """10 x 10 cm field (20 x 20 beamlets of 5 mm, edges at +-50 mm) on water at SSD 100 cm.

    Voxel centres lie on multiples of 5 mm in x and z (x = 0, z = 0 is the field centre); the
    isocenter (2.5, 0, 2.5) is on the water surface y = 0 and on a beamlet corner.
    """
    grid = grid_covering(((-112.5, 112.5), (0.0, 330.0), (-112.5, 112.5)), (5.0, 5.0, 5.0))
    return water_case(
        grid,
        body=((-200.0, 200.0), (0.0, 400.0), (-200.0, 200.0)),
        target=((-50.0, 50.0), (0.0, 5.0), (-50.0, 50.0)),
        isocenter_mm=(2.5, 0.0, 2.5),
    )


def four_field_box() -> Case:
    """A 15 x 15 x 8 cm water box on a 5 mm grid, a 3 cm cubic target, fields at 0/90/180/270."""
    grid = grid_covering(((-80.0, 80.0), (-80.0, 80.0), (-40.0, 40.0)), (5.0, 5.0, 5.0))
    return water_case(
        grid,
        body=((-75.0, 75.0), (-75.0, 75.0), (-40.0, 40.0)),
        target=((-15.0, 15.0), (-15.0, 15.0), (-15.0, 15.0)),
        beams=(Beam(0.0), Beam(90.0), Beam(180.0), Beam(270.0)),
        margin_mm=5.0,
    )
