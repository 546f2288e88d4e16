"""Cervix phantom (36 Gy / 20 fx, 2 VMAT arcs of 60 control points each).

Origin at the cervix. The CTV is cervix, uterus, parametria and upper vagina plus the
pelvic lymph-node regions along the iliac vessels and the presacral space; PTV = CTV + 7 mm.
Small bowel fills the space above the bladder and between the node chains, so it wraps the
PTV; the seed sets how deep it reaches into the PTV margin. Rings R2-R4 are the voxels at
5-30, 10-30 and 15-30 mm from the PTV.
"""

from __future__ import annotations

import numpy as np

from mock_tps.case import BeamSet, Case, Prescription
from mock_tps.phantoms.common import (
    BONE_SPONGY,
    VMAT_BEAMLET_MM,
    Jitter,
    assemble,
    grid_from_bounds,
    new_parts,
)
from mock_tps.phantoms.pelvis import pelvic_body, pelvic_bones, rectum_path
from mock_tps.phantoms.shapes import (
    capsule,
    distance_mm,
    ellipsoid,
    expand,
    ring,
    rotation_matrix,
    spline,
    tube,
)

RX_GY = 36.0
FRACTIONS = 20
PTV_MARGIN_MM = 7.0
RINGS_MM = {"R2": (5.0, 30.0), "R3": (10.0, 30.0), "R4": (15.0, 30.0)}


def build_cervix(seed: int, spacing_mm: float) -> Case:
    """The cervix case."""
    j = Jitter(seed)
    z_lo, z_hi = -85.0, 135.0
    grid = grid_from_bounds((-165.0, -110.0, z_lo), (165.0, 124.0, z_hi), spacing_mm)
    zf = j.uniform(-8.0, 0.0)
    body = pelvic_body(grid, j, 145.0, 100.0, zf)
    parts = new_parts(grid, body)
    bones = pelvic_bones(grid, j, zf=zf, yf=-12.0 + j.offset(3.0))
    for mask in (bones.pelvis, bones.femora, bones.femur_head_l, bones.femur_head_r):
        parts.paint(mask, BONE_SPONGY)
    bone = bones.pelvis | bones.femora | bones.femur_head_l | bones.femur_head_r

    # Primary CTV: cervix, anteverted uterus, parametria, upper vagina.
    cervix_semi = j.scale3((22.0, 20.0, 24.0), 0.12)
    ctv = ellipsoid(grid, (0.0, 8.0, 0.0), cervix_semi)
    ante = 35.0 + j.offset(12.0)
    uterus_c = (
        j.offset(6.0),
        8.0 - 40.0 * np.sin(np.radians(ante)),
        14.0 + 40.0 * np.cos(np.radians(ante)),
    )
    ctv |= ellipsoid(
        grid, uterus_c, j.scale3((32.0, 22.0, 36.0), 0.12), rotation_matrix(rx_deg=-ante)
    )
    for sd in (1.0, -1.0):
        ctv |= ellipsoid(grid, (sd * 30.0, 10.0, 2.0), j.scale3((18.0, 14.0, 16.0), 0.15))
    ctv |= capsule(grid, (0.0, 10.0, -18.0), (0.0, 16.0, -38.0 + j.offset(4.0)), 13.0)

    # Nodal CTV: vessels + 7 mm along the common, external and internal iliac chains.
    top = j.uniform(92.0, 102.0)
    for sd in (1.0, -1.0):
        bif = (sd * 32.0, 34.0, top - 20.0)
        ext = spline(
            [
                (sd * 18.0, 40.0, top),
                bif,
                (sd * 52.0, 10.0, 50.0),
                (sd * 66.0, -16.0, 15.0),
                (sd * 70.0, -24.0, -8.0),
            ],
            16,
        )
        internal = spline(
            [bif, (sd * 50.0, 42.0, 45.0), (sd * 56.0, 32.0, 10.0), (sd * 50.0, 20.0, -10.0)], 12
        )
        ctv |= tube(grid, ext, 15.0) | tube(grid, internal, 14.0)
        ctv |= capsule(grid, (sd * 58.0, 4.0, 12.0), (sd * 58.0, 20.0, -8.0), 13.0)  # obturator
    ctv |= capsule(grid, (0.0, 46.0, 40.0), (0.0, 44.0, top - 20.0), 13.0)  # presacral
    ctv &= ~bone
    ptv = expand(ctv, grid, PTV_MARGIN_MM) & ~bone & ~bones.spinal_canal

    # Bladder anterior-inferior of the uterus; rectum and sigmoid behind the cervix.
    b_semi = j.scale3((40.0, 30.0, 30.0), 0.12)
    bladder = ellipsoid(grid, (j.offset(5.0), -34.0 + j.offset(4.0), 2.0 + j.offset(5.0)), b_semi)
    bladder &= ~ctv & ~bone
    r_rad = j.scale(14.0, 0.1)
    path = rectum_path(j, 8.0 + cervix_semi[1] + j.uniform(-2.0, 3.0), r_rad, z_lo + 20.0, 70.0)
    rectum = tube(grid, path, np.linspace(0.85 * r_rad, r_rad, len(path))) & ~ctv & ~bladder & ~bone

    # Small bowel: the abdominal cavity above the pelvic organs, kept `gap` mm off the CTV.
    gap = j.uniform(2.0, 6.0)
    bowel = ellipsoid(grid, (j.offset(8.0), -18.0, 112.0), (118.0, 72.0, 95.0))
    bowel &= ellipsoid(grid, (0.0, 0.0, 40.0), (200.0, 200.0, 200.0)) & ~bone
    d_ctv = distance_mm(ctv, grid, gap)
    bowel &= ~(d_ctv <= gap) & ~expand(bladder | rectum, grid, 2.0)
    bowel &= ~expand(bones.pelvis, grid, 6.0)  # iliacus / psoas along the bones

    ptv = parts.add("PTV", "PTV", ptv)
    parts.add("Bladder", "ORGAN", bladder)
    parts.add("Rectum", "ORGAN", rectum)
    parts.add("Bowel_Small", "ORGAN", bowel)
    parts.add("Bone_Marrow", "ORGAN", bones.pelvis)
    parts.add("SpinalCord", "ORGAN", bones.spinal_canal)
    parts.add("Femur_Head_L", "ORGAN", bones.femur_head_l)
    parts.add("Femur_Head_R", "ORGAN", bones.femur_head_r)
    d_ptv = distance_mm(ptv, grid, max(outer for _, outer in RINGS_MM.values()))
    for ring_id, (inner, outer) in RINGS_MM.items():
        parts.add(ring_id, "CONTROL", ring(ptv, grid, inner, outer, distance=d_ptv))
    rx = Prescription(total_dose_gy=RX_GY, fractions=FRACTIONS, target_id="PTV")
    return assemble(
        parts,
        scenario="cervix",
        seed=seed,
        prescription=rx,
        beams=lambda iso: BeamSet.vmat(120, iso, arcs=2, beamlet_size_mm=VMAT_BEAMLET_MM),
    )
