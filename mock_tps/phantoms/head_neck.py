"""Oropharynx head-and-neck phantom (70 Gy to PTV70 and 56 Gy to PTV56 in 35 fx, 9-field IMRT).

Origin near the primary tumour (tonsil / base of tongue, level of C2). The seed picks the
tumour side, its size and the involved node; elective nodal levels II-IV on both sides
make up PTV56, which excludes PTV70 plus a 3 mm gap. Airway air, mandible, cervical spine
and skull base are heterogeneities. Derived for the hot-spot goals: ``PTV56-PTV70+10mm``
(PTV56 beyond 1 cm from PTV70) and ``BODY-PTV`` (the body outside all PTVs).
"""

from __future__ import annotations

import numpy as np

from mock_tps.case import BeamSet, Case, Prescription
from mock_tps.phantoms.common import (
    AIR,
    BONE,
    BONE_CORTICAL,
    Jitter,
    assemble,
    crop_from_skin,
    grid_from_bounds,
    lofted_body,
    new_parts,
)
from mock_tps.phantoms.shapes import (
    capsule,
    ellipsoid,
    elliptic_cylinder,
    expand,
    half_space,
    rotation_matrix,
    spline,
    tube,
)

RX_GY = 70.0
ELECTIVE_GY = 56.0
FRACTIONS = 35
PTV_MARGIN_MM = 4.0
PTV56_GAP_MM = 3.0  # PTV56 keeps this distance from PTV70
PTV56_FAR_MM = 10.0  # PTV56-PTV70+10mm: the part of PTV56 beyond this distance from PTV70
SKIN_CROP_MM = 4.0


