"""Mapping a plan's structure ids to template structures."""

from __future__ import annotations

import pytest

from agent.templates import StructureMatchError, load_template, match_structures
from agent.templates.names import simple_key, tg263_forms
from esapi_bridge.dto import StructureInfo

PROSTATE_IDS = ["PTV", "Bladder", "Rectum", "Femur_Head_L", "Femur_Head_R", "BODY"]


def test_exact_ids() -> None:
    t = load_template("prostate-complex")
    assert match_structures(t, PROSTATE_IDS) == {sid: sid for sid in PROSTATE_IDS}


def test_aliases_case_punctuation_and_tg263() -> None:
    t = load_template("prostate-complex")
    plan = ["PTV_7920", "BLADDER", "rectum", "FemoralHead_L", "femoral head right", "External"]
    assert match_structures(t, plan) == {
        "PTV": "PTV_7920",  # exact alias
        "Bladder": "BLADDER",  # case-insensitive
        "Rectum": "rectum",
        "Femur_Head_L": "FemoralHead_L",  # exact alias
        "Femur_Head_R": "femoral head right",  # exact alias (case-insensitive)
        "BODY": "External",
    }


@pytest.mark.parametrize(
    "plan_id",
    ["Femur_Head_L", "femur head l", "L Femur Head", "Lt_Femoral_Head", "FEMUR-HEAD-LEFT"],
)
def test_tg263_normalization_of_femoral_head(plan_id: str) -> None:
    t = load_template("prostate-complex")
    plan = ["PTV", "Bladder", "Rectum", plan_id, "Femur_Head_R", "BODY"]
    assert match_structures(t, plan)["Femur_Head_L"] == plan_id


def test_tg263_word_order_and_joined_words() -> None:
    t = load_template("cervix")
    plan = [
        "PTV", "Bladder", "Rectum", "Small Bowel", "Bone Marrow", "Spinal Cord",
        "Femur_Head_L", "Femur_Head_R", "R2", "R3", "R4", "BODY",
    ]  # fmt: skip
    m = match_structures(t, plan)
    assert (m["Bowel_Small"], m["Bone_Marrow"], m["SpinalCord"]) == (
        "Small Bowel",
        "Bone Marrow",
        "Spinal Cord",
    )
    assert tg263_forms("OpticNrv_L") & tg263_forms("optic nerve left")
    assert simple_key("Femur_Head_L") == simple_key("femur head l") == "femurheadl"


def test_exact_tier_wins_over_looser_tiers() -> None:
    t = load_template("prostate-basic")
    # "ptv" would match PTV case-insensitively, but the exact id wins
    plan = ["PTV", "ptv", "Bladder", "Rectum", "BODY"]
    assert match_structures(t, plan)["PTV"] == "PTV"


def test_missing_required_lists_candidates() -> None:
    t = load_template("prostate-basic")
    with pytest.raises(StructureMatchError) as info:
        match_structures(t, ["PTV", "Bladder", "Rectm_wall", "BODY", "CouchSurface"])
    err = info.value
    assert set(err.missing) == {"Rectum"}
    assert "Rectm_wall" in err.missing["Rectum"]
    assert "required structure 'Rectum'" in str(err) and "Rectm_wall" in str(err)
    assert "Femur_Head_L" not in err.missing  # optional in prostate-basic


def test_missing_required_without_resemblance_lists_all_plan_ids() -> None:
    t = load_template("tg119-easy")
    with pytest.raises(StructureMatchError) as info:
        match_structures(t, ["OuterTarget", "BODY", "Zz1", "Qq2"])
    assert info.value.missing == {"Core": ["BODY", "OuterTarget", "Qq2", "Zz1"]}


def test_ambiguous_matches_are_errors_not_guesses() -> None:
    t = load_template("prostate-basic")
    with pytest.raises(StructureMatchError) as info:
        match_structures(t, ["PTV", "bladder", "BLADDER", "Rectum", "BODY"])
    assert info.value.ambiguous == {"Bladder": ["bladder", "BLADDER"]}
    assert "ambiguous" in str(info.value)


def test_one_plan_id_claimed_twice_is_ambiguous() -> None:
    t = load_template("head-and-neck")
    # "Parotids" matches neither; "Parotid" is not an alias -> missing, not a guess
    base = ["PTV70", "PTV56", "SpinalCord", "Brainstem", "Cavity_Oral", "Larynx"]
    base += ["Bone_Mandible", "BODY", "PTV56-PTV70+10mm", "BODY-PTV"]
    with pytest.raises(StructureMatchError) as info:
        match_structures(t, [*base, "Parotid"])
    assert set(info.value.missing) == {"Parotid_L", "Parotid_R"}
    assert info.value.missing["Parotid_L"][0] == "Parotid"
    # overriding both structures onto one plan id is a conflict
    with pytest.raises(StructureMatchError, match="matches several template structures"):
        match_structures(
            t, [*base, "Parotid"], overrides={"Parotid_L": "Parotid", "Parotid_R": "Parotid"}
        )


def test_overrides_resolve_ambiguity_and_are_checked() -> None:
    t = load_template("prostate-basic")
    plan = ["PTV", "bladder", "BLADDER", "Rectum", "BODY"]
    assert match_structures(t, plan, overrides={"Bladder": "BLADDER"})["Bladder"] == "BLADDER"
    with pytest.raises(StructureMatchError, match="unknown template structure 'Kidney'"):
        match_structures(t, plan, overrides={"Kidney": "BLADDER"})
    with pytest.raises(StructureMatchError, match="the plan has no structure 'Blase'"):
        match_structures(t, plan, overrides={"Bladder": "Blase"})


def test_structure_infos_and_empty_structures() -> None:
    t = load_template("tg119-easy")
    infos = [
        StructureInfo(structure_id="OuterTarget", dicom_type="PTV", volume_cm3=170.0),
        StructureInfo(structure_id="Core", dicom_type="ORGAN", volume_cm3=0.0, is_empty=True),
        StructureInfo(structure_id="BODY", dicom_type="EXTERNAL", volume_cm3=9000.0),
    ]
    with pytest.raises(StructureMatchError) as info:
        match_structures(t, infos)  # an empty structure does not count
    assert set(info.value.missing) == {"Core"}
