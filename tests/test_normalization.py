"""Plan normalization factors (mock_tps.normalization)."""

from __future__ import annotations

import numpy as np
import pytest

from esapi_bridge.dto import NormalizationMode, NormalizationRule
from esapi_bridge.errors import EmptyStructure, InvalidInput, OptimizationFailed
from mock_tps.dvh import dvh_from_doses
from mock_tps.normalization import dose_at_volume_gy, normalization_factor


def test_dose_at_volume_hand_computed() -> None:
    d = np.arange(1.0, 101.0)  # 1..100 Gy, one voxel each
    assert dose_at_volume_gy(d, 95.0) == 6.0  # hottest 95 voxels: 6..100
    assert dose_at_volume_gy(d, 0.0) == 100.0  # D0 = max
    assert dose_at_volume_gy(d, 100.0) == 1.0  # D100 = min
    assert dose_at_volume_gy(d, 2.5) == 98.0  # ceil(2.5) = 3 hottest voxels: 98..100


def test_dose_at_volume_rule_is_met_after_scaling() -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(48.0, 2.0, 5000).clip(0.0)
    rule = NormalizationRule(structure_id="PTV", dose_gy=50.0, volume_pct=95.0)
    factor = normalization_factor(d, rule)
    assert dose_at_volume_gy(d * factor, 95.0) == pytest.approx(50.0, rel=1e-12)
    # the DVH curve of the scaled dose agrees within its 0.01 Gy bins
    curve = dvh_from_doses("PTV", d * factor, 0.027)
    assert curve.dose_at_volume_pct(95.0) == pytest.approx(50.0, abs=0.02)


def test_mean_and_none_rules() -> None:
    d = np.array([10.0, 20.0, 30.0])
    rule = NormalizationRule(mode=NormalizationMode.MEAN, structure_id="PTV", dose_gy=40.0)
    assert normalization_factor(d, rule) == pytest.approx(2.0, rel=1e-12)  # mean 20 -> 40
    none = NormalizationRule(mode=NormalizationMode.NONE, structure_id="PTV", dose_gy=40.0)
    assert normalization_factor(d, none) == 1.0


def test_bad_doses_raise_clear_errors() -> None:
    rule = NormalizationRule(structure_id="PTV_70", dose_gy=70.0)
    with pytest.raises(OptimizationFailed, match=r"'PTV_70'.*D95% = 0 Gy"):
        normalization_factor(np.zeros(10), rule)
    with pytest.raises(EmptyStructure, match="'PTV_70'"):
        normalization_factor(np.zeros(0), rule)
    with pytest.raises(InvalidInput, match="non-finite"):
        normalization_factor(np.array([1.0, np.nan]), rule)
    with pytest.raises(InvalidInput, match=">= 0 Gy"):
        normalization_factor(np.array([1.0, -1.0]), rule)
    with pytest.raises(InvalidInput, match="volume_pct"):
        dose_at_volume_gy(np.ones(3), 120.0)
