"""TPPs of the DRL planner (agent.policies.drl.tpps) and its episode records (episodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.policies.drl.episodes import (
    EpisodeAction,
    EpisodeRecord,
    EpisodeStep,
    append_episodes,
    read_episodes,
)
from agent.policies.drl.tpps import read_values, tpps_of, write_values
from agent.session.guardrails import GuardLimits, Guardrails
from agent.session.records import Proposal, VerdictStatus
from agent.templates import load_template
from esapi_bridge.dto import StructureInfo, objective_key


def _identity(name: str) -> dict[str, str]:
    return {s.id: s.id for s in load_template(name).structures}


def test_prostate_basic_has_the_published_nine_with_template_ranges() -> None:
    template = load_template("prostate-basic")
    tpps = tpps_of(template)
    assert len(tpps) == 9  # 18 actions
    by_name = {t.name: t for t in tpps}
    rx = template.prescription.dose_gy
    hot = by_name["PTV.upper.dose_gy"]
    # template range 1.0-1.12 Rx (site_templates/prostate-basic.yaml), 1e-9 Gy
    assert hot.lo == pytest.approx(1.0 * rx, abs=1e-9) and hot.hi == pytest.approx(1.12 * rx)
    assert (hot.up_factor, hot.down_factor) == (1.01, 0.91)  # published, within the step bound
    oar = by_name["Bladder.upper[0].dose_gy"]
    # published x1.25 / x0.6 exceed the guardrails' 0.15 Rx step at the 1.0 Rx cap: 1 +- 0.15
    assert oar.up_factor == pytest.approx(1.15) and oar.down_factor == pytest.approx(0.85)
    assert by_name["Rectum.upper[0].priority"].up_factor == 1.65


@pytest.mark.parametrize("name", ["prostate-basic", "prostate-complex", "liver"])
def test_every_step_from_anywhere_in_range_is_within_the_guardrail_bounds(name: str) -> None:
    template = load_template(name)
    limits = GuardLimits()
    rx = template.prescription.dose_gy
    for t in tpps_of(template):
        bound = {
            "dose_gy": limits.max_dose_step_rx * rx,
            "volume_pct": limits.max_volume_step_pct,
        }
        for k in range(51):
            v = t.floor + (t.hi - t.floor) * k / 50
            for direction in ("up", "down"):
                new = t.stepped(v, direction)
                assert t.floor - 1e-9 <= new <= t.hi + 1e-9
                allowed = bound.get(t.parameter, max(limits.max_priority_step_abs, v))
                assert abs(new - v) <= allowed + 1e-3, (t.name, v, direction)


def test_read_and_write_round_trip_and_guardrails_accept_the_result() -> None:
    template = load_template("prostate-basic")
    smap = _identity("prostate-basic")
    tpps = tpps_of(template)
    objectives = template.initial_objectives(smap)
    values = read_values(tpps, objectives, smap)
    assert values["Bladder.upper[0].volume_pct"] == 30.0
    moved = write_values(
        tpps, objectives, {"Bladder.upper[0].volume_pct": 60.0, "PTV.upper.dose_gy": 999.0}, smap
    )
    # 60 % would repeat the second bladder objective's key: moved 0.5 % away
    assert moved[2].volume_pct == 59.5  # type: ignore[union-attr]
    assert read_values(tpps, moved, smap)["PTV.upper.dose_gy"] == pytest.approx(1.12 * 79.2)
    assert len({objective_key(o) for o in moved}) == len(moved)
    structures = [
        StructureInfo(structure_id=s.id, dicom_type=s.dicom_type, volume_cm3=100.0)
        for s in template.structures
    ]
    guard = Guardrails(template, smap, structures, 79.2)
    small = write_values(tpps, objectives, {"Bladder.upper[0].volume_pct": 37.5}, smap)
    verdict, _ = guard.check(Proposal(objectives=small, rationale="t"), objectives)
    assert verdict.status is VerdictStatus.ACCEPTED


def test_unknown_selection_names_the_known_tpps() -> None:
    with pytest.raises(ValueError, match=r"PTV\.upper\.dose_gy"):
        tpps_of(load_template("prostate-basic"), selection=["PTV.nothing"])


def test_episode_records_round_trip_through_jsonl(tmp_path: Path) -> None:
    step = EpisodeStep(
        tpp_values_before={"PTV.upper.dose_gy": 86.3},
        action=EpisodeAction(tpp="PTV.upper.dose_gy", direction="down"),
        score_before=6.0,
        score_after=7.5,
        fine_score_before=5.0,
        fine_score_after=6.0,
        reward=7.0,
        goal_margins={"ptv_hot": -1.2},
    )
    rec = EpisodeRecord(
        scenario="prostate-basic", seed=1000, template="prostate-basic", template_hash="ab",
        engine_version="1", source="train", initial_tpp_values={"PTV.upper.dose_gy": 86.3},
        initial_score=6.0, steps=[step], final_tpp_values={"PTV.upper.dose_gy": 78.5},
        final_score=9.0, max_score=9.0, success=True,
    )  # fmt: skip
    path = tmp_path / "e.jsonl"
    assert append_episodes(path, [rec, rec.model_copy(update={"success": False})]) == 2
    assert read_episodes(path)[0] == rec
    assert len(read_episodes(path, success_only=True)) == 1
    path.write_text("{}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"e\.jsonl:1"):
        read_episodes(path)
