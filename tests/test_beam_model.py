"""The 6 MV kernel against measured TrueBeam 6X water data, on fields the fit never saw.

Measured data: ``tests/data/beam-6x/truebeam_6x_golden_beam_data.json`` (Varian TrueBeam 6X golden
beam data, CC13 chamber, SSD 100 cm; citation in that folder's README). The kernel's parameters
were fitted (``bench/fit_beam.py``) on the 4 x 4, 10 x 10 and 30 x 30 cm fields only; these tests
use 3 x 3, 6 x 6, 20 x 20 and 40 x 40 cm and the rectangular output factors. Tolerances are the
issue's targets (#9), never loosened: a model that misses one fails here.

Regions of a profile (our definition, after the usual split of high-dose, penumbra and low-dose
regions): in-field = 0-45 mm off axis where the measured dose is >= 90 %; penumbra = beyond that
out to 1 cm outside the geometric edge, checked as 2 % / 1 mm distance-to-agreement; out of field =
1-5 cm beyond the geometric edge. The model is evaluated on the measured points (1 mm apart).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mock_tps.beam_data import (
    PROFILE_FIELDS_CM,
    TEST_DEPTHS_CM,
    TEST_FIELDS_CM,
    dta_failures,
    field_edge_mm,
    load_measured,
    model_depth_dose,
    model_output,
    model_pdd,
    model_profile,
    peak,
    penumbra_80_20_mm,
)
from mock_tps.water import OpenField, Slab, SlabPhantom, depth_dose_gy, profile_gy


@pytest.mark.parametrize("side_cm", TEST_FIELDS_CM)
def test_depth_dose_at_5_10_20_cm_within_1_5_points(side_cm: int) -> None:
    m = load_measured()
    depths = np.array([50.0, 100.0, 200.0])
    model = model_pdd(side_cm, depths)
    measured = np.array([m.pdd_at(side_cm, d) for d in depths])
    # issue #9: depth dose within 1.5 points (of % depth dose)
    assert np.abs(model - measured).max() <= 1.5, f"{side_cm} cm: {model} vs {measured}"


@pytest.mark.parametrize("side_cm", TEST_FIELDS_CM)
def test_depth_of_maximum_within_3_mm(side_cm: int) -> None:
    m = load_measured()
    dmax_mm, _ = peak(*model_depth_dose(side_cm, side_cm))
    assert abs(dmax_mm - m.dmax_mm(side_cm)) <= 3.0


@pytest.mark.parametrize(("u_cm", "v_cm"), [(3, 3), (20, 20), (40, 40), (3, 40), (40, 3), (6, 6)])
def test_output_factors_within_2_percent(u_cm: int, v_cm: int) -> None:
    m = load_measured()
    if (u_cm, v_cm) == (6, 6):
        # the table has no 6 x 6 cm: the mean of the measured 5 x 5 and 7 x 7 stands for it
        measured = 0.5 * (m.output(5, 5) + m.output(7, 7))
    else:
        measured = m.output(u_cm, v_cm)
    assert model_output(u_cm, v_cm) == pytest.approx(measured, rel=0.02)


def test_collimator_exchange_effect_has_the_measured_sign() -> None:
    # 3 x 40 with the upper (Y, v) jaws at 40 cm gives more output than with them at 3 cm
    assert model_output(3, 40) > model_output(40, 3)


def _profile(side_cm: int, depth_cm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    m = load_measured()
    x, v = m.profile_points(depth_cm, side_cm)
    edge = field_edge_mm(side_cm, 10.0 * depth_cm)
    keep = x <= edge + 50.0
    x, v = x[keep], v[keep]
    return x, v, model_profile(side_cm, depth_cm, x), edge


@pytest.mark.parametrize("side_cm", PROFILE_FIELDS_CM)
@pytest.mark.parametrize("depth_cm", TEST_DEPTHS_CM)
def test_profile_in_field_within_2_points(side_cm: int, depth_cm: float) -> None:
    x, v, model, _ = _profile(side_cm, depth_cm)
    inside = (x <= 45.0) & (v >= 90.0)
    assert np.abs(model - v)[inside].max() <= 2.0


@pytest.mark.parametrize("side_cm", PROFILE_FIELDS_CM)
@pytest.mark.parametrize("depth_cm", TEST_DEPTHS_CM)
def test_profile_penumbra_passes_2_percent_1_mm(side_cm: int, depth_cm: float) -> None:
    x, v, _, edge = _profile(side_cm, depth_cm)
    x90 = float(x[np.flatnonzero(v < 90.0)[0]])
    region = (x >= x90) & (x < edge + 10.0)
    fine = np.arange(max(x90 - 5.0, 0.0), edge + 15.0, 0.1)
    fails = dta_failures(
        x[region], v[region], fine, model_profile(side_cm, depth_cm, fine), 2.0, 1.0
    )
    assert fails.size == 0, f"fails at {fails} mm"


@pytest.mark.parametrize("side_cm", PROFILE_FIELDS_CM)
@pytest.mark.parametrize("depth_cm", TEST_DEPTHS_CM)
def test_profile_out_of_field_within_1_5_points(side_cm: int, depth_cm: float) -> None:
    x, v, model, edge = _profile(side_cm, depth_cm)
    out = (x >= edge + 10.0 - 1e-6) & (x <= edge + 50.0)
    assert out.sum() >= 30
    assert np.abs(model - v)[out].max() <= 1.5


@pytest.mark.parametrize(("side_cm", "measured_mm"), [(6, 6.22), (20, 8.1)])
def test_penumbra_80_20_at_10_cm_within_1_mm(side_cm: int, measured_mm: float) -> None:
    m = load_measured()
    x, v = m.profile_points(10.0, side_cm)
    assert penumbra_80_20_mm(x, v) == pytest.approx(measured_mm, abs=0.05)  # the quoted value
    fine = np.arange(0.0, field_edge_mm(side_cm, 100.0) + 30.0, 0.1)
    model = penumbra_80_20_mm(fine, model_profile(side_cm, 10.0, fine))
    assert model == pytest.approx(measured_mm, abs=1.0)


def test_dose_outside_a_20x20_at_10_cm_matches_the_issue_table() -> None:
    # issue #9: 14.4 / 10.8 / 8.5 / 5.8 % at 1 / 2 / 3 / 4.9 cm outside the edge, 1.5 points
    edge = field_edge_mm(20, 100.0)
    offsets = edge + np.array([10.0, 20.0, 30.0, 49.0])
    model = model_profile(20, 10.0, offsets)
    np.testing.assert_allclose(model, [14.4, 10.8, 8.5, 5.8], atol=1.5)


def test_10x10_depth_dose_against_bjr25() -> None:
    # BJR Supplement 25, 6 MV, 10 x 10 cm at SSD 100: 67.5 % at 10 cm and 39.3 % at 20 cm (a harder
    # beam than the TrueBeam's 66.4 / 38.1 %): within 2 points of both references
    model = model_pdd(10, np.array([100.0, 200.0]))
    np.testing.assert_allclose(model, [67.5, 39.3], atol=2.0)


PEER_LUNG = Path(__file__).parent / "data" / "beam-6x" / "pyradplan_lung_slab.json"
LUNG = SlabPhantom(
    slabs=(Slab(thickness_mm=50.0, density=1.0), Slab(thickness_mm=50.0, density=0.25))
)


def _peer_lung(side_cm: int) -> dict[str, Any]:
    peer = json.loads(PEER_LUNG.read_text())
    assert peer["version"] == "0.5.0"  # frozen by bench/peer_lung.py with its settings
    field: dict[str, Any] = peer["fields"][f"{side_cm}x{side_cm}"]
    return field


@pytest.mark.parametrize("side_cm", [10, 5])
def test_lung_slab_axis_dose_ratio_within_2_percent_of_pyradplan(side_cm: int) -> None:
    # issue #9: water 0-5 cm, lung 0.25 g/cm3 5-10 cm, water beyond; lung / water phantom on the
    # axis at 7.5, 12 and 20 cm within 2 % of pyRadPlan 0.5.0 (radiological-depth pencil beam)
    ref = _peer_lung(side_cm)["ratio_lung_to_water_at_depth_cm"]
    field = OpenField.square(10.0 * side_cm)
    depths = np.array([10.0 * float(d) for d in ref])
    ours = depth_dose_gy(depths, field, LUNG) / depth_dose_gy(depths, field, SlabPhantom())
    np.testing.assert_allclose(ours, list(ref.values()), rtol=0.02)


@pytest.mark.parametrize("side_cm", [10, 5])
def test_lung_penumbra_at_7_5_cm_is_wider_than_in_water(side_cm: int) -> None:
    # No Monte Carlo or measured value for this slab was found to cite (tests/data/beam-6x
    # README): the target is ours, >= 1 mm wider than in water. pyRadPlan's (geometric lateral
    # kernel) is about equal, as the frozen file shows.
    field = OpenField.square(10.0 * side_cm)
    x = np.arange(0.0, 5.0 * side_cm * 1.075 + 40.0, 0.1)
    width = {}
    for name, phantom in (("water", SlabPhantom()), ("lung", LUNG)):
        dose = profile_gy(x, 75.0, field, phantom)
        width[name] = penumbra_80_20_mm(x, 100.0 * dose / dose[0])
    assert width["lung"] >= width["water"] + 1.0, width
    peer = _peer_lung(side_cm)["penumbra_80_20_at_7.5cm_mm"]
    assert abs(peer["lung"] - peer["water"]) < 1.0
