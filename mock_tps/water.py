"""Dose of open fields at points and along lines in water or a slab phantom (no dose matrix).

The same kernel as the engine (:mod:`mock_tps.kernel`), summed exactly over the beamlets of a
rectangular field, evaluated where asked: a 40 x 40 cm field with its long tail costs a few
thousand kernel evaluations per line instead of a full dose-influence matrix. The phantom is a
stack of slabs perpendicular to the central axis (water beyond the last one), its surface at
``ssd_mm`` from the source; radiological depth along each divergent ray is exact.

Coordinates of a point: ``(x, y, depth)`` in mm: lateral position in the plane at ``depth`` below
the surface (``x`` along the beam's u axis, across the leaves; ``y`` along v) and the depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from esapi_bridge.errors import InvalidInput
from mock_tps.engine_params import EngineParams
from mock_tps.kernel import (
    SAD_MM,
    beamlet_centres_mm,
    field_dose_raw,
    lateral_scale,
    normalization,
)
from rtplan_common.models import FrozenModel

F64 = NDArray[np.float64]


class Slab(FrozenModel):
    """A layer of the phantom: ``thickness_mm`` of relative electron density ``density``."""

    thickness_mm: float = Field(gt=0.0, le=1000.0)
    density: float = Field(ge=0.01, le=20.0)


class OpenField(FrozenModel):
    """A rectangular field in the isocenter plane (mm), tiled by square beamlets."""

    u_min_mm: float
    u_max_mm: float
    v_min_mm: float
    v_max_mm: float
    beamlet_mm: float = Field(default=5.0, gt=0.0, le=20.0)

    @classmethod
    def square(cls, side_mm: float, beamlet_mm: float = 5.0) -> OpenField:
        """A centred square field of side ``side_mm`` at the isocenter."""
        return cls.rectangle(side_mm, side_mm, beamlet_mm)

    @classmethod
    def rectangle(cls, u_mm: float, v_mm: float, beamlet_mm: float = 5.0) -> OpenField:
        """A centred ``u_mm`` (across the leaves, X jaws) by ``v_mm`` (Y jaws) field."""
        return cls(
            u_min_mm=-u_mm / 2,
            u_max_mm=u_mm / 2,
            v_min_mm=-v_mm / 2,
            v_max_mm=v_mm / 2,
            beamlet_mm=beamlet_mm,
        )

    def centres(self) -> tuple[F64, F64]:
        """Beamlet centres along u and v; raises if the edges are not on the beamlet raster."""
        out = []
        for lo, hi in ((self.u_min_mm, self.u_max_mm), (self.v_min_mm, self.v_max_mm)):
            n = (hi - lo) / self.beamlet_mm
            if n < 0.999 or abs(n - round(n)) > 1e-6:
                raise InvalidInput(
                    f"field edges {lo:g}..{hi:g} mm must span a whole number (>= 1) of "
                    f"{self.beamlet_mm:g} mm beamlets"
                )
            out.append(beamlet_centres_mm(lo, hi, self.beamlet_mm))
        return out[0], out[1]


@dataclass(frozen=True)
class SlabPhantom:
    """Slabs from the surface down (water beyond), surface at ``ssd_mm`` from the source."""

    slabs: tuple[Slab, ...] = ()
    ssd_mm: float = SAD_MM

    def water_path_mm(self, depth_mm: F64) -> F64:
        """Water-equivalent thickness between the surface and ``depth_mm`` along the axis."""
        d = np.asarray(depth_mm, dtype=np.float64)
        out = np.zeros_like(d)
        top = 0.0
        for slab in self.slabs:
            inside = np.clip(d - top, 0.0, slab.thickness_mm)
            out += inside * slab.density
            top += slab.thickness_mm
        out += np.maximum(d - top, 0.0)
        return out


def point_dose_gy(
    points_mm: NDArray[np.floating],
    field: OpenField,
    phantom: SlabPhantom | None = None,
    params: EngineParams | None = None,
) -> F64:
    """Dose (Gy per unit beamlet weight) of ``field`` at ``points_mm`` (n, 3: x, y, depth).

    Raises
    ------
    InvalidInput
        If a point lies above the surface or the field's edges are off its beamlet raster.
    """
    p = params if params is not None else EngineParams()
    ph = phantom if phantom is not None else SlabPhantom()
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    depth = pts[:, 2]
    if depth.size and float(depth.min()) < 0.0:
        raise InvalidInput("points must lie at depth >= 0 mm below the phantom surface")
    dist = ph.ssd_mm + depth
    x_iso = pts[:, 0] * SAD_MM / dist
    y_iso = pts[:, 1] * SAD_MM / dist
    path = np.sqrt(1.0 + (x_iso**2 + y_iso**2) / SAD_MM**2)
    rad_depth = ph.water_path_mm(depth) * path
    length = p.density_length_mm
    if length > 0.0:
        top = np.maximum(depth - length, 0.0)
        span = np.maximum(depth - top, 1e-9)
        rho = (ph.water_path_mm(depth) - ph.water_path_mm(top)) / span
    else:
        rho = ph.water_path_mm(depth + 1e-3) - ph.water_path_mm(depth)
        rho = rho / 1e-3
    cu, cv = field.centres()
    raw = field_dose_raw(
        p, x_iso, y_iso, rad_depth, dist, cu, cv, field.beamlet_mm, lateral_scale(p, rho)
    )
    return np.asarray(raw * normalization(p), dtype=np.float64)


def depth_dose_gy(
    depths_mm: NDArray[np.floating],
    field: OpenField,
    phantom: SlabPhantom | None = None,
    params: EngineParams | None = None,
    off_axis_mm: tuple[float, float] = (0.0, 0.0),
) -> F64:
    """Dose along a line parallel to the central axis (default: on it)."""
    d = np.asarray(depths_mm, dtype=np.float64).ravel()
    pts = np.column_stack([np.full_like(d, off_axis_mm[0]), np.full_like(d, off_axis_mm[1]), d])
    return point_dose_gy(pts, field, phantom, params)


def profile_gy(
    offsets_mm: NDArray[np.floating],
    depth_mm: float,
    field: OpenField,
    phantom: SlabPhantom | None = None,
    params: EngineParams | None = None,
    along_v: bool = False,
) -> F64:
    """Dose along a lateral line at ``depth_mm`` (along u, or along v with ``along_v``)."""
    o = np.asarray(offsets_mm, dtype=np.float64).ravel()
    zero = np.zeros_like(o)
    x, y = (zero, o) if along_v else (o, zero)
    pts = np.column_stack([x, y, np.full_like(o, depth_mm)])
    return point_dose_gy(pts, field, phantom, params)
