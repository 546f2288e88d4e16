"""Knowledge cards (#14 item 3): schema round trip, the clinical hash and the refusals,
extraction from synthetic DRL episodes, the shuffled ablation card and the card text."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.policies.drl.episodes import EpisodeAction, EpisodeRecord, EpisodeStep
from agent.policies.drl.tpps import tpps_of
from agent.policies.knowledge import (
    KnowledgeCard,
    KnowledgeCardError,
    card_text,
    check_card,
    installed_card_path,
    read_card,
    shuffled_card,
    write_card,
)
from agent.policies.knowledge.extract import Origin, card_from_episodes, card_from_finals
from agent.session.identity import clinical_hash
from agent.templates import SiteTemplate, load_template, parse_template

ENGINE = "pencil-beam-3"
RX = 79.2
#: Final values (Gy for doses) of the 9 prostate TPPs that the synthetic episodes scatter.
BASE = {
    "PTV.upper.dose_gy": 84.0,
    "PTV.upper.priority": 150.0,
    "PTV.lower.priority": 200.0,
    "Bladder.upper[0].dose_gy": 60.0,
    "Bladder.upper[0].volume_pct": 15.0,
    "Bladder.upper[0].priority": 250.0,
    "Rectum.upper[0].dose_gy": 62.0,
    "Rectum.upper[0].volume_pct": 12.0,
    "Rectum.upper[0].priority": 90.0,
}
#: Five successful episodes: factors whose quartiles (numpy's linear method) are 0.95 / 1.05.
FACTORS = (0.9, 0.95, 1.0, 1.05, 1.2)


@pytest.fixture(scope="module")
def template() -> SiteTemplate:
    return load_template("prostate-basic")


def _episode(
    seed: int, factor: float, *, success: bool = True, source: str = "train"
) -> EpisodeRecord:
    finals = {k: v * factor for k, v in BASE.items()}
    steps = [
        EpisodeStep(  # lowering the bladder dose helps while bladder_v75 fails: +1.0 / +0.5
            tpp_values_before=finals,
            action=EpisodeAction(tpp="Bladder.upper[0].dose_gy", direction="down"),
            score_before=7.0, score_after=8.0 if seed % 2 else 7.5,
            fine_score_before=7.0, fine_score_after=8.0, reward=1.0,
            goal_margins={"bladder_v75": -2.0, "ptv_hot": 0.5},
        ),
        EpisodeStep(  # raising the PTV hot-spot dose hurts
            tpp_values_before=finals,
            action=EpisodeAction(tpp="PTV.upper.dose_gy", direction="up"),
            score_before=8.0, score_after=7.0,
            fine_score_before=8.0, fine_score_after=7.0, reward=-1.0,
            goal_margins={"bladder_v75": -1.0},
        ),
    ]  # fmt: skip
    return EpisodeRecord(
        scenario="prostate-basic", seed=seed, template="prostate-basic", template_hash="x",
        engine_version=ENGINE, source=source, initial_tpp_values=finals, initial_score=6.0,
        steps=steps, final_tpp_values=finals, final_score=9.0 if success else 7.0,
        max_score=9.0, success=success,
    )  # fmt: skip


def _episodes() -> list[EpisodeRecord]:
    good = [_episode(1000 + i, f) for i, f in enumerate(FACTORS)]
    failed = _episode(1010, 3.0, success=False)  # wild values: must not enter the statistics
    evaluation = _episode(3, 2.0, source="eval")  # an evaluation seed: never in a card
    return [*good, failed, evaluation]


@pytest.fixture(scope="module")
def card(template: SiteTemplate) -> KnowledgeCard:
    return card_from_episodes(template, _episodes(), ENGINE, commit="abc1234")


def test_extraction_from_synthetic_episodes_gives_the_expected_statistics(
    card: KnowledgeCard,
) -> None:
    # reference: median / quartiles of BASE x FACTORS (numpy linear percentiles of 5 values
    # are the 2nd, 3rd and 4th values); doses stored as fractions of Rx; tolerance 1e-6
    assert [t.name for t in card.tpps] == list(BASE)
    for name, base in BASE.items():
        stats = card.stats(name)
        scale = RX if stats.parameter == "dose_gy" else 1.0
        assert stats.unit == ("Rx" if scale == RX else "%" if "volume" in name else "priority")
        assert stats.count == 5
        assert stats.median == pytest.approx(base / scale, abs=1e-6)
        assert stats.q1 == pytest.approx(0.95 * base / scale, abs=1e-6)
        assert stats.q3 == pytest.approx(1.05 * base / scale, abs=1e-6)
        assert (stats.low, stats.high) == pytest.approx((0.9 * base / scale, 1.2 * base / scale))
    assert card.priority_hierarchy == [
        "Bladder.upper[0].priority", "PTV.lower.priority", "PTV.upper.priority",
        "Rectum.upper[0].priority",
    ]  # fmt: skip
    # helpful actions: the bladder dose down while bladder_v75 failed, mean of +1.0 (odd
    # seeds 1001, 1003) and +0.5 (1000, 1002, 1004) over the 6 training episodes of this scenario
    (best,) = [a for a in card.helpful_actions if a.situation == "bladder_v75"]
    assert (best.tpp, best.direction, best.count) == ("Bladder.upper[0].dose_gy", "down", 6)
    assert best.mean_gain == pytest.approx((2 * 1.0 + 3 * 0.5 + 0.5) / 6, abs=1e-4)
    p = card.provenance
    assert (p.source, p.episodes, p.successful, p.commit) == ("drl-episodes", 6, 5, "abc1234")
    assert 3 not in p.seeds and p.seeds == [1000, 1001, 1002, 1003, 1004, 1010]


def test_no_successful_training_episode_is_an_error_naming_what_was_found(
    template: SiteTemplate,
) -> None:
    with pytest.raises(ValueError, match="no successful training episode") as info:
        card_from_episodes(template, [_episode(3, 1.0, source="eval")], ENGINE)
    assert "1 episodes (0 training" in str(info.value)


def test_card_schema_round_trip(card: KnowledgeCard, tmp_path: Path) -> None:
    path = write_card(card, tmp_path / "knowledge" / "prostate-basic.json")
    assert read_card(path) == card
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["clinical_hash"] == card.clinical_hash


def test_unreadable_or_other_schema_cards_are_refused(card: KnowledgeCard, tmp_path: Path) -> None:
    data = card.model_dump(mode="json")
    (tmp_path / "v2.json").write_text(json.dumps(data | {"schema_version": 2}))
    with pytest.raises(KnowledgeCardError, match=r"schema version 2.*re-extract"):
        read_card(tmp_path / "v2.json")
    bad = data | {"tpps": [data["tpps"][0] | {"median": "high"}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(KnowledgeCardError, match=r"tpps\[0\]\.median"):
        read_card(tmp_path / "bad.json")
    with pytest.raises(KnowledgeCardError, match="no knowledge card at"):
        read_card(tmp_path / "missing.json")


def _edited(template: SiteTemplate, edit: Callable[[dict[str, Any]], None]) -> SiteTemplate:
    data = template.model_dump(mode="json")
    edit(data)
    return parse_template(data)


def test_a_card_is_refused_for_another_site_clinical_template_or_engine(
    card: KnowledgeCard, template: SiteTemplate
) -> None:
    check_card(card, template, ENGINE)  # its own template and engine: accepted
    with pytest.raises(KnowledgeCardError, match=r"is for site 'prostate-basic'.*liver"):
        check_card(card, load_template("liver"), ENGINE)

    def tighter_goal(d: dict[str, Any]) -> None:
        d["goals"][2]["limit"] = "14"

    changed = _edited(template, tighter_goal)
    assert clinical_hash(changed) != clinical_hash(template)
    with pytest.raises(KnowledgeCardError, match=r"another version of template.*re-extract"):
        check_card(card, changed, ENGINE)

    def wider_range(d: dict[str, Any]) -> None:
        d["objectives"][2]["range"]["priority"] = [0, 400]

    with pytest.raises(KnowledgeCardError, match="another version of template"):
        check_card(card, _edited(template, wider_range), ENGINE)
    with pytest.raises(KnowledgeCardError, match=r"dose engine 'pencil-beam-3'.*'pencil-beam-4'"):
        check_card(card, template, "pencil-beam-4")


def test_aliases_descriptions_and_notes_do_not_change_the_clinical_hash(
    card: KnowledgeCard, template: SiteTemplate
) -> None:
    def reworded(d: dict[str, Any]) -> None:
        d["description"] = "Reworded description."
        d["structures"][0]["aliases"].append("PTV_Main")
        d["structures"][1]["description"] = "the whole bladder"
        d["goals"][0]["note"] = "another note"
        d["references"] = []

    other = _edited(template, reworded)
    assert other != template
    assert clinical_hash(other) == clinical_hash(template)
    check_card(card, other, ENGINE)


def test_the_shuffled_card_is_a_seeded_permutation_within_each_parameter(
    card: KnowledgeCard,
) -> None:
    shuffled = shuffled_card(card, seed=14)
    assert shuffled == shuffled_card(card, seed=14)  # seeded: reproducible
    assert (
        shuffled.provenance.source == "shuffled" and "seed 14" in shuffled.provenance.derived_from
    )
    assert [t.name for t in shuffled.tpps] == [t.name for t in card.tpps]
    values = ("median", "q1", "q3", "low", "high", "count")
    for parameter in ("dose_gy", "volume_pct", "priority"):
        before = [t for t in card.tpps if t.parameter == parameter]
        after = [t for t in shuffled.tpps if t.parameter == parameter]
        rows = lambda ts: sorted(tuple(getattr(t, v) for v in values) for t in ts)  # noqa: E731
        assert rows(after) == rows(before)  # the same statistics, on other TPPs
        assert all(a.median != b.median for a, b in zip(after, before, strict=True))
    assert (
        shuffled.priority_hierarchy[0]
        == max((t for t in shuffled.tpps if t.parameter == "priority"), key=lambda t: t.median).name
    )


def test_card_text_names_every_tpp_with_doses_in_gy(card: KnowledgeCard) -> None:
    text = card_text(card, RX)
    for name in BASE:
        assert f"- {name}: " in text
    assert "1.061 Rx (84.0 Gy)" in text  # PTV.upper.dose_gy median 84 Gy = 1.0606 Rx
    assert "Bladder.upper[0].priority > PTV.lower.priority" in text
    assert "while bladder_v75 failed: Bladder.upper[0].dose_gy down" in text
    assert "pencil-beam-3" in text and "1000-1004, 1010" not in text


def test_synthetic_finals_and_numpy_agree(template: SiteTemplate) -> None:
    rng = np.random.default_rng(0)
    finals = [{n: float(v * rng.uniform(0.8, 1.2)) for n, v in BASE.items()} for _ in range(7)]
    card = card_from_finals(template, finals, Origin("synthetic", (1000,), 7, ENGINE))
    got = card.stats("Rectum.upper[0].priority")
    ref = np.percentile([f["Rectum.upper[0].priority"] for f in finals], [25, 50, 75])
    assert (got.q1, got.median, got.q3) == pytest.approx(tuple(ref), abs=1e-6)
    assert len(card.tpps) == len(tpps_of(template))


def test_every_installed_card_matches_its_template_and_the_engine() -> None:
    from mock_tps.dose_engine import ENGINE_VERSION

    folder = installed_card_path("prostate-basic").parent
    for path in sorted(folder.glob("*.json")):
        card = read_card(path)
        assert path.stem == card.scenario
        check_card(card, load_template(card.template), ENGINE_VERSION)
        assert card.provenance.successful >= 1


@pytest.mark.parametrize("scenario", ["prostate-basic", "liver"])
def test_the_prior_search_moves_only_the_cards_tpps(scenario: str, tmp_path: Path) -> None:
    from bench.knowledge import card_tpp_template
    from bench.tpp_search import tpp_dims

    original = load_template(scenario)
    restricted = load_template(card_tpp_template(scenario, tmp_path))
    identity = {s.id: s.id for s in restricted.structures}
    dims = tpp_dims(restricted.initial_objectives(identity), restricted.tpp_ranges_for(identity))
    assert {(d.index, d.field) for d in dims} == {
        (t.objective_index, t.parameter) for t in tpps_of(original)
    }
    assert restricted.goals == original.goals and restricted.score == original.score
