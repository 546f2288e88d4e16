"""Beam geometry of the simulated TPS: IEC 61217 angles, source position, beam's-eye view, beamlets.

Coordinates are the patient coordinates of :mod:`mock_tps.grid` (x: right->left, y: anterior->posterior,
z: inferior->superior; head-first supine). IEC 61217 angles map to them as follows:

- gantry 0: source anterior (at -y), beam travelling +y; gantry 90: source at the patient's left
  (+x), beam travelling -x (the gantry rotates about the z axis);
- couch (patient support) angle: rotation about the vertical (y) axis. With the rotation matrix
  ``M = R_couch @ R_gantry`` (``R_gantry`` about z, ``R_couch`` about y, as in matRad), the
  source direction seen from the isocenter is ``(cos c sin g, -cos g, -sin c sin g)``: couch 90 with
  gantry 90 puts the source inferior (at -z).

Beam's-eye view: ``u = M @ (1, 0, 0)`` (patient left at gantry 0, IEC X_b), ``v = M @ (0, 0, 1)``
(superior at couch 0, IEC Y_b), ``w = M @ (0, 1, 0)`` (beam direction, source -> isocenter).
A point ``p`` projects to isocenter-plane coordinates ``(a, b) = SAD / L * ((p - s).u, (p - s).v)``
with ``L = (p - s).w`` its distance from the source along the central axis (divergent projection).

Beamlets are squares of ``beamlet_size_mm`` in the isocenter plane, centred at integer multiples
``(i, j) * beamlet_size_mm`` (the central axis goes through the centre of beamlet (0, 0)).

A beam set's beamlet size follows its MLC (:class:`MlcModel`): the leaves are stacked along ``v``
(IEC Y_b; a Varian leaf travels along X_b), so the leaf width is the resolution across the leaves;
along the leaves the fluence is continuous and the same size is a discretization. Beamlets are
uniform: where the beam's target lies beyond an MLC's fine central leaves (an HD120's 2.5 mm leaves
span only |v| <= 40 mm), the beamlets are finer than the leaves there
(:meth:`MlcModel.coarse_leaf_share` says how many); no collimator rotation is modelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput
from mock_tps.case import BeamSet, Case

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

#: A point must lie at least this fraction of the SAD downstream of the source.
_MIN_SOURCE_DISTANCE_FRACTION = 0.2


@dataclass(frozen=True)
class MlcModel:
    """A multileaf collimator: its leaf widths projected to the isocenter plane.

    Attributes
    ----------
    name
        Model name.
    central_leaf_width_mm
        Width of the central leaves (the beamlet size a beam set with this MLC uses).
    central_half_width_mm
        The central leaves cover ``|v| <= central_half_width_mm``.
    outer_leaf_width_mm
        Width of the outer leaves, out to ``half_field_mm``.
    half_field_mm
        Half the field the leaf bank spans along ``v``.
    """

    name: str
    central_leaf_width_mm: float
    central_half_width_mm: float
    outer_leaf_width_mm: float
    half_field_mm: float

    def leaf_width_mm(self, v_mm: NDArray[np.floating]) -> F64:
        """Width of the leaf at isocenter-plane position ``v_mm``; NaN beyond the leaf bank."""
        v = np.abs(np.asarray(v_mm, dtype=np.float64))
        width = np.where(
            v <= self.central_half_width_mm, self.central_leaf_width_mm, self.outer_leaf_width_mm
        )
        return np.where(v <= self.half_field_mm, width, np.nan)

    def coarse_leaf_share(self, grid: BeamletGrid) -> float:
        """Share of ``grid``'s beamlets whose leaf is wider than the beamlet (0: none)."""
        if grid.n_beamlets == 0:
            return 0.0
        width = self.leaf_width_mm(grid.centres_mm[:, 1])
        coarse = ~(width <= grid.beamlet_size_mm + 1e-9)  # NaN (outside the bank) counts
        return float(coarse.mean())


#: Varian Millennium 120: 40 central leaf pairs of 5 mm (20 cm) and 2 x 10 outer pairs of 10 mm.
MILLENNIUM_120 = MlcModel("Millennium 120", 5.0, 100.0, 10.0, 200.0)
#: Varian HD120 (high-definition MLC, SRS): 32 central pairs of 2.5 mm (8 cm) and 2 x 14 outer
#: pairs of 5 mm: 22 cm across the leaves.
HD120 = MlcModel("HD120", 2.5, 40.0, 5.0, 110.0)


