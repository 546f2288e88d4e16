"""Liver SBRT phantom (50 Gy / 5 fx, 7-field IMRT).

Upper abdomen and lower thorax: liver under the right hemidiaphragm, lungs above the
domes, stomach in the left upper quadrant with its antrum passing under the liver,
vertebra with the spinal cord, ribs. The tumour (PTV 150-210 cm3) lies in the posterior
right lobe next to the spine, so the cord limit trades against coverage; the seed sets its
size and position and how close the stomach antrum comes to the PTV.
"""

from __future__ import annotations

import numpy as np

from mock_tps.case import BeamSet, Case, Prescription
from mock_tps.phantoms.common import (
    BONE,
    LUNG,
    Jitter,
    assemble,
    grid_from_bounds,
    lofted_body,
    new_parts,
)
from mock_tps.phantoms.shapes import (
    arc,
    capsule,
    ellipsoid,
    elliptic_cylinder,
    empty,
    expand,
    rotation_matrix,
    spline,
    tube,
)

RX_GY = 50.0
FRACTIONS = 5
PTV_MARGIN_MM = 5.0


def build_liver(seed: int, spacing_mm: float) -> Case:
    """The liver case."""
    j = Jitter(seed)
    z_lo, z_hi = -85.0, 95.0
    grid = grid_from_bounds((-170.0, -120.0, z_lo), (170.0, 125.0, z_hi), spacing_mm)
    ax, ay = j.scale(158.0, 0.05), j.scale(112.0, 0.05)
    body = lofted_body(grid, [z_lo, z_hi], [(2.0, ax, ay), (4.0, ax * 0.97, ay * 0.98)])
    parts = new_parts(grid, body)

    # Diaphragm: below the two domes is abdomen, above is thorax.
    dome_r = ellipsoid(grid, (-55.0, 5.0, -40.0), (120.0, 125.0, j.scale(112.0, 0.05)))
    dome_l = ellipsoid(grid, (60.0, 5.0, -40.0), (110.0, 125.0, j.scale(95.0, 0.05)))
    abdomen = dome_r | dome_l
    cavity = lofted_body(
        grid, [z_lo, z_hi], [(8.0, ax - 16.0, ay - 20.0), (8.0, ax - 18.0, ay - 20.0)]
    )
    heart = ellipsoid(grid, (22.0, -28.0, 112.0), (60.0, 48.0, 55.0))
    spine_block = elliptic_cylinder(grid, (0.0, 55.0), (32.0, 48.0), (z_lo, z_hi))
    lung = cavity & ~abdomen & ~heart & ~spine_block
    parts.paint(lung, LUNG)

    # Vertebrae, spinal canal and cord, ribs.
    vb = elliptic_cylinder(grid, (0.0, 45.0), (22.0, 19.0), (z_lo, z_hi))
    canal_c = (0.0, 76.0)
    canal = elliptic_cylinder(grid, canal_c, (8.0, 7.5), (z_lo, z_hi))
    arch = elliptic_cylinder(grid, canal_c, (17.0, 15.0), (z_lo, z_hi)) & ~canal
    arch |= capsule(grid, (0.0, 88.0, z_lo), (0.0, 88.0, z_hi), 6.0)
    spine = vb | arch
    cord = tube(
        grid,
        [(j.offset(1.0), canal_c[1] + j.offset(1.0), z) for z in (z_lo, 0.0, z_hi)],
        j.scale(5.0, 0.1),
    )
    ribs = empty(grid)
    for z in np.arange(z_lo + 12.0, z_hi, 26.0):
        for side in (1.0, -1.0):
            start, stop = (-80.0, 50.0) if side > 0 else (-100.0, -230.0)
            pts = arc((0.0, 6.0, float(z)), (ax - 10.0, ay - 12.0), start, stop, 14)
            pts[:, 2] -= np.linspace(0.0, 22.0, len(pts))  # ribs slope down anteriorly
            ribs |= tube(grid, pts, 4.5)
    parts.paint(spine | ribs, BONE)

    # Liver: right lobe under the right dome, left lobe across the midline, anteriorly.
    liver = ellipsoid(grid, (-62.0, 2.0, -5.0), j.scale3((74.0, 74.0, 70.0), 0.08))
    liver |= ellipsoid(
        grid,
        (j.scale(12.0, 0.3), -48.0, 12.0),
        j.scale3((56.0, 30.0, 40.0), 0.1),
        rotation_matrix(rz_deg=j.offset(10.0)),
    )
    liver &= dome_r | (dome_l & ellipsoid(grid, (30.0, -40.0, 10.0), (90.0, 60.0, 80.0)))
    liver &= ~expand(spine_block | vb, grid, 6.0) & ~ribs & cavity

    # Tumour in the posterior right lobe (segments 6-7), beside the vertebral body.
    g_semi = j.scale3((33.0, 30.0, 31.0), 0.1)
    g_c = (j.uniform(-56.0, -50.0), j.uniform(36.0, 43.0), j.uniform(-20.0, -5.0))
    gtv = ellipsoid(
        grid, g_c, g_semi, rotation_matrix(j.offset(30.0), j.offset(30.0), j.offset(30.0))
    )
    ptv = expand(gtv, grid, PTV_MARGIN_MM)

    # Stomach: body under the left dome; antrum runs to the pylorus just below the tumour.
    gap = j.uniform(-3.0, 8.0)  # antrum wall to PTV surface (mm); < 0 means overlap
    r_antrum = j.scale(16.0, 0.1)
    pylorus_z = g_c[2] - g_semi[2] - PTV_MARGIN_MM - r_antrum - gap
    stomach_path = spline(
        [
            (75.0, 15.0, 40.0),
            (70.0, -15.0, 5.0),
            (45.0, -45.0, pylorus_z - 8.0),
            (g_c[0] + 10.0, g_c[1] - 4.0, pylorus_z),
            (g_c[0] - 10.0, g_c[1] + 4.0, pylorus_z),
            (g_c[0] - 25.0, g_c[1] + 10.0, pylorus_z + 2.0),
        ],
        18,
    )
    radii = np.interp(np.linspace(0, 1, len(stomach_path)), [0, 0.35, 1], [32.0, 24.0, r_antrum])
    stomach = tube(grid, stomach_path, radii) & abdomen
    liver &= ~stomach
    liver |= gtv  # the tumour is in the liver

    parts.add("PTV", "PTV", ptv)
    parts.add("Liver", "ORGAN", liver)
    parts.add("Liver-PTV", "ORGAN", liver & ~ptv)
    parts.add("BODY-PTV", "CONTROL", body & ~ptv)  # derived for the template's spillage goal
    parts.add("SpinalCord", "ORGAN", cord)
    parts.add("Stomach", "ORGAN", stomach)
    rx = Prescription(total_dose_gy=RX_GY, fractions=FRACTIONS, target_id="PTV")
    return assemble(
        parts, scenario="liver", seed=seed, prescription=rx, beams=lambda iso: BeamSet.imrt(7, iso)
    )