def build_head_neck(seed: int, spacing_mm: float) -> Case:
    """The head-and-neck case."""
    j = Jitter(seed)
    z_lo, z_hi = -125.0, 95.0
    grid = grid_from_bounds((-80.0, -104.0, z_lo), (80.0, 100.0, z_hi), spacing_mm)
    s = j.scale(1.0, 0.05)  # patient size
    body = lofted_body(
        grid,
        [z_lo, -70.0, -35.0, 0.0, 40.0, z_hi],
        [
            (30.0, 64.0 * s, 62.0 * s),
            (26.0, 58.0 * s, 63.0 * s),
            (10.0, 62.0 * s, 80.0 * s),
            (0.0, 68.0 * s, 88.0 * s),
            (-6.0, 72.0 * s, 92.0 * s),
            (-6.0, 72.0 * s, 92.0 * s),
        ],
    )
    parts = new_parts(grid, body)

    # Cervical spine, canal, cord and brainstem.
    canal_y = 40.0
    vb = elliptic_cylinder(grid, (0.0, 20.0), (16.0, 13.0), (z_lo, 32.0))
    canal = elliptic_cylinder(grid, (0.0, canal_y), (9.0, 8.0), (z_lo, 40.0))
    arch = (elliptic_cylinder(grid, (0.0, canal_y), (18.0, 16.0), (z_lo, 30.0)) & ~canal) | capsule(
        grid, (0.0, canal_y + 17.0, z_lo), (0.0, canal_y + 17.0, 30.0), 5.0
    )
    cord_pts = [(j.offset(1.0), canal_y + j.offset(1.0), z) for z in (z_lo, -40.0, 34.0)]
    cord = tube(grid, cord_pts, j.scale(5.0, 0.1))
    brainstem = tube(
        grid,
        spline(
            [(0.0, 38.0, 33.0), (j.offset(2.0), 32.0 + j.offset(2.0), 55.0), (0.0, 22.0, 82.0)], 8
        ),
        np.array([9.5, 12.0, 13.0]) * j.scale(1.0, 0.08),
    )
    brainstem &= ~cord
    # Skull: vault, occiput and the posterior skull base, foramen magnum left open.
    head_c = (0.0, -6.0, 60.0)
    head_in = ellipsoid(grid, head_c, (64.0 * s, 84.0 * s, 88.0))
    skull = ellipsoid(grid, head_c, (70.0 * s, 90.0 * s, 94.0)) & ~head_in
    skull |= head_in & elliptic_cylinder(grid, (0.0, 45.0), (55.0, 32.0), (30.0, 38.0))
    skull &= half_space(grid, (0.0, -10.0, 0.0), (0.0, 1.0, 0.0)) | half_space(
        grid, (0.0, 0.0, 62.0), (0.0, 0.0, 1.0)
    )
    skull &= ~elliptic_cylinder(grid, (0.0, canal_y), (16.0, 16.0), (20.0, 45.0)) & ~brainstem
    skull &= half_space(grid, (0.0, 0.0, 28.0), (0.0, 0.0, 1.0))

    # Mandible: a U of two stacked tubes (body) and the rami up to the condyles.
    jaw = j.scale(1.0, 0.06)
    u_pts = [
        (-48.0 * jaw, -2.0, -18.0),
        (-40.0 * jaw, -36.0, -28.0),
        (-20.0 * jaw, -56.0, -34.0),
        (0.0, -62.0 * jaw, -36.0),
        (20.0 * jaw, -56.0, -34.0),
        (40.0 * jaw, -36.0, -28.0),
        (48.0 * jaw, -2.0, -18.0),
    ]
    u = spline(u_pts, 24)
    mandible = tube(grid, u, 6.5) | tube(grid, u + np.array([0.0, 0.0, -11.0]), 6.5)
    for sd in (-1.0, 1.0):
        mandible |= tube(
            grid, [(sd * 48.0 * jaw, -2.0, -18.0), (sd * 52.0 * jaw, 2.0, 28.0)], [7.0, 5.5]
        )
    oral = ellipsoid(grid, (0.0, -33.0, -15.0), j.scale3((26.0, 25.0, 14.0), 0.1)) & ~mandible

    airway_pts = spline(
        [
            (0.0, -8.0, 45.0),
            (0.0, -2.0, 10.0),
            (0.0, -4.0, -25.0),
            (0.0, -16.0, -55.0),
            (0.0, -12.0, z_lo),
        ],
        20,
    )
    airway = tube(grid, airway_pts, [8.0] * 8 + [6.5] * 12)
    larynx_c = (j.offset(2.0), -16.0, -55.0 + j.offset(4.0))
    larynx = ellipsoid(grid, larynx_c, j.scale3((19.0, 16.0, 21.0), 0.1))

    # Parotids behind the mandibular rami (deep lobe medial), seeded size and tilt.
    parotids: dict[str, np.ndarray] = {}
    for name, sd in (("Parotid_L", 1.0), ("Parotid_R", -1.0)):
        c = (sd * j.scale(54.0, 0.04), j.scale(18.0, 0.15), j.scale(28.0, 0.1))
        p = ellipsoid(grid, c, j.scale3((12.0, 18.0, 21.0), 0.1), rotation_matrix(ry_deg=sd * 15.0))
        p |= ellipsoid(grid, (sd * 41.0, c[1] - 6.0, c[2] + 2.0), (7.0, 9.0, 11.0))
        parotids[name] = p & ~mandible & ~arch

    # Targets: primary on the seeded side plus one ipsilateral level II node.
    side = 1.0 if j.uniform(0.0, 1.0) < 0.5 else -1.0
    g_c = (side * j.uniform(10.0, 16.0), j.uniform(-10.0, -4.0), j.offset(4.0))
    g_rot = rotation_matrix(rz_deg=j.offset(20.0))
    gtv = ellipsoid(grid, g_c, j.scale3((18.0, 16.0, 22.0), 0.14), g_rot)
    n_c = (side * j.uniform(36.0, 42.0), j.uniform(-6.0, 6.0), j.uniform(-30.0, -12.0))
    gtv |= ellipsoid(grid, n_c, j.scale3((12.0, 12.0, 14.0), 0.15))
    bone = vb | arch | mandible
    ctv70 = expand(gtv, grid, 5.0) & ~bone
    ptv70 = crop_from_skin(expand(ctv70, grid, PTV_MARGIN_MM), parts, SKIN_CROP_MM)

    ctv56 = expand(gtv, grid, 10.0) & ~bone & ~canal
    for sd in (-1.0, 1.0):
        top = 16.0 + j.offset(4.0)
        chain = spline(
            [
                (sd * 36.0, 6.0, top),
                (sd * 38.0, 4.0, -10.0),
                (sd * 38.0, -2.0, -50.0),
                (sd * 34.0, -6.0, -88.0 + j.offset(4.0)),
            ],
            12,
        )
        ctv56 |= tube(grid, chain, np.linspace(17.0, 13.0, len(chain))) & ~bone
    ptv56 = expand(ctv56, grid, PTV_MARGIN_MM) & ~expand(ptv70, grid, PTV56_GAP_MM)
    ptv56 = crop_from_skin(ptv56, parts, SKIN_CROP_MM)

    parts.paint(vb | arch | skull, BONE)
    parts.paint(mandible, BONE_CORTICAL)
    parts.paint(airway, AIR)

    parts.add("PTV70", "PTV", ptv70)
    parts.add("PTV56", "PTV", ptv56)
    parts.add("Parotid_L", "ORGAN", parotids["Parotid_L"])
    parts.add("Parotid_R", "ORGAN", parotids["Parotid_R"])
    parts.add("SpinalCord", "ORGAN", cord)
    parts.add("Brainstem", "ORGAN", brainstem)
    parts.add("Cavity_Oral", "ORGAN", oral)
    parts.add("Larynx", "ORGAN", larynx)
    parts.add("Bone_Mandible", "ORGAN", mandible)
    # derived structures of the template's hot-spot goals
    parts.add("PTV56-PTV70+10mm", "CONTROL", ptv56 & ~expand(ptv70, grid, PTV56_FAR_MM))
    parts.add("BODY-PTV", "CONTROL", body & ~(ptv70 | ptv56))
    rx = Prescription(
        total_dose_gy=RX_GY,
        fractions=FRACTIONS,
        target_id="PTV70",
        dose_levels_gy={"PTV56": ELECTIVE_GY},
    )
    return assemble(
        parts,
        scenario="head-and-neck",
        seed=seed,
        prescription=rx,
        beams=lambda iso: BeamSet.imrt(9, iso),
    )
