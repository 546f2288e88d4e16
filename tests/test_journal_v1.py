"""Item 18 of #8: version-1 journals (tests/data/journal-v1, written by the code before the
v2 schema) are read with their stop reasons mapped and marked unverified; resume refuses
them naming the version; other versions are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from journal_helpers import factory

from agent.report import build_report
from agent.session.journal import JournalCorrupt, JournalUnverifiable, read_journal
from agent.session.journal_read import load_summary_file, map_v1_summary
from agent.session.provenance import IntegrityStatus
from agent.session.records import StopReason
from agent.session.resume import resume_session

V1 = Path(__file__).parent / "data" / "journal-v1"


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(V1 / name, tmp_path / name))


def test_a_v1_journal_is_read_mapped_and_marked_unverified() -> None:
    raw = [
        json.loads(line) for line in (V1 / "finished" / "journal.jsonl").read_text().splitlines()
    ]
    assert raw[0]["schema_version"] == 1 and raw[-1]["stop_reason"] == "goals_met"
    log = read_journal(V1 / "finished")
    assert log.header.schema_version == 1
    assert log.integrity.status is IntegrityStatus.UNVERIFIED_V1
    assert log.notices[0].startswith("UNVERIFIED: ") and "schema version 1" in log.notices[0]
    # v1 said "goals_met" while priority-2 goals failed: mapped to what is true of the plan
    assert log.summary is not None
    assert log.summary.stop_reason is StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT
    assert log.summary.final_evaluation is not None
    assert any(g.status.value != "met" for g in log.summary.final_evaluation.goals)
    summary = load_summary_file(V1 / "finished" / "summary.json")
    assert summary.stop_reason is StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT


def test_goals_met_with_every_goal_met_maps_to_all_goals_met() -> None:
    data = json.loads((V1 / "finished" / "summary.json").read_text())
    for goal in data["final_evaluation"]["goals"]:
        goal["status"] = "met"
    assert map_v1_summary(data)["stop_reason"] == StopReason.ALL_GOALS_MET.value
    assert map_v1_summary({**data, "stop_reason": "iteration_limit"})["stop_reason"] == (
        "iteration_limit"
    )


def test_resume_refuses_a_v1_journal_naming_the_version(tmp_path: Path) -> None:
    session_dir = _copy("interrupted", tmp_path)
    before = (session_dir / "journal.jsonl").read_bytes()
    with pytest.raises(JournalUnverifiable, match="schema version 1"):
        resume_session(session_dir, factory())
    assert (session_dir / "journal.jsonl").read_bytes() == before


def test_a_v1_session_still_gets_a_report_with_the_unverified_warning(tmp_path: Path) -> None:
    session_dir = _copy("finished", tmp_path)
    build_report(session_dir)
    report = json.loads((session_dir / "report" / "report.json").read_text())
    assert report["missing"][0].startswith("UNVERIFIED: ")


def test_an_unknown_schema_version_is_refused_naming_it(tmp_path: Path) -> None:
    session_dir = _copy("finished", tmp_path)
    path = session_dir / "journal.jsonl"
    text = path.read_text()
    path.write_text(text.replace('"schema_version":1', '"schema_version":7', 1))
    with pytest.raises(JournalCorrupt, match="schema version 7 is not supported"):
        read_journal(path)
