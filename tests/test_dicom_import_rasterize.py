"""Contour rasterization of the DICOM import (#13): volumes of analytic shapes, holes, several
contours, gaps, end caps and clipping.

Grid: 2 mm voxels; every size below is in grid voxels. Contours are drawn on the grid's
slices (128-vertex polygons), so each contour's slab (one slice thickness, the end-cap
convention of :mod:`mock_tps.dicom.rasterize`) is one grid slice: a cylinder contoured on
``n`` slices is ``n`` voxels long, and the analytic volume of a cylinder or C-shape is its
area times ``n`` slice thicknesses; a sphere's is 4/3 pi R^3.

References and tolerances:

- every shape: the mask equals the voxels whose centres lie inside the analytic shape (the
  centre-sampling reference, computed here from the formula), except voxels within the
  polygon's chord error of the boundary (R (1 - cos(pi/128)) = 3e-4 R);
- large shapes (30-40 voxels across): volume within 2 % of analytic;
- small shapes (5-9 voxels across): a centre-sampled mask lies between the shape shrunk and
  grown by half a voxel diagonal h (in-plane h = sqrt(2)/2 voxel for cylinders, whose length
  is exact by the end-cap convention; h = sqrt(3)/2 voxel in 3D for spheres), so
  |V_mask - V| / V <= ((R + h)^k - R^k) / R^k (k = 2 for cylinders, 3 for spheres). The
  exact reference above is the tight check; this bound is the stated tolerance on volume.
"""

from __future__ import annotations

import numpy as np
import pytest
from dicom_synth import c_shape, circle
from numpy.typing import NDArray

from mock_tps.dicom.rasterize import rasterize
from mock_tps.grid import Grid

S = 2.0  # mm per voxel
GRID = Grid(shape=(64, 64, 48), spacing_mm=(S, S, S), origin_mm=(-63.0, -63.0, -47.0))
CX, CY = 0.6, -0.9  # mm: the centre sits off the voxel lattice (no centre on a boundary)
ZS = GRID.axis_mm(2)
CHORD = 1.0 - np.cos(np.pi / 128)
gx, gy, gz = GRID.coordinates_mm()
VOXEL_MM3 = S**3


def _volume_mm3(mask: NDArray[np.bool_]) -> float:
    return float(mask.sum()) * VOXEL_MM3


def _assert_centre_sampled(mask: NDArray[np.bool_], dist: NDArray[np.float64], r: float) -> None:
    """``mask`` is ``dist <= r`` except within the polygon's chord error of the boundary."""
    reference = dist <= r
    wrong = mask != reference
    assert np.all(np.abs(dist[wrong] - r) <= CHORD * r + 1e-9), int(wrong.sum())


def _slices(n: int, first: int = 10) -> NDArray[np.float64]:
    return np.asarray(ZS[first : first + n])


@pytest.mark.parametrize("diameter_vox", [5, 9, 30])
def test_cylinder_volume(diameter_vox: int) -> None:
    r = diameter_vox * S / 2.0
    zs = _slices(20)
    raster = rasterize([circle(CX, CY, r, z) for z in zs], GRID, slab_mm=S)
    assert not raster.clipped
    in_slab = (gz >= zs[0] - S / 2) & (gz < zs[-1] + S / 2)
    dist = np.where(in_slab, np.hypot(gx - CX, gy - CY), np.inf)
    _assert_centre_sampled(raster.mask, dist, r)
    analytic = np.pi * r * r * len(zs) * S
    error = abs(_volume_mm3(raster.mask) - analytic) / analytic
    h = np.sqrt(2.0) / 2.0 * S
    bound = 0.02 if diameter_vox >= 30 else ((r + h) ** 2 - r * r) / (r * r)
    assert error <= bound, (error, bound)
    assert raster.mask[:, :, 9].sum() == 0 and raster.mask[:, :, 30].sum() == 0  # end caps


@pytest.mark.parametrize("diameter_vox", [5, 9, 30])
def test_sphere_volume(diameter_vox: int) -> None:
    r, cz = diameter_vox * S / 2.0, 0.7
    zs = [z for z in ZS if abs(z - cz) < r]
    contours = [circle(CX, CY, float(np.sqrt(r * r - (z - cz) ** 2)), z) for z in zs]
    raster = rasterize(contours, GRID, slab_mm=S)
    dist = np.sqrt((gx - CX) ** 2 + (gy - CY) ** 2 + (gz - cz) ** 2)
    # the plane at z has radius rho(z); a voxel at (x, y, z) is inside iff d <= r, and the
    # polygon error in-plane is at most CHORD * rho <= CHORD * r
    _assert_centre_sampled(raster.mask, dist, r)
    analytic = 4.0 / 3.0 * np.pi * r**3
    error = abs(_volume_mm3(raster.mask) - analytic) / analytic
    h = np.sqrt(3.0) / 2.0 * S
    bound = 0.02 if diameter_vox >= 30 else ((r + h) ** 3 - r**3) / r**3
    assert error <= bound, (error, bound)


