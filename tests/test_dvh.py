"""DVH curves and DVH-derived indices on analytic and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from esapi_bridge.dto import DvhCurve
from esapi_bridge.dvh_metrics import gradient_index, homogeneity_index, paddick_ci, rtog_ci
from esapi_bridge.errors import EmptyStructure, InvalidInput
from mock_tps.dvh import dvh_from_doses

BIN = 0.01  # Gy; point queries are exact to within one bin


def test_uniform_dose_sphere_has_step_dvh() -> None:
    # analytic: a uniformly irradiated sphere (r = 20 mm, 1 mm voxels) at 60 Gy
    g = np.arange(-25, 26)
    x, y, z = np.meshgrid(g, g, g, indexing="ij")
    inside = x**2 + y**2 + z**2 <= 20**2
    dose = np.where(inside, 60.0, 0.0)[inside]
    curve = dvh_from_doses("Sphere", dose, 0.001)
    # volume: voxel count * 1 mm3; analytic 4/3 pi r^3 = 33.51 cm3 within 1 % (voxelization)
    assert curve.volume_cm3 == pytest.approx(4 / 3 * np.pi * 20**3 / 1000, rel=0.01)
    for v in (2.0, 50.0, 95.0, 98.0):
        assert curve.dose_at_volume_pct(v) == pytest.approx(60.0, abs=BIN)
    assert curve.volume_pct_at_dose(59.99) == pytest.approx(100.0)
    assert curve.volume_pct_at_dose(60.01) == 0.0
    assert curve.mean_dose_gy == pytest.approx(60.0)
    assert homogeneity_index(curve) == pytest.approx(0.0, abs=1e-3)


def test_linear_gradient_slab() -> None:
    # analytic: dose falling linearly 0..100 Gy through a slab of 10,001 equal voxels;
    # Dx% = 100 (1 - x/100) and V(d) = 100 - d (%), within one bin / one voxel
    dose = np.linspace(0.0, 100.0, 10_001)
    curve = dvh_from_doses("Slab", dose, 0.001)
    for x in (2.0, 10.0, 50.0, 95.0, 98.0):
        assert curve.dose_at_volume_pct(x) == pytest.approx(100.0 - x, abs=0.02)
    for d in (5.0, 33.3, 70.0):
        assert curve.volume_pct_at_dose(d) == pytest.approx(100.0 - d, abs=0.02)
    assert curve.mean_dose_gy == pytest.approx(50.0, abs=1e-9)
    # HI = (D2 - D98) / D50 = (98 - 2) / 50
    assert homogeneity_index(curve) == pytest.approx(96.0 / 50.0, abs=1e-3)


def test_hand_computed_small_array() -> None:
    # 10 voxels of 0.1 cm3 (1 cm3): doses 1..10 Gy
    curve = dvh_from_doses("S", np.arange(1.0, 11.0), 0.1)
    assert curve.volume_cm3 == pytest.approx(1.0)
    assert curve.volume_pct_at_dose(7.0) == pytest.approx(40.0)  # 7, 8, 9, 10
    assert curve.volume_cm3_at_dose(7.0) == pytest.approx(0.4)
    assert curve.dose_at_volume_pct(30.0) == pytest.approx(
        8.0, abs=BIN
    )  # hottest 3 voxels: 8, 9, 10
    assert curve.dose_at_volume_cm3(0.1) == pytest.approx(10.0, abs=BIN)
    assert curve.max_dose_gy == 10.0 and curve.min_dose_gy == 1.0
    assert curve.mean_dose_gy == pytest.approx(5.5)


def test_conformity_and_gradient_indices_hand_computed() -> None:
    # target: 10 voxels of 1 cm3, 8 of them >= Rx (60 Gy); body: target + 10 normal voxels,
    # 2 normal voxels >= Rx, 10 voxels >= 30 Gy in all
    target = dvh_from_doses("PTV", np.array([65.0] * 8 + [55.0] * 2), 1.0)
    body_doses = np.array([65.0] * 8 + [55.0] * 2 + [61.0] * 2 + [20.0] * 8)
    body = dvh_from_doses("BODY", body_doses, 1.0)
    # TV = 10, PIV = 10, TV_PIV = 8 -> Paddick 64 / 100, RTOG 10 / 10
    assert paddick_ci(target, body, 60.0) == pytest.approx(0.64, abs=1e-6)
    assert rtog_ci(target, body, 60.0) == pytest.approx(1.0, abs=1e-6)
    # V(30 Gy) = 12 cm3, V(60 Gy) = 10 cm3
    assert gradient_index(body, 60.0) == pytest.approx(1.2, abs=1e-6)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(EmptyStructure, match="no voxel"):
        dvh_from_doses("Empty", np.array([]), 0.1)
    with pytest.raises(InvalidInput, match="non-finite"):
        dvh_from_doses("Nan", np.array([1.0, np.nan]), 0.1)
    with pytest.raises(InvalidInput, match="bin_width_gy"):
        dvh_from_doses("S", np.array([1.0]), 0.1, bin_width_gy=0.5)
    curve = dvh_from_doses("S", np.arange(1.0, 11.0), 0.1)
    with pytest.raises(ValueError, match="volume_pct"):
        curve.dose_at_volume_pct(101.0)
    with pytest.raises(ValueError, match="non-increasing"):
        DvhCurve(
            structure_id="X",
            volume_cm3=1.0,
            dose_gy=[0.0, 1.0],
            volume_pct=[50.0, 100.0],
            min_dose_gy=0.0,
            mean_dose_gy=0.5,
            max_dose_gy=1.0,
        )
