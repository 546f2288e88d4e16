"""Loading and validation of site templates (shipped and deliberately broken ones)."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.templates import (
    SiteTemplate,
    StructureMatchError,
    TemplateError,
    list_templates,
    load_template,
    parse_template,
)
from esapi_bridge.dto import (
    MeanDoseObjective,
    NormalizationMode,
    NormalTissueObjective,
    PointObjective,
    Technique,
    objective_key,
)

SHIPPED = [
    "brain-srs",
    "cervix",
    "head-and-neck",
    "head-and-neck-openkbp",
    "head-and-neck-openkbp-3level",
    "liver",
    "prostate-basic",
    "prostate-complex",
    "tg119-easy",
    "tg119-hard",
]
MAX_SCORE = {"prostate-basic": 9.0, "prostate-complex": 15.0, "liver": 4.0}


def _raw(name: str) -> dict[str, Any]:
    text = resources.files("site_templates").joinpath(f"{name}.yaml").read_text()
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _write(tmp_path: Path, data: dict[str, Any], name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_list_templates_has_every_site() -> None:
    assert list_templates() == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_template_validates(name: str) -> None:
    t = load_template(name)
    assert t.name == name
    identity = {s.id: s.id for s in t.structures}
    objectives = t.initial_objectives(identity)
    assert len(objectives) == len(t.objectives)
    # every objective has a range, keyed like the objective
    assert set(t.tpp_ranges) == {objective_key(o) for o in objectives}
    assert (t.score.total_weight if t.score else None) == MAX_SCORE.get(name)
    assert t.body_id == "BODY"
    rule = t.normalization_rule(identity)
    assert rule is not None and rule.structure_id == t.prescription.target
    assert any(g.priority == 1 for g in t.goals)


def test_scenarios_and_techniques_follow_the_contract() -> None:
    expected = {
        "prostate-basic": ("prostate-basic", Technique.IMRT, 7),
        "prostate-complex": ("prostate-complex", Technique.VMAT, 180),
        "liver": ("liver", Technique.IMRT, 7),
        "head-and-neck": ("head-and-neck", Technique.IMRT, 9),
        "cervix": ("cervix", Technique.VMAT, 120),
        "tg119-easy": ("tg119", Technique.IMRT, 7),
        "tg119-hard": ("tg119", Technique.IMRT, 7),
    }
    for name, (scenario, technique, beams) in expected.items():
        t = load_template(name)
        assert (t.scenario, t.technique.technique, t.technique.beam_count) == (
            scenario,
            technique,
            beams,
        )
    assert load_template("brain-srs").scenario == "brain-srs"


def test_prostate_basic_objectives_resolve_relative_doses() -> None:
    t = load_template("prostate-basic")
    ids = {s.id: f"plan_{s.id}" for s in t.structures}
    objs = t.initial_objectives(ids)
    lower = objs[0]
    assert isinstance(lower, PointObjective)
    # 0.98 x 79.2 Gy = 77.616 Gy (hand-computed)
    assert lower.dose_gy == pytest.approx(77.616, abs=1e-9)
    assert lower.structure_id == "plan_PTV"
    assert isinstance(objs[-1], NormalTissueObjective)
    # scaled with a different prescription: 0.98 x 78 Gy = 76.44 Gy
    scaled = t.initial_objectives(ids, prescription_gy=78.0)[0]
    assert isinstance(scaled, PointObjective)
    assert scaled.dose_gy == pytest.approx(76.44, abs=1e-9)
    ranges = t.tpp_ranges_for(ids)
    r = ranges["plan_PTV:point:lower:100"]
    # [0.95, 1.02] x 79.2 Gy = [75.24, 80.784] Gy
    assert r.dose_gy == pytest.approx((75.24, 80.784), abs=1e-9)
    assert r.priority == (50.0, 300.0)
    assert r.volume_pct is None  # the volume of this objective may not move
    rule = t.normalization_rule(ids)
    assert rule is not None
    assert (rule.mode, rule.structure_id, rule.dose_gy, rule.volume_pct) == (
        NormalizationMode.DOSE_AT_VOLUME,
        "plan_PTV",
        79.2,
        95.0,
    )


def test_optional_structures_are_left_out_and_required_ones_demanded() -> None:
    t = load_template("brain-srs")
    ids = {s.id: s.id for s in t.structures if s.id not in ("PTV2", "PTV3")}
    objs = t.initial_objectives(ids)
    assert {getattr(o, "structure_id", "") for o in objs}.isdisjoint({"PTV2", "PTV3"})
    assert len(objs) == len(t.objectives) - 4
    del ids["Brainstem"]
    with pytest.raises(StructureMatchError, match="Brainstem"):
        t.initial_objectives(ids)


def test_cervix_keeps_the_study_weights_fixed() -> None:
    t = load_template("cervix")
    for key, r in t.tpp_ranges.items():
        assert r.priority is None, key
        assert r.dose_gy is not None, key
    objs = t.initial_objectives({s.id: s.id for s in t.structures})
    ptv_min = objs[0]  # the study's PTV minimum-dose objective, 37.6 Gy at weight 100
    assert isinstance(ptv_min, PointObjective)
    assert (ptv_min.dose_gy, ptv_min.volume_pct, ptv_min.priority) == (37.6, 100.0, 100.0)
    assert sum(isinstance(o, MeanDoseObjective) for o in objs) == 6
    r2 = t.structure("R2").derive
    assert r2 is not None and (r2.op, r2.inner_mm, r2.outer_mm) == ("ring", 5.0, 30.0)


def test_json_round_trip() -> None:
    t = load_template("liver")
    again = SiteTemplate.model_validate(t.model_dump(mode="json"))
    assert again == t


# ----- invalid templates: the message names the file, the field and the reason ---------------


def assert_template_error(
    tmp_path: Path, data: dict[str, Any], field: str, reason: str
) -> TemplateError:
    path = _write(tmp_path, data)
    with pytest.raises(TemplateError) as info:
        load_template(path)
    err = info.value
    assert err.file == str(path)
    assert any(f == field and reason in r for f, r in err.problems), err.problems
    assert str(path) in str(err) and field in str(err) and reason in str(err)
    return err


def test_missing_field(tmp_path: Path) -> None:
    data = _raw("liver")
    del data["prescription"]
    assert_template_error(tmp_path, data, "prescription", "missing required field")
    data = _raw("liver")
    del data["goals"][2]["comparator"]
    assert_template_error(tmp_path, data, "goals[2].comparator", "missing required field")


def test_unknown_structure_in_goal(tmp_path: Path) -> None:
    data = _raw("liver")
    data["goals"][0]["structure"] = "Duodenum"
    assert_template_error(tmp_path, data, "goals[0].structure", "unknown structure 'Duodenum'")


def test_threshold_order_reversed(tmp_path: Path) -> None:
    data = _raw("prostate-basic")
    crit = data["score"]["criteria"][1]
    crit["full"], crit["zero"] = crit["zero"], crit["full"]
    assert_template_error(tmp_path, data, "score.criteria[1].zero", "threshold order reversed")


def test_unit_mismatch(tmp_path: Path) -> None:
    data = _raw("liver")
    data["goals"][1]["limit"] = "15 %"  # D98% is a dose
    assert_template_error(tmp_path, data, "goals[1].limit", "unit mismatch")
    data = _raw("liver")
    data["score"]["criteria"][2]["full"] = "0.3 Rx"  # V60%Rx is a volume
    assert_template_error(tmp_path, data, "score.criteria[2].full", "unit mismatch")


def test_bad_metric_string(tmp_path: Path) -> None:
    data = _raw("liver")
    data["goals"][1]["metric"] = "D98"
    assert_template_error(tmp_path, data, "goals[1].metric", "missing volume unit")


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda d: d["objectives"][0].update(dose="1.5 Rx"), "objectives[0].range.dose", "outside"),
        (
            lambda d: d["objectives"][0]["range"].update(dose=["1.02 Rx", "0.95 Rx"]),
            "objectives[0].range.dose",
            "lower bound",
        ),
        (lambda d: d["objectives"][0].pop("volume_pct"), "objectives[0].volume_pct", "required"),
        (lambda d: d["objectives"][2].update(volume_pct=10), "objectives[2].volume_pct", "not a"),
        (
            lambda d: d["objectives"][0].update(colour="red"),
            "objectives[0].colour",
            "unknown field",
        ),
        (lambda d: d["score"].update(max_score=5), "score.max_score", "sum of weights"),
        (lambda d: d["goals"][0].update(priority=4), "goals[0].priority", "1, 2 or 3"),
        (lambda d: d["structures"][5].update(dicom_type="ORGAN"), "structures", "EXTERNAL"),
        (
            lambda d: d["structures"][2]["derive"].update(source="Pancreas"),
            "structures[2].derive",
            "unknown structure 'Pancreas'",
        ),
        (
            lambda d: d["structures"][1].update(derive={"op": "expand", "source": "Liver-PTV"}),
            "structures",
            "cycle",
        ),
        (
            lambda d: d["structures"][3]["aliases"].append("stomach"),
            "structures[4].aliases",
            "also names structure 'SpinalCord'",
        ),
        (lambda d: d["goals"][7].update(metric="CI_paddick"), "goals[7].metric", "needs a target"),
        (lambda d: d["prescription"].update(target="Liver"), "prescription.target", "not a PTV"),
        (lambda d: d["technique"].update(technique="VMAT"), "technique", "arcs"),
        (
            lambda d: d.update(objectives=[*d["objectives"], d["objectives"][0]]),
            "objectives[7]",
            "same objective key",
        ),
    ],
)
def test_other_invalid_templates(tmp_path: Path, mutate: Any, field: str, reason: str) -> None:
    data = copy.deepcopy(_raw("liver"))
    mutate(data)
    assert_template_error(tmp_path, data, field, reason)


def test_yaml_syntax_error_and_missing_things(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngoals: [\n")
    with pytest.raises(TemplateError, match="invalid YAML"):
        load_template(bad)
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "nope.yaml")
    with pytest.raises(TemplateError, match="no template named 'pancreas'; available: brain-srs"):
        load_template("pancreas")
    with pytest.raises(TemplateError, match="must be a YAML mapping"):
        parse_template("- a\n- b\n")


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    data = _raw("liver")
    data["goals"][0]["structure"] = "Nope"
    data["goals"][3]["limit"] = "5 cc"
    err = assert_template_error(tmp_path, data, "goals[0].structure", "unknown structure")
    assert [f for f, _ in err.problems] == ["goals[0].structure", "goals[3].limit"]
