"""Prostate phantoms (79.2 Gy / 44 fx): 7-field IMRT (basic) and a 180-control-point arc (complex).

Origin at the prostate centre. The CTV is prostate plus proximal seminal vesicles; the PTV
is the CTV + 7 mm. A part-filled bladder (superior-anterior) presses on the prostate base and
the rectum's anterior wall (posterior) presses on the gland, so they overlap the PTV by a
seeded 12-17 % and 7-11 % of their volume: the dose-volume limits then trade against
coverage and hot spot, as in clinical plans.
"""

from __future__ import annotations

import numpy as np

from mock_tps.case import BeamSet, Case, Prescription
from mock_tps.phantoms.common import (
    BONE,
    VMAT_BEAMLET_MM,
    Jitter,
    assemble,
    grid_from_bounds,
    new_parts,
)
from mock_tps.phantoms.pelvis import pelvic_body, pelvic_bones, rectum_path
from mock_tps.phantoms.shapes import ellipsoid, expand, rotation_matrix, tube

RX_GY = 79.2
FRACTIONS = 44
PTV_MARGIN_MM = 7.0
FOV_MARGIN_Z_MM = 50.0
#: How far the bladder base presses into the prostate (mm) and the rectum's anterior wall
#: gap to it (negative: pressed in). They set the OARs' overlap with the PTV, and so how hard
#: the case is: calibrated so that a class-solution start leaves headroom (bench.calibration).
BLADDER_INDENT_MM = (12.0, 18.0)
RECTUM_GAP_MM = (-8.5, -6.0)
#: Bladder half-widths (x, y, z) in mm before the seeded scaling (a part-filled bladder).
BLADDER_SEMI_MM = (38.0, 31.0, 28.0)


def build_prostate(seed: int, spacing_mm: float, *, vmat: bool) -> Case:
    """The prostate case; ``vmat`` selects the 180-control-point arc (prostate-complex)."""
    j = Jitter(seed)
    semi = j.scale3((25.0, 19.0, 22.0), 0.1)  # prostate half-widths (x, y, z)
    sv_len = j.scale(10.0, 0.15)
    z_lo = -semi[2] - PTV_MARGIN_MM - FOV_MARGIN_Z_MM
    z_hi = semi[2] + 2 * sv_len + PTV_MARGIN_MM + FOV_MARGIN_Z_MM
    half_x, half_y = 172.0, 125.0
    grid = grid_from_bounds(
        (-half_x, -half_y + 8.0, z_lo), (half_x, half_y + 8.0, z_hi), spacing_mm
    )

    zf = j.scale(24.0, 0.15)  # femoral heads above the mid-gland
    body = pelvic_body(grid, j, 156.0, 108.0, zf)
    parts = new_parts(grid, body)
    bones = pelvic_bones(grid, j, zf=zf, yf=-4.0 + j.offset(3.0))
    for mask in (bones.pelvis, bones.femora, bones.femur_head_l, bones.femur_head_r):
        parts.paint(mask, BONE)

    tilt = rotation_matrix(rx_deg=j.offset(12.0), rz_deg=j.offset(8.0))
    prostate = ellipsoid(grid, (0.0, 0.0, 0.0), semi, tilt)
    sv_c = (j.offset(2.0), semi[1] * 0.55, semi[2] + sv_len * 0.7)
    sv_rot = rotation_matrix(rx_deg=-35.0 + j.offset(10.0), rz_deg=j.offset(10.0))
    sv = ellipsoid(grid, sv_c, (j.scale(22.0, 0.15), 6.5, sv_len), sv_rot)
    ctv = prostate | sv
    ptv = expand(ctv, grid, PTV_MARGIN_MM)

    # Bladder: rests on the prostate base; the indent sets its overlap with the PTV.
    b_semi = j.scale3(BLADDER_SEMI_MM, 0.12)
    b_indent = j.uniform(*BLADDER_INDENT_MM)
    b_c = (j.offset(4.0), -semi[1] * 0.6 + j.offset(3.0), semi[2] + b_semi[2] - b_indent)
    bladder = ellipsoid(grid, b_c, b_semi, rotation_matrix(rx_deg=j.offset(15.0)))
    bladder |= ellipsoid(  # a second lobe makes the dome less regular
        grid,
        (b_c[0] + j.offset(12.0), b_c[1] + j.offset(8.0), b_c[2] + 0.35 * b_semi[2]),
        (0.75 * b_semi[0], 0.75 * b_semi[1], 0.7 * b_semi[2]),
    )
    bladder &= ~ctv

    # Rectum: a tube whose anterior wall touches (or nearly touches) the prostate.
    r_rad = j.scale(14.5, 0.12)
    gap = j.uniform(*RECTUM_GAP_MM)
    path = rectum_path(j, semi[1] + gap, r_rad, z_lo + 22.0, semi[2] + 2 * sv_len + 30.0)
    rectum = tube(grid, path, np.linspace(0.8 * r_rad, r_rad, len(path))) & ~ctv & ~bladder

    parts.add("PTV", "PTV", ptv)
    parts.add("Bladder", "ORGAN", bladder)
    parts.add("Rectum", "ORGAN", rectum)
    parts.add("Femur_Head_L", "ORGAN", bones.femur_head_l)
    parts.add("Femur_Head_R", "ORGAN", bones.femur_head_r)

    scenario = "prostate-complex" if vmat else "prostate-basic"
    rx = Prescription(total_dose_gy=RX_GY, fractions=FRACTIONS, target_id="PTV")
    # VMAT: a control point's aperture is one MLC shape, not a free fluence map, so a coarser
    # beamlet (VMAT_BEAMLET_MM) per control point keeps the degrees of freedom (and D_ij) realistic.
    beams = (
        (lambda iso: BeamSet.vmat(180, iso, beamlet_size_mm=VMAT_BEAMLET_MM))
        if vmat
        else (lambda iso: BeamSet.imrt(7, iso))
    )
    return assemble(parts, scenario=scenario, seed=seed, prescription=rx, beams=beams)