def test_c_shape_volume() -> None:
    r_out, r_in, gap_deg = 20 * S, 10 * S, 90.0  # 40 voxels across, 10-voxel-thick wall
    zs = _slices(16)
    raster = rasterize([c_shape(CX, CY, r_out, r_in, gap_deg, z, n=256) for z in zs], GRID, S)
    area = (2.0 * np.pi - np.deg2rad(gap_deg)) / 2.0 * (r_out**2 - r_in**2)
    analytic = area * len(zs) * S
    assert abs(_volume_mm3(raster.mask) - analytic) / analytic <= 0.02
    k = 15  # the opening faces +x: the voxels on the +x axis between the radii are empty
    ix = np.flatnonzero((GRID.axis_mm(0) > CX + r_in + S) & (GRID.axis_mm(0) < CX + r_out - S))
    iy = int(np.argmin(np.abs(GRID.axis_mm(1) - CY)))
    assert not raster.mask[ix, iy, k].any()
    assert raster.mask[int(np.argmin(np.abs(GRID.axis_mm(0) - (CX - 15 * S)))), iy, k]


def test_holes_islands_and_several_contours() -> None:
    z = ZS[20]
    ring = [circle(CX, CY, 20 * S, z), circle(CX, CY, 10 * S, z)]  # outer and hole
    island = circle(CX, CY, 4 * S, z)  # inside the hole: filled again (even-odd)
    apart = [circle(-40.0, 40.0, 4 * S, z), circle(40.0, 40.0, 4 * S, z)]  # two parts
    mask = rasterize([*ring, island, *apart], GRID, S).mask[:, :, 20]
    d = np.hypot(gx[:, :, 20] - CX, gy[:, :, 20] - CY)
    expected = ((d <= 20 * S) & (d > 10 * S)) | (d <= 4 * S)
    for x0 in (-40.0, 40.0):
        expected |= np.hypot(gx[:, :, 20] - x0, gy[:, :, 20] - 40.0) <= 4 * S
    assert np.array_equal(mask, expected)
    area = np.pi * ((20 * S) ** 2 - (10 * S) ** 2 + 3 * (4 * S) ** 2)
    assert mask.sum() * S * S == pytest.approx(area, rel=0.03)  # 3 %: 8-voxel disks included


def test_slices_without_contour_leave_a_gap() -> None:
    zs = [*ZS[5:10], *ZS[15:20]]
    mask = rasterize([circle(CX, CY, 10 * S, z) for z in zs], GRID, S).mask
    filled = [k for k in range(GRID.shape[2]) if mask[:, :, k].any()]
    assert filled == [*range(5, 10), *range(15, 20)]


def test_end_caps_on_a_coarser_dose_grid() -> None:
    # contours on 12 CT slices of 2 mm (z = 0.0 ... 22.0 mm) stand for z in [-1, 23) mm
    ct_z = 2.0 * np.arange(12)
    grid = Grid(shape=(40, 40, 12), spacing_mm=(3.0, 3.0, 3.0), origin_mm=(-58.5, -58.5, -7.5))
    mask = rasterize([circle(0.2, 0.3, 20.0, z) for z in ct_z], grid, slab_mm=2.0).mask
    zs = grid.axis_mm(2)
    filled = [float(z) for k, z in enumerate(zs) if mask[:, :, k].any()]
    assert filled == [float(z) for z in zs if -1.0 <= z < 23.0]  # -1.5 out, 22.5 in
    assert filled == [1.5, 4.5, 7.5, 10.5, 13.5, 16.5, 19.5, 22.5]


def test_contours_outside_the_grid_are_clipped() -> None:
    half = [circle(60.0, 0.0, 20.0, z) for z in ZS[10:20]]  # x from 40 to 80; the grid ends at 65
    raster = rasterize(half, GRID, S)
    assert raster.clipped and raster.mask.any()
    assert raster.mask[GRID.axis_mm(0) < 40.0].sum() == 0
    beyond = rasterize([circle(CX, CY, 10.0, z) for z in (*ZS[40:], 51.0, 53.0)], GRID, S)
    assert beyond.clipped and beyond.mask[:, :, 40:].any() and not beyond.mask[:, :, :40].any()
    inside = rasterize([circle(CX, CY, 10.0, z) for z in ZS[10:12]], GRID, S)
    assert not inside.clipped
