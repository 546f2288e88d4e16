"""Pieces shared by the site phantoms: seeded variation, grids, body outlines, case assembly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput
from mock_tps.case import BeamSet, Case, Prescription, Structure
from mock_tps.grid import Grid
from mock_tps.phantoms.shapes import BoolArray, Vec3, centroid_mm, shrink

#: Relative electron densities (water = 1).
AIR = 0.0
LUNG = 0.25
SOFT_TISSUE = 1.0
BONE_SPONGY = 1.5
BONE = 1.65
BONE_CORTICAL = 1.8
#: Beamlet size (mm) of VMAT control points: one MLC aperture per control point has fewer
#: degrees of freedom than a static IMRT field, so a coarser fluence grid represents it.
VMAT_BEAMLET_MM = 10.0


class Jitter:
    """Seeded anatomical variation; draws happen in call order, so a seed fixes the case."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def scale(self, value: float, rel: float = 0.12) -> float:
        """``value`` times a factor uniform in ``1 +- rel``."""
        return float(value * (1.0 + self.rng.uniform(-rel, rel)))

    def scale3(self, values: Sequence[float], rel: float = 0.12) -> Vec3:
        """Each of three values scaled independently by ``1 +- rel``."""
        a, b, c = (self.scale(v, rel) for v in values)
        return a, b, c

    def offset(self, mm: float) -> float:
        """A shift uniform in ``+- mm``."""
        return float(self.rng.uniform(-mm, mm))

    def move(self, point: Sequence[float], mm: float | Sequence[float]) -> Vec3:
        """``point`` shifted by up to ``mm`` (scalar or per axis) along each axis."""
        m = np.broadcast_to(np.asarray(mm, dtype=np.float64), (3,))
        x, y, z = (float(point[i]) + self.offset(float(m[i])) for i in range(3))
        return x, y, z

    def uniform(self, lo: float, hi: float) -> float:
        """A value uniform in ``[lo, hi]``."""
        return float(self.rng.uniform(lo, hi))

    def pick_voxel(self, mask: BoolArray, grid: Grid) -> Vec3:
        """Centre (mm) of a random voxel of ``mask``."""
        flat = np.flatnonzero(mask)
        if len(flat) == 0:
            raise InvalidInput("no room left to place a structure in this phantom")
        c = grid.centres_mm(flat[[int(self.rng.integers(len(flat)))]])[0]
        return float(c[0]), float(c[1]), float(c[2])


def grid_from_bounds(lo_mm: Sequence[float], hi_mm: Sequence[float], spacing_mm: float) -> Grid:
    """A grid whose voxel centres cover the box ``[lo, hi]`` (mm), centred on the box."""
    shape: list[int] = []
    origin: list[float] = []
    for lo, hi in zip(lo_mm, hi_mm, strict=True):
        n = int(np.ceil((hi - lo) / spacing_mm)) + 1
        shape.append(n)
        origin.append((lo + hi) / 2.0 - (n - 1) * spacing_mm / 2.0)
    return Grid(
        shape=(shape[0], shape[1], shape[2]),
        spacing_mm=(spacing_mm, spacing_mm, spacing_mm),
        origin_mm=(origin[0], origin[1], origin[2]),
    )


def lofted_body(grid: Grid, z_knots_mm: Sequence[float], sections: Sequence[Vec3]) -> BoolArray:
    """Body outline: per-slice ellipses ``(centre_y, semi_x, semi_y)`` interpolated along z.

    ``sections[i]`` holds at ``z_knots_mm[i]`` (x centre 0); values are held constant
    beyond the first and last knot.
    """
    z = grid.axis_mm(2)
    sec = np.asarray(sections, dtype=np.float64)
    cy = np.interp(z, z_knots_mm, sec[:, 0])[None, None, :]
    ax = np.interp(z, z_knots_mm, sec[:, 1])[None, None, :]
    ay = np.interp(z, z_knots_mm, sec[:, 2])[None, None, :]
    x = grid.axis_mm(0)[:, None, None]
    y = grid.axis_mm(1)[None, :, None]
    return np.asarray((x / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0)


@dataclass
class CaseParts:
    """What a site builder produces before assembly into a :class:`Case`."""

    grid: Grid
    body: BoolArray
    density: NDArray[np.float32]
    structures: list[tuple[str, str, BoolArray]] = field(default_factory=list)

    def add(self, structure_id: str, dicom_type: str, mask: BoolArray) -> BoolArray:
        """Add a structure (clipped to the body); returns the clipped mask."""
        clipped = np.asarray(mask & self.body)
        self.structures.append((structure_id, dicom_type, clipped))
        return clipped

    def paint(self, mask: BoolArray, density: float) -> None:
        """Set the density of the body voxels of ``mask``."""
        self.density[mask & self.body] = density


def new_parts(grid: Grid, body: BoolArray) -> CaseParts:
    """Parts with soft tissue inside ``body`` and air outside."""
    density = np.where(body, SOFT_TISSUE, AIR).astype(np.float32)
    return CaseParts(grid=grid, body=body, density=density)


def crop_from_skin(mask: BoolArray, parts: CaseParts, margin_mm: float) -> BoolArray:
    """``mask`` without the voxels within ``margin_mm`` of the body surface (as clinics crop PTVs)."""
    return np.asarray(mask & shrink(parts.body, parts.grid, margin_mm))


def assemble(
    parts: CaseParts,
    *,
    scenario: str,
    seed: int,
    prescription: Prescription,
    beams: Callable[[Vec3], BeamSet],
) -> Case:
    """Build the :class:`Case`: body first, isocenter at the centroid of the targets.

    Raises :class:`InvalidInput` if a structure came out empty (e.g. a grid too coarse).
    """
    structures: dict[str, Structure] = {}
    for sid, dicom_type, mask in parts.structures:
        if not mask.any():
            raise InvalidInput(
                f"structure {sid!r} of scenario {scenario!r} (seed {seed}) is empty on the "
                f"{parts.grid.spacing_mm[0]} mm grid: use a finer spacing_mm"
            )
        structures[sid] = Structure(sid, dicom_type, mask)
    structures["BODY"] = Structure("BODY", "EXTERNAL", parts.body)
    targets = np.zeros(parts.grid.shape, dtype=bool)
    for sid in prescription.target_levels_gy:
        targets |= structures[sid].mask
    iso = centroid_mm(targets, parts.grid)
    return Case(
        name=f"{scenario}-seed{seed}",
        grid=parts.grid,
        density=parts.density,
        structures=structures,
        prescription=prescription,
        beams=beams(iso),
        body_id="BODY",
        scenario=scenario,
        seed=seed,
    )