def rotation_matrix(gantry_deg: float, couch_deg: float) -> F64:
    """Rotation ``R_couch(couch) @ R_gantry(gantry)`` from the gantry-0 frame to patient coordinates."""
    g = math.radians(gantry_deg)
    c = math.radians(couch_deg)
    r_gantry = np.array(
        [[math.cos(g), -math.sin(g), 0.0], [math.sin(g), math.cos(g), 0.0], [0.0, 0.0, 1.0]]
    )
    r_couch = np.array(
        [[math.cos(c), 0.0, math.sin(c)], [0.0, 1.0, 0.0], [-math.sin(c), 0.0, math.cos(c)]]
    )
    return np.asarray(r_couch @ r_gantry, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class BeamGeometry:
    """Position and axes of one beam (static field or control point).

    Attributes
    ----------
    beam_index
        Index of the beam in ``BeamSet.beams``.
    source_mm
        Source position (patient coordinates, mm).
    u_axis, v_axis, w_axis
        Unit vectors: beam's-eye-view lateral axes and the beam direction (source -> isocenter).
    """

    beam_index: int
    gantry_deg: float
    couch_deg: float
    isocenter_mm: F64
    source_axis_distance_mm: float
    source_mm: F64
    u_axis: F64
    v_axis: F64
    w_axis: F64

    def label(self) -> str:
        """Human-readable name used in error messages."""
        return (
            f"beam {self.beam_index} (gantry {self.gantry_deg:g} deg, couch {self.couch_deg:g} deg)"
        )

    def project(self, points_mm: NDArray[np.floating]) -> tuple[F32, F32, F32]:
        """Divergent projection of ``points_mm`` (n, 3).

        Returns
        -------
        a_mm, b_mm, dist_mm
            Isocenter-plane coordinates along ``u`` and ``v``, and the distance from the source
            along the central axis (float32 arrays).
        """
        pts = np.asarray(points_mm, dtype=np.float32).reshape(-1, 3)
        return self.project_columns(np.ascontiguousarray(pts.T))

    def project_columns(self, xyz_mm: F32) -> tuple[F32, F32, F32]:
        """Like :meth:`project` for points given as a (3, n) float32 array (faster)."""
        m = np.stack([self.u_axis, self.v_axis, self.w_axis]).astype(np.float32)
        # einsum rather than BLAS: no worker threads left spinning on a shared machine
        rel = np.einsum("ij,jn->in", m, xyz_mm)
        rel -= (m @ self.source_mm.astype(np.float32))[:, None]
        dist = rel[2]
        limit = _MIN_SOURCE_DISTANCE_FRACTION * self.source_axis_distance_mm
        if dist.size and float(dist.min()) < limit:
            raise InvalidInput(
                f"{self.label()}: part of the patient lies within {limit:g} mm of the source "
                "plane or behind it; check isocenter_mm and source_axis_distance_mm"
            )
        scale = np.float32(self.source_axis_distance_mm) / dist
        return rel[0] * scale, rel[1] * scale, dist


def beam_geometry(beam_set: BeamSet, beam_index: int) -> BeamGeometry:
    """Geometry of ``beam_set.beams[beam_index]``."""
    if not 0 <= beam_index < len(beam_set.beams):
        raise InvalidInput(
            f"beam_index must be within 0..{len(beam_set.beams) - 1}, got {beam_index}"
        )
    beam = beam_set.beams[beam_index]
    m = rotation_matrix(beam.gantry_deg, beam.couch_deg)
    iso = np.asarray(beam_set.isocenter_mm, dtype=np.float64)
    w = m @ np.array([0.0, 1.0, 0.0])
    return BeamGeometry(
        beam_index=beam_index,
        gantry_deg=beam.gantry_deg,
        couch_deg=beam.couch_deg,
        isocenter_mm=iso,
        source_axis_distance_mm=beam_set.source_axis_distance_mm,
        source_mm=iso - beam_set.source_axis_distance_mm * w,
        u_axis=m @ np.array([1.0, 0.0, 0.0]),
        v_axis=m @ np.array([0.0, 0.0, 1.0]),
        w_axis=w,
    )


@dataclass(frozen=True, eq=False)
class BeamletGrid:
    """The beamlets of one beam.

    Attributes
    ----------
    geometry
        The beam.
    beamlet_size_mm
        Side of the square beamlets in the isocenter plane.
    ij
        (n, 2) int32 beamlet positions, sorted by i then j; beamlet (i, j) is centred at
        ``(i, j) * beamlet_size_mm`` in isocenter-plane (u, v) coordinates.
    """

    geometry: BeamGeometry
    beamlet_size_mm: float
    ij: NDArray[np.int32]

    @property
    def n_beamlets(self) -> int:
        """Number of beamlets."""
        return int(self.ij.shape[0])

    @property
    def centres_mm(self) -> F64:
        """(n, 2) beamlet centres in the isocenter plane (u, v), mm."""
        return self.ij.astype(np.float64) * self.beamlet_size_mm


def _mark_cells(
    a: F32,
    b: F32,
    size_mm: float,
    radius_mm: float,
    i0: int,
    j0: int,
    shape: tuple[int, int],
) -> NDArray[np.bool_]:
    """Cells (i0 + k, j0 + l) whose square grown by ``radius_mm`` (round corners) holds a point."""
    out = np.zeros(shape, dtype=bool)
    if a.size == 0:
        return out
    ic = np.rint(a / size_mm).astype(np.int64)
    jc = np.rint(b / size_mm).astype(np.int64)
    reach = math.ceil(radius_mm / size_mm)
    half = size_mm / 2.0
    tol = 1e-4
    for di in range(-reach, reach + 1):
        ii = ic + di
        dx = np.maximum(np.abs(a - ii * size_mm) - half, 0.0)
        for dj in range(-reach, reach + 1):
            jj = jc + dj
            dy = np.maximum(np.abs(b - jj * size_mm) - half, 0.0)
            hit = dx * dx + dy * dy <= (radius_mm + tol) ** 2
            hit &= (ii >= i0) & (ii < i0 + shape[0]) & (jj >= j0) & (jj < j0 + shape[1])
            out[ii[hit] - i0, jj[hit] - j0] = True
    return out


def _mark_cells_square(
    a: F32,
    b: F32,
    size_mm: float,
    radius_mm: float,
    i0: int,
    j0: int,
    shape: tuple[int, int],
) -> NDArray[np.bool_]:
    """Like :func:`_mark_cells` with square corners, fast for ``radius_mm < size_mm / 2``."""
    if radius_mm >= size_mm / 2.0:
        return _mark_cells(a, b, size_mm, radius_mm * math.sqrt(2.0), i0, j0, shape)
    out = np.zeros(shape, dtype=bool)
    for da in (-radius_mm, radius_mm):
        ii = np.rint((a + da) / size_mm).astype(np.int64) - i0
        ok_i = (ii >= 0) & (ii < shape[0])
        for db in (-radius_mm, radius_mm):
            jj = np.rint((b + db) / size_mm).astype(np.int64) - j0
            ok = ok_i & (jj >= 0) & (jj < shape[1])
            out[ii[ok], jj[ok]] = True
    return out


def select_beamlets(
    geometry: BeamGeometry,
    beamlet_size_mm: float,
    target_margin_mm: float,
    target_points_mm: NDArray[np.floating],
    body_a_mm: F32,
    body_b_mm: F32,
    body_probe_radius_mm: float,
) -> BeamletGrid:
    """Beamlets over the target projection plus margin that pass through the body.

    A beamlet is kept when its square, grown by ``target_margin_mm``, contains the divergent
    projection of a target voxel centre, and its square grown by ``body_probe_radius_mm``
    contains the projection of a body voxel centre (``body_a_mm``, ``body_b_mm``).

    Raises
    ------
    InvalidInput
        If the target has no voxel, or no beamlet of the beam passes through the body.
    """
    if len(target_points_mm) == 0:
        raise InvalidInput(f"{geometry.label()}: the target has no voxel to aim the beamlets at")
    ta, tb, _ = geometry.project(target_points_mm)
    size = float(beamlet_size_mm)
    pad = math.ceil(target_margin_mm / size) + 1
    i0 = int(np.rint(ta.min() / size)) - pad
    j0 = int(np.rint(tb.min() / size)) - pad
    shape = (
        int(np.rint(ta.max() / size)) + pad - i0 + 1,
        int(np.rint(tb.max() / size)) + pad - j0 + 1,
    )
    on_target = _mark_cells(ta, tb, size, target_margin_mm, i0, j0, shape)
    lo_a, hi_a = (i0 - 1) * size, (i0 + shape[0]) * size
    lo_b, hi_b = (j0 - 1) * size, (j0 + shape[1]) * size
    near = (body_a_mm >= lo_a) & (body_a_mm <= hi_a) & (body_b_mm >= lo_b) & (body_b_mm <= hi_b)
    on_body = _mark_cells_square(
        body_a_mm[near], body_b_mm[near], size, body_probe_radius_mm, i0, j0, shape
    )
    keep = on_target & on_body
    if not keep.any():
        raise InvalidInput(
            f"{geometry.label()}: none of its {int(on_target.sum())} beamlets over the target "
            "passes through the body; check the isocenter, the body and target contours"
        )
    ii, jj = np.nonzero(keep)  # C order: sorted by i then j
    ij = np.stack([ii + i0, jj + j0], axis=1).astype(np.int32)
    return BeamletGrid(geometry=geometry, beamlet_size_mm=size, ij=ij)


def beamlet_grid(case: Case, beam_index: int) -> BeamletGrid:
    """Beamlet grid of ``case.beams.beams[beam_index]`` (see :func:`select_beamlets`)."""
    geometry = beam_geometry(case.beams, beam_index)
    grid = case.grid
    target_pts = grid.centres_mm(np.flatnonzero(case.target_mask))
    body_pts = grid.centres_mm(np.flatnonzero(case.body_mask))
    body_a, body_b, _ = geometry.project(body_pts)
    return select_beamlets(
        geometry,
        case.beams.beamlet_size_mm,
        case.beams.target_margin_mm,
        target_pts,
        body_a,
        body_b,
        default_body_probe_radius_mm(case),
    )


def default_body_probe_radius_mm(case: Case) -> float:
    """Half the largest voxel spacing: how far a beamlet may pass from a body voxel centre."""
    return 0.5 * max(case.grid.spacing_mm)
