"""Pelvic anatomy shared by the prostate and cervix phantoms: body, pelvic bones, femora, rectum.

Coordinates are relative to the femoral-head level: ``zf`` is the z of the femoral-head
centres and ``yf`` their y (mm). Left is +x (DICOM patient coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mock_tps.grid import Grid
from mock_tps.phantoms.common import Jitter, lofted_body
from mock_tps.phantoms.shapes import (
    BoolArray,
    c_shape,
    capsule,
    ellipsoid,
    empty,
    expand,
    spline,
    tube,
)


@dataclass
class PelvicBones:
    """Bone masks of the pelvis."""

    femur_head_l: BoolArray  # head and neck (the RT structure)
    femur_head_r: BoolArray
    femora: BoolArray  # trochanters and shafts (density only)
    pelvis: BoolArray  # ilium, sacrum, acetabula, pubis, ischium, lumbar vertebrae
    spinal_canal: BoolArray  # thecal sac in the lumbar spine and sacrum


def pelvic_body(grid: Grid, j: Jitter, semi_x_mm: float, semi_y_mm: float, zf: float) -> BoolArray:
    """An elliptic pelvis, slightly wider at the hips than at the waist (seeded)."""
    ax, ay = j.scale(semi_x_mm, 0.06), j.scale(semi_y_mm, 0.06)
    cy = j.offset(4.0) + 8.0
    return lofted_body(
        grid,
        [zf - 120.0, zf, zf + 150.0],
        [(cy, ax * 1.02, ay * 1.02), (cy, ax, ay), (cy - 4.0, ax * 0.93, ay * 0.96)],
    )


def pelvic_bones(grid: Grid, j: Jitter, zf: float, yf: float) -> PelvicBones:
    """Femoral heads, femora and pelvic girdle around femoral heads at ``(+-xf, yf, zf)``."""
    xf = j.scale(90.0, 0.06)
    r_head = j.scale(24.0, 0.08)
    heads: list[BoolArray] = []
    femora = empty(grid)
    acetabula = empty(grid)
    for side in (1.0, -1.0):  # left (+x) first
        c = np.array([side * xf, yf + j.offset(2.0), zf + j.offset(2.0)])
        head = ellipsoid(grid, c, (r_head, r_head, r_head))
        troch = c + np.array([side * 38.0, 6.0, -28.0])
        head |= capsule(grid, c, troch, 0.6 * r_head)
        heads.append(head)
        shaft_end = troch + np.array([-side * 12.0, 4.0, -200.0])
        femora |= capsule(grid, troch, troch + np.array([side * 6.0, 0.0, 6.0]), 17.0)
        femora |= capsule(grid, troch, shaft_end, 14.0)
        shell = ellipsoid(grid, c, (r_head + 11.0,) * 3) & ~expand(head, grid, 1.5)
        medial_up = ellipsoid(grid, c - np.array([side * 20.0, 0, -12.0]), (r_head + 18.0,) * 3)
        acetabula |= shell & medial_up
    femora &= ~(heads[0] | heads[1])

    cy = yf + 28.0
    pelvis = acetabula.copy()
    ring_levels = ((zf + 18.0, zf + 60.0, 72.0), (zf + 60.0, zf + 100.0, 92.0))
    for z0, z1, r in ring_levels:  # ilium: a C in axial slices, open anteriorly
        pelvis |= c_shape(
            grid, (0.0, cy), (r, r * 0.72), (r + 14.0, r * 0.72 + 12.0), (z0, z1), -90.0, 62.0
        )
    pelvis |= c_shape(
        grid, (0.0, cy), (112.0, 80.0), (126.0, 92.0), (zf + 100.0, zf + 400.0), -90.0, 55.0
    )
    sacrum_pts = spline(
        [
            (0.0, yf + 58.0, zf - 30.0),
            (0.0, yf + 76.0, zf + 20.0),
            (0.0, yf + 84.0, zf + 70.0),
            (0.0, yf + 70.0, zf + 125.0),
        ],
        12,
    )
    pelvis |= tube(grid, sacrum_pts, np.linspace(8.0, 22.0, len(sacrum_pts)))
    for side in (1.0, -1.0):  # sacral ala joining the ilium, pubis, ischium
        pelvis |= capsule(
            grid, (0.0, yf + 78.0, zf + 95.0), (side * 62.0, yf + 76.0, zf + 85.0), 14.0
        )
        pelvis |= tube(
            grid,
            [
                (side * (xf - 18.0), yf - 10.0, zf + 6.0),
                (side * 38.0, yf - 38.0, zf - 4.0),
                (side * 8.0, yf - 48.0, zf - 14.0),
                (side * 8.0, yf - 44.0, zf - 38.0),
                (side * 42.0, yf - 12.0, zf - 48.0),
                (side * 52.0, yf + 20.0, zf - 46.0),
                (side * (xf - 28.0), yf + 18.0, zf - 8.0),
            ],
            9.0,
        )
    # lumbar vertebra above the sacrum, with its canal
    vb_c = (0.0, yf + 54.0)
    pelvis |= ellipsoid(grid, (vb_c[0], vb_c[1], zf + 175.0), (24.0, 18.0, 45.0))
    canal_pts = spline(
        [
            (0.0, yf + 88.0, zf + 60.0),
            (0.0, yf + 92.0, zf + 100.0),
            (0.0, yf + 84.0, zf + 140.0),
            (0.0, yf + 80.0, zf + 400.0),
        ],
        12,
    )
    canal = tube(grid, canal_pts, 7.0)
    pelvis |= tube(grid, canal_pts[4:], 15.0) & ~canal  # laminae around the canal
    pelvis &= ~(heads[0] | heads[1] | femora | canal)
    return PelvicBones(heads[0], heads[1], femora, pelvis, canal)


def rectum_path(
    j: Jitter, y_anterior_wall: float, radius_mm: float, z_low: float, z_high: float
) -> np.ndarray:
    """Centre line of the rectum: straight behind the target, curving back along the sacrum."""
    y0 = y_anterior_wall + radius_mm
    span = z_high - z_low
    ctrl = [
        (j.offset(2.0), y0 + 6.0, z_low),
        (j.offset(2.0), y0 + j.offset(1.5), z_low + 0.3 * span),
        (j.offset(3.0), y0 + j.offset(1.5), z_low + 0.55 * span),
        (j.offset(5.0), y0 + 10.0 + j.offset(3.0), z_low + 0.8 * span),
        (j.offset(8.0) + 8.0, y0 + 18.0 + j.offset(4.0), z_high),
    ]
    return spline(ctrl, 20)
