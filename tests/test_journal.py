"""Journal: durability, read-back, corrupt/truncated files, resume and replay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeStructure, FakeTpsSession
from journal_helpers import factory

from agent.policies import RulePolicy
from agent.session.journal import Journal, JournalCorrupt, JournalError, read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig, SessionEvent, StopReason
from agent.session.resume import ResumeError, replay_session, resume_session
from agent.templates import load_template

TEMPLATE = load_template("prostate-basic")


def _run(session_dir: Path, fake: FakeTpsSession, **cfg: Any):
    config = SessionConfig(template="prostate-basic", scenario="fake", seed=0, **cfg)
    loop = PlanningLoop(fake, TEMPLATE, RulePolicy(), config, session_dir, save_snapshots=False)
    return loop.run()


def test_every_write_is_flushed_and_synced(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr("agent.session.journal.os.fsync", lambda fd: synced.append(fd))
    with Journal(tmp_path / "j.jsonl") as journal:
        journal.write(SessionEvent(kind="a"))
        journal.write(SessionEvent(kind="b"))
        # readable by another reader before close: the line is flushed
        assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 2
    assert len(synced) >= 2  # the write probe syncs too


def test_round_trip(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession())
    log = read_journal(tmp_path / "s" / "journal.jsonl")
    assert log.finished and log.iterations[0].iteration == 0
    assert [r.iteration for r in log.iterations] == list(range(len(log.iterations)))
    assert len(log.intents) == len(log.iterations)  # one apply per iteration, nothing restored


def test_finished_journal_cut_short_is_refused_against_its_chain_head(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession(), max_iterations=1)
    path = tmp_path / "s" / "journal.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # killed mid-line
    before = path.read_bytes()
    with pytest.raises(JournalCorrupt, match="truncated"):
        resume_session(path, factory())
    assert path.read_bytes() == before


def test_corrupt_line_names_its_number(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession(), max_iterations=1)
    path = tmp_path / "s" / "journal.jsonl"
    lines = path.read_text().splitlines()
    original = lines[2]
    lines[2] = original.replace('"entry":', '"entry_x":', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(JournalCorrupt, match="line 3 is not a valid journal entry") as err:
        read_journal(path)
    assert "validation error for" not in str(err.value)  # our words, not pydantic's
    # a value out of range names the field, the value, and says what it means
    bad = json.loads(original)
    bad["iteration"] = -4
    lines[2] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        JournalCorrupt, match=r"line 3 is not a valid \w+ entry \(.*iteration"
    ) as err:
        read_journal(path)
    assert "got -4" in str(err.value) and "edited or damaged" in str(err.value)
    assert "pydantic" not in str(err.value)
    lines[2] = lines[2].replace('"entry":', '"entry_x":', 1)
    path.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(JournalCorrupt, match="line 2"):
        resume_session(path, factory())


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "empty"), ('{"entry": "event", "kind": "x"}\n', "not a session header")],
)
def test_journal_without_header(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(text)
    with pytest.raises(JournalCorrupt, match=match):
        read_journal(path)


def test_missing_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalCorrupt, match="no journal"):
        read_journal(tmp_path / "nothing.jsonl")


def test_resume_after_ctrl_c_continues_and_appends(tmp_path: Path) -> None:
    fake = FakeTpsSession(faults={2: KeyboardInterrupt()})
    first = _run(tmp_path / "s", fake)
    assert first.stop_reason is StopReason.INTERRUPTED
    path = tmp_path / "s" / "journal.jsonl"
    before = path.read_bytes()
    open_session = factory()
    summary = resume_session(path, open_session)
    after = path.read_bytes()
    assert after.startswith(before)  # appended, never rewritten
    assert summary.stop_reason is StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT
    log = read_journal(path)
    assert (
        log.summary is not None
        and log.summary.stop_reason is StopReason.PRIORITY1_MET_NO_FURTHER_IMPROVEMENT
    )
    assert [e.kind for e in log.events].count("resumed") == 1
    assert "reoptimized" in [e.kind for e in log.events]
    assert [r.iteration for r in log.iterations] == list(range(len(log.iterations)))
    # restart mode: the re-optimized plan reproduces the last recorded one exactly
    reopt = next(e for e in log.events if e.kind == "reoptimized")
    recorded = log.iterations[reopt.iteration or 0].score
    assert f"score {recorded} (recorded {recorded})" in reopt.message
    # iteration 0 (1 optimization) + resume re-optimization + one per new iteration
    resumed = open_session.sessions[0]
    assert resumed.events[1] == "optimize:restart"
    assert summary.inner_optimizations == 1 + resumed.optimize_calls


def test_finished_session_is_not_resumed(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession())
    with pytest.raises(ResumeError, match="already finished"):
        resume_session(tmp_path / "s", factory())


def test_resume_refuses_another_case(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession(faults={2: KeyboardInterrupt()}))
    other = [
        FakeStructure(s.structure_id, s.dicom_type, s.volume_cm3 * 1.5, s.free_max_gy)
        for s in FakeTpsSession().structures_spec
    ]
    with pytest.raises(ResumeError, match="not the journaled case"):
        resume_session(tmp_path / "s", factory(structures_spec=other))


def test_replay_matches_a_recorded_session(tmp_path: Path) -> None:
    recorded = _run(tmp_path / "s", FakeTpsSession())
    report = replay_session(tmp_path / "s", factory(), out_dir=tmp_path / "r")
    assert report.matched, report.comparisons
    assert report.recorded_iterations == recorded.iterations + 1
    # the fake is deterministic: replayed metrics are identical, far inside the tolerance
    assert max(c.max_abs_difference for c in report.comparisons) <= 1e-9
    assert read_journal(tmp_path / "r").header.config.policy == "replay"


def test_replay_detects_a_different_dose_response(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession())
    softer = [
        FakeStructure(s.structure_id, s.dicom_type, s.volume_cm3, s.free_max_gy * 0.97)
        for s in FakeTpsSession().structures_spec
    ]
    report = replay_session(tmp_path / "s", factory(structures_spec=softer), out_dir=tmp_path / "r")
    assert not report.matched
    assert max(c.max_abs_difference for c in report.comparisons) > report.tolerance


def test_journal_lines_are_json_objects(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession(), max_iterations=1)
    for line in (tmp_path / "s" / "journal.jsonl").read_text().splitlines():
        assert isinstance(json.loads(line), dict)


def test_append_requires_explicit_flag(tmp_path: Path) -> None:
    _run(tmp_path / "s", FakeTpsSession(faults={2: KeyboardInterrupt()}))
    path = tmp_path / "s" / "journal.jsonl"
    with pytest.raises(JournalError, match="already exists"):
        Journal(path)
    Journal(path, append=True).close()


def test_a_new_journal_that_gets_no_entry_leaves_nothing(tmp_path: Path) -> None:
    session_dir = tmp_path / "s"
    Journal(session_dir / "journal.jsonl").close()
    assert list(session_dir.iterdir()) == []  # no journal, no lock file
    with Journal(session_dir / "journal.jsonl") as journal:
        journal.write(SessionEvent(kind="a"))
    with pytest.raises(JournalError, match="already exists"):
        Journal(session_dir / "journal.jsonl")
