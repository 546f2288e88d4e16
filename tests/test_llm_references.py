"""Reference plans and the knowledge card of the LLM planner (#10): the best plan of an
earlier session of the same site by template ids only, fixed in the recorded settings with
its layout, so a resumed or replayed session sees the same prompt."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import ORIGINAL_OBJECTIVES, PROSTATE_STRUCTURES, FakeStructure, FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.policies import RulePolicy
from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.references import reference_plan_text, reference_plan_texts
from agent.policies.llm.settings import LlmSettings
from agent.session.loop import PlanningLoop
from agent.session.provenance import PolicyDescription
from agent.session.records import SessionConfig

PLAN_ID = "Smith^John_MRN1234567"
RENAMED = {"PTV": "PTV_Smith", "Rectum": "Rectum_MRN123456"}


def _earlier_session(tmp_path: Path) -> tuple[Path, object]:
    """A finished rule session on a plan whose ids name the patient."""
    structures = [
        FakeStructure(RENAMED.get(s.structure_id, s.structure_id), s.dicom_type, s.volume_cm3,
                      s.free_max_gy)
        for s in PROSTATE_STRUCTURES
    ]  # fmt: skip
    objectives = [
        o.model_copy(update={"structure_id": RENAMED.get(o.structure_id, o.structure_id)})
        if hasattr(o, "structure_id")
        else o
        for o in ORIGINAL_OBJECTIVES
    ]
    template = frozen_prostate_template()
    specs = [
        s.model_copy(update={"aliases": [*s.aliases, RENAMED[s.id]]}) if s.id in RENAMED else s
        for s in template.structures
    ]
    template = template.model_copy(update={"structures": specs})
    fake = FakeTpsSession(
        structures_spec=structures, plan_id=PLAN_ID, initial_objectives=objectives
    )
    config = SessionConfig(template="prostate-basic", max_iterations=8)
    out = tmp_path / "earlier"
    summary = PlanningLoop(fake, template, RulePolicy(), config, out, save_snapshots=False).run()
    assert summary.final_evaluation is not None
    return out, template


def test_the_reference_is_the_best_plan_by_template_ids_only(tmp_path: Path) -> None:
    session_dir, template = _earlier_session(tmp_path)
    text = reference_plan_text(session_dir, template)  # type: ignore[arg-type]
    assert text.startswith("The best plan of an earlier session of this site")
    assert "score: 9.00 of 9.00" in text  # the rule policy reaches 9/9 on the fake
    assert '| "PTV" |' in text
    assert '"Rectum"' in text and "| O1 |" in text  # the objectives table, with its ids
    for identifier in ("Smith", "MRN", PLAN_ID):
        assert identifier not in text
    assert "\n|" in text  # tables keep their rows


def test_a_reference_of_another_site_or_no_session_is_refused(tmp_path: Path) -> None:
    session_dir, template = _earlier_session(tmp_path)
    other = template.model_copy(update={"name": "liver"})  # type: ignore[attr-defined]
    with pytest.raises(LlmConfigError, match=r"template 'prostate-basic'.*uses 'liver'"):
        reference_plan_text(session_dir, other)
    with pytest.raises(LlmConfigError, match="no readable session"):
        reference_plan_text(tmp_path / "nowhere", template)  # type: ignore[arg-type]
    with pytest.raises(LlmConfigError, match="at most 3"):
        reference_plan_texts([session_dir] * 4, template)  # type: ignore[arg-type]


def test_reference_plans_and_the_card_keep_their_lines_through_the_journal_header(
    tmp_path: Path,
) -> None:
    session_dir, template = _earlier_session(tmp_path)
    text = reference_plan_text(session_dir, template)  # type: ignore[arg-type]
    settings = LlmSettings(reference_plans=[text], knowledge_card="line 1\nline 2\x07")
    assert settings.reference_plans == [text] and settings.knowledge_card == "line 1\nline 2"
    recorded = PolicyDescription(name="llm", settings=settings.model_dump(mode="json"))
    back = LlmSettings.model_validate(
        PolicyDescription.model_validate_json(recorded.model_dump_json()).settings
    )
    assert back == settings  # what resume and replay rebuild the prompt from


def test_settings_refuse_too_many_or_too_long_references() -> None:
    with pytest.raises(ValueError, match="at most 3"):
        LlmSettings(reference_plans=["a"] * 4)
    with pytest.raises(ValueError, match="at most 8000"):
        LlmSettings(reference_plans=["x" * 8001])
    with pytest.raises(ValueError, match="at most 8000"):
        LlmSettings(knowledge_card="x" * 8001)
