"""Per-lesion conformity (#9): a CI or GI goal may read its isodose volumes in a region (a
lesion's zone) instead of the body, so that with several metastases one lesion's Paddick CI
is not capped by the others' share of the prescription isodose."""

from __future__ import annotations

import numpy as np
import pytest
from dvh_shapes import constant, ramp

from agent.evaluation import evaluate
from agent.templates import TemplateError, load_template, parse_template
from mock_tps.phantoms import make_case

BRAIN = load_template("brain-srs")


def _plan(region_piv_cm3: float, body_piv_cm3: float) -> dict[str, object]:
    """PTV1 (2 cm3) fully at Rx; the isodose volumes of the zone and the body as given."""
    rx = BRAIN.prescription.dose_gy
    dvhs: dict[str, object] = {
        s.id: constant(s.id, rx) if s.is_target else constant(s.id, 0.0) for s in BRAIN.structures
    }
    dvhs["PTV1"] = constant("PTV1", rx, volume_cm3=2.0)
    # a ramp 0 -> 2 Rx over the volume: V(Rx) = half, V(Rx / 2) = three quarters
    dvhs["PTV1_zone"] = ramp("PTV1_zone", 0.0, 2 * rx, volume_cm3=2 * region_piv_cm3)
    dvhs["BODY"] = ramp("BODY", 0.0, 2 * rx, volume_cm3=2 * body_piv_cm3)
    return dvhs


def test_ci_and_gi_read_the_isodose_volumes_in_the_region() -> None:
    smap = {s.id: s.id for s in BRAIN.structures}
    ev = evaluate(_plan(region_piv_cm3=2.5, body_piv_cm3=7.5), BRAIN, smap)  # type: ignore[arg-type]
    # Paddick CI = TV_PIV^2 / (TV x PIV) = 2^2 / (2 x 2.5) = 0.8 with the zone's PIV (the
    # body's 7.5 cm3, three lesions' worth, would give 0.27)
    assert ev.goal("ptv1_ci_paddick").value == pytest.approx(0.8, abs=1e-6)
    # GI = PIV(Rx/2) / PIV(Rx) on the zone's ramp: 0.75 / 0.5 = 1.5 (hand-computed)
    assert ev.goal("ptv1_gi").value == pytest.approx(1.5, abs=1e-6)


def test_without_the_region_the_goals_are_skipped_not_computed_on_the_body() -> None:
    smap = {s.id: s.id for s in BRAIN.structures if s.id != "PTV1_zone"}
    dvhs = _plan(region_piv_cm3=2.5, body_piv_cm3=7.5)
    del dvhs["PTV1_zone"]
    ev = evaluate(dvhs, BRAIN, smap)  # type: ignore[arg-type]
    assert {"ptv1_ci_paddick", "ptv1_gi"} <= set(ev.skipped_goals)


def _template_with(goal: str) -> str:
    return f"""
name: t
description: a test template
scenario: prostate-basic
technique: {{technique: IMRT, fields: 5}}
prescription: {{dose_gy: 60, fractions: 30, target: PTV}}
structures:
  - {{id: PTV, dicom_type: PTV}}
  - {{id: Zone, dicom_type: CONTROL}}
  - {{id: BODY, dicom_type: EXTERNAL}}
objectives:
  - {{kind: point, structure: PTV, operator: lower, dose: 1.0 Rx, volume_pct: 100, priority: 100}}
goals:
  - {goal}
"""


@pytest.mark.parametrize(
    ("goal", "message"),
    [
        (
            '{structure: PTV, metric: D95%, comparator: ">=", limit: 1.0 Rx, priority: 1, '
            "isodose_region: Zone}",
            "only CI_paddick, CI_rtog and GI read isodose volumes",
        ),
        (
            '{structure: PTV, metric: CI_paddick, comparator: ">=", limit: 0.8, priority: 3, '
            "isodose_region: Nowhere}",
            "Nowhere",
        ),
    ],
)
def test_a_misused_isodose_region_is_refused_on_load(goal: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(_template_with(goal))
    good = '{structure: PTV, metric: GI, comparator: "<=", limit: 4, priority: 3, isodose_region: Zone}'
    assert parse_template(_template_with(good)).goals[0].isodose_region == "Zone"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_brain_phantom_splits_its_body_between_the_lesions(seed: int) -> None:
    case = make_case("brain-srs", seed)
    n = 1 + seed % 3
    zones = [case.structures[f"PTV{i}_zone"].mask for i in range(1, n + 1)]
    body = case.structures["BODY"].mask
    total = np.sum(zones, axis=0)
    assert np.array_equal(total > 0, body) and total.max() == 1  # a partition of the body
    for i, zone in enumerate(zones, start=1):
        assert np.all(zone[case.structures[f"PTV{i}"].mask])  # each holds its own lesion
        for j in range(1, n + 1):
            if j != i:
                assert not np.any(zone & case.structures[f"PTV{j}"].mask)
