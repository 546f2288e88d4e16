"""Brain SRS phantom (20 Gy / 1 fx, 9 non-coplanar IMRT fields, HD120 MLC: 2.5 mm beamlets).

Head with skull, brain, brainstem, optic apparatus and cochleae. ``1 + seed % 3``
metastases (so seeds 0, 1, 2 give 1, 2, 3 targets); PTV = GTV + 1 mm. PTV1 is the largest
and, depending on the seed, lies 3-9 mm from the brainstem or the chiasm.

Beamlets: 2.5 mm, the central leaf width of a Varian HD120 (:data:`mock_tps.beams.HD120`). Its
2.5 mm leaves span only |v| <= 40 mm at the isocenter; the isocenter is the targets' centroid, and
on the seeds with metastases far apart some beamlets lie where an HD120 has 5 mm leaves (seeds
2, 4, 5 and 8 of 0-9: 2-14 % of their beamlets, up to 22 % of a field's; target voxels up to
52 mm off axis across the leaves): there the plan is finer than the machine (no collimator
rotation is modelled; ``HD120.coarse_leaf_share`` counts them).

Dose grid: 1.25 mm by default (``DEFAULT_SPACING_MM``; 1-5 mm accepted), cropped to the head: the
body's bounding box plus 2 mm, from the vertex down to z = -66 mm (the foramen magnum), where BODY,
Brainstem and Brain (it holds the brainstem) end by construction. Every structure therefore lies whole on the grid and every DVH
counts all of its voxels; the volumes are those of the structures as contoured. A tighter crop, a
margin around the metastases, was considered and rejected: it would cut Brain, Brain-PTV, BODY and
the organs at risk (their DVHs would miss voxels: wrong volumes, wrong V12Gy and gradient index),
rays would start at the crop face instead of the scalp (radiological depth too short), and it would
save little, since the dominant cost, the primary entries, lies along the beams' paths from scalp
to scalp, which such a crop keeps. Measured on seeds 0-9 at 1.25 mm (engine pencil-beam-2 of commit
68d2415, 2 cores): 1.3-1.5 M body voxels, 13-74 M primary non-zeros, cold dose influence 5-18 s,
peak RSS 1.1-1.9 GB (1 mm: 2.3x the non-zeros and 3.7 GB on seed 2, above the 3 GB budget).

The metastases are drawn and placed on a 2 mm grid (:data:`PLACEMENT_SPACING_MM`) whatever the
case's grid, so a seed is the same patient at every spacing (the one the former 2 mm default gave).

Known simplification: the head ends flat at z = -66 mm; a non-coplanar field whose ray to a target
would enter the head below it enters through that face, with a shorter depth (one or two fields of
one target on seeds 4, 5, 7 and 9 of 0-9, entering 1-17 mm below it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import Technique
from mock_tps.beams import HD120
from mock_tps.case import Beam, BeamSet, Case, Prescription
from mock_tps.grid import Grid
from mock_tps.phantoms.common import (
    BONE_CORTICAL,
    CaseParts,
    Jitter,
    assemble,
    grid_from_bounds,
    new_parts,
)
from mock_tps.phantoms.shapes import (
    BoolArray,
    Vec3,
    capsule,
    distance_mm,
    ellipsoid,
    expand,
    inner_distance_mm,
    rotation_matrix,
    spline,
    tube,
)

RX_GY = 20.0
FRACTIONS = 1
PTV_MARGIN_MM = 1.0
SHAPE_VARIATION = 0.12  # relative spread of a metastasis's semi-axes
#: The multileaf collimator of the SRS fields, and the beamlet size it gives (its central leaves).
MLC = HD120
BEAMLET_SIZE_MM = MLC.central_leaf_width_mm
#: (couch, gantry) pairs in degrees (IEC 61217).
FIELDS_DEG: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (0.0, 72.0),
    (0.0, 144.0),
    (0.0, 216.0),
    (0.0, 288.0),
    (45.0, 30.0),
    (45.0, 80.0),
    (315.0, 280.0),
    (315.0, 330.0),
)


def srs_beams(isocenter_mm: Vec3) -> BeamSet:
    """The 9 non-coplanar SRS fields of :data:`FIELDS_DEG` at ``isocenter_mm`` (HD120 beamlets)."""
    beams = tuple(Beam(gantry_deg=g, couch_deg=c) for c, g in FIELDS_DEG)
    return BeamSet(Technique.IMRT, beams, isocenter_mm, beamlet_size_mm=BEAMLET_SIZE_MM)


#: Grid spacing (mm) on which the metastases are drawn and placed, whatever the case's grid: a
#: seed gives the same centres, sizes and orientations at every spacing (those of the 2 mm grid
#: this phantom was first built on). Placement picks a random voxel of the room left between the
#: organs, and which voxel depends on the grid.
PLACEMENT_SPACING_MM = 2.0


@dataclass(frozen=True)
class Metastasis:
    """A GTV: an ellipsoid with its centre and semi-axes (mm) and rotation."""

    centre_mm: Vec3
    semi_mm: Vec3
    rotation: NDArray[np.float64]


def _floor(grid_y: np.ndarray) -> np.ndarray:
    """z (mm) of the cranial floor as a function of y: anterior, middle, posterior fossa."""
    return np.asarray(np.where(grid_y < -35.0, -4.0, np.where(grid_y < 0.0, -40.0, -58.0)))


def build_brain(seed: int, spacing_mm: float) -> Case:
    """The brain SRS case; its metastases are placed on the :data:`PLACEMENT_SPACING_MM` grid."""
    mets = None
    if spacing_mm != PLACEMENT_SPACING_MM:
        mets = _anatomy(seed, PLACEMENT_SPACING_MM, None)[1]
    parts, mets = _anatomy(seed, spacing_mm, mets)
    levels = {f"PTV{i}": RX_GY for i in range(2, len(mets) + 1)}
    rx = Prescription(
        total_dose_gy=RX_GY, fractions=FRACTIONS, target_id="PTV1", dose_levels_gy=levels
    )
    return assemble(parts, scenario="brain-srs", seed=seed, prescription=rx, beams=srs_beams)


def _anatomy(
    seed: int, spacing_mm: float, mets: list[Metastasis] | None
) -> tuple[CaseParts, list[Metastasis]]:
    """The structures on a grid of ``spacing_mm``; the metastases drawn unless given."""
    j = Jitter(seed)
    hs = j.scale3((74.0, 94.0, 100.0), 0.05)  # head semi-axes
    z_lo, z_hi = -66.0, hs[2] + 2.0
    grid = grid_from_bounds(
        (-hs[0] - 2.0, -hs[1] - 2.0, z_lo), (hs[0] + 2.0, hs[1] + 2.0, z_hi), spacing_mm
    )
    body = ellipsoid(grid, (0.0, 0.0, 0.0), hs)
    parts = new_parts(grid, body)

    inner = ellipsoid(grid, (0.0, 0.0, 0.0), (hs[0] - 12.0, hs[1] - 12.0, hs[2] - 12.0))
    skull = ellipsoid(grid, (0.0, 0.0, 0.0), (hs[0] - 5.0, hs[1] - 5.0, hs[2] - 5.0)) & ~inner
    y = grid.axis_mm(1)[None, :, None]
    z = grid.axis_mm(2)[None, None, :]
    floor = _floor(y)
    cranium = inner & (z > floor)
    skull |= inner & (z <= floor) & (z > floor - 7.0)  # skull base plates

    brainstem = tube(
        grid,
        spline(
            [(0.0, 22.0, z_lo), (j.offset(2.0), 16.0 + j.offset(2.0), -30.0), (0.0, 6.0, -2.0)], 10
        ),
        np.array([10.0, 12.5, 13.0]) * j.scale(1.0, 0.08),
    )
    cranium |= brainstem
    chiasm_c = (j.offset(1.5), -16.0 + j.offset(2.0), -8.0 + j.offset(2.0))
    chiasm = ellipsoid(grid, chiasm_c, j.scale3((8.0, 4.5, 3.0), 0.1))
    nerves: dict[str, BoolArray] = {}
    globes = []
    for name, sd in (("OpticNrv_L", 1.0), ("OpticNrv_R", -1.0)):
        globe_c = (sd * 32.0, -hs[1] + 24.0, -16.0)
        globes.append(ellipsoid(grid, globe_c, (12.0, 12.0, 12.0)))
        path = spline(
            [
                (chiasm_c[0] + sd * 6.0, chiasm_c[1] - 3.0, chiasm_c[2]),
                (sd * 20.0, -48.0, -10.0),
                globe_c,
            ],
            8,
        )
        nerves[name] = tube(grid, path[:-1], j.scale(2.6, 0.08))
    cochleae: dict[str, BoolArray] = {}
    petrous = np.zeros(grid.shape, dtype=bool)
    for name, sd in (("Cochlea_L", 1.0), ("Cochlea_R", -1.0)):
        c = (sd * j.scale(38.0, 0.05), 12.0 + j.offset(2.0), -34.0 + j.offset(2.0))
        cochleae[name] = ellipsoid(grid, c, (4.0, 4.0, 3.5))
        petrous |= capsule(grid, (sd * 55.0, 24.0, -36.0), (sd * 18.0, -2.0, -30.0), 9.0)
    soft = brainstem | chiasm | cochleae["Cochlea_L"] | cochleae["Cochlea_R"]
    soft |= nerves["OpticNrv_L"] | nerves["OpticNrv_R"]
    skull = (skull | petrous) & ~soft
    inner_ear = cochleae["Cochlea_L"] | cochleae["Cochlea_R"]
    brain = cranium & ~skull & ~(globes[0] | globes[1]) & ~inner_ear
    parts.paint(skull, BONE_CORTICAL)

    serial = brainstem | chiasm | nerves["OpticNrv_L"] | nerves["OpticNrv_R"]
    if mets is None:
        mets = _place_metastases(j, 1 + seed % 3, grid, brain, serial, (brainstem, chiasm))
    ptvs = [
        expand(ellipsoid(grid, m.centre_mm, m.semi_mm, m.rotation), grid, PTV_MARGIN_MM) & brain
        for m in mets
    ]
    targets = np.logical_or.reduce(ptvs)

    for i, ptv in enumerate(ptvs, start=1):
        parts.add(f"PTV{i}", "PTV", ptv)
    parts.add("Brainstem", "ORGAN", brainstem)
    parts.add("OpticChiasm", "ORGAN", chiasm)
    parts.add("OpticNrv_L", "ORGAN", nerves["OpticNrv_L"])
    parts.add("OpticNrv_R", "ORGAN", nerves["OpticNrv_R"])
    parts.add("Cochlea_L", "ORGAN", cochleae["Cochlea_L"])
    parts.add("Cochlea_R", "ORGAN", cochleae["Cochlea_R"])
    parts.add("Brain", "ORGAN", brain)
    parts.add("Brain-PTV", "CONTROL", brain & ~targets)
    for i, zone in enumerate(lesion_zones(grid, body, mets), start=1):
        parts.add(f"PTV{i}_zone", "CONTROL", zone)
    return parts, mets


def lesion_zones(grid: Grid, body: BoolArray, mets: list[Metastasis]) -> list[BoolArray]:
    """The body split between the metastases: each voxel to the lesion nearest in units of its
    mean semi-axis (a power-diagram split; ties to the larger lesion). A lesion's CI and GI read
    their isodose volumes in its zone, so a neighbour's dose does not count against it (one
    lesion: the zone is the whole body)."""
    if len(mets) == 1:
        return [body.copy()]
    x = grid.axis_mm(0)[:, None, None]
    y = grid.axis_mm(1)[None, :, None]
    z = grid.axis_mm(2)[None, None, :]
    scaled = []
    for m in mets:
        cx, cy, cz = m.centre_mm
        radius = float(np.mean(m.semi_mm)) + PTV_MARGIN_MM
        scaled.append(np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / radius)
    nearest = np.argmin(np.stack(scaled), axis=0)
    return [body & (nearest == k) for k in range(len(mets))]


def _place_metastases(
    j: Jitter,
    n_mets: int,
    grid: Grid,
    brain: BoolArray,
    serial: BoolArray,
    neighbours: tuple[BoolArray, BoolArray],
) -> list[Metastasis]:
    """Largest first; PTV1 may be placed next to the brainstem or the chiasm (``neighbours``)."""
    radii = sorted((j.uniform(5.0, 12.0) for _ in range(n_mets)), reverse=True)
    place = int(j.rng.integers(3))  # 0: free, 1: near brainstem, 2: near chiasm
    d_serial = distance_mm(serial, grid, 20.0)
    d_inside = inner_distance_mm(brain, grid)
    ptvs: list[BoolArray] = []
    mets: list[Metastasis] = []
    for i, r in enumerate(radii):
        r_ptv = r * (1.0 + SHAPE_VARIATION) + PTV_MARGIN_MM  # largest extent of the PTV
        room = (d_inside > r_ptv + 6.0) & (d_serial > r_ptv + 4.0)
        for other in ptvs:
            room &= distance_mm(other, grid, r_ptv + 12.0) > r_ptv + 12.0
        if i == 0 and place > 0:
            near = neighbours[place - 1]
            gap = j.uniform(3.0, 9.0)
            d_near = distance_mm(near, grid, r_ptv + gap + 3.0)
            band = (d_near > r_ptv + gap) & (d_near <= r_ptv + gap + 3.0)
            room = band & (d_inside > r_ptv + 3.0) & (d_serial > r_ptv + 2.5)
        c = j.pick_voxel(room, grid)
        semi = j.scale3((r, r, r), SHAPE_VARIATION)
        rot = rotation_matrix(j.offset(45.0), j.offset(45.0), j.offset(45.0))
        mets.append(Metastasis(c, semi, rot))
        gtv = ellipsoid(grid, c, semi, rot)
        ptvs.append(expand(gtv, grid, PTV_MARGIN_MM) & brain)
    return mets
