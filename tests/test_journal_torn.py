"""Item 3 of #8: a torn last journal line is the expected crash mode, not the end of a session.

resume moves the torn bytes aside and continues; report and replay ignore them read-only
with a notice; corruption before the last line is still refused, untouched, by line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from journal_helpers import factory, killed_session

from agent.report import build_report
from agent.report.data import load_report_data
from agent.session.journal import JournalCorrupt, read_journal
from agent.session.provenance import IntegrityStatus
from agent.session.records import StopReason
from agent.session.replay import replay_session
from agent.session.resume import resume_session

TORN = b'{"entry":"iteration","iteration":2,"proposal":{"objec'


def test_resume_moves_the_torn_tail_aside_truncates_and_continues(tmp_path: Path) -> None:
    path = killed_session(tmp_path / "s", keep_lines=5, torn=TORN)
    complete = path.read_bytes()[: -len(TORN)]
    summary = resume_session(path, factory())
    assert summary.stop_reason not in (StopReason.INTERRUPTED, StopReason.ERROR)
    moved = list((tmp_path / "s").glob("journal.jsonl.torn-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == TORN  # nothing lost
    after = path.read_bytes()
    assert after.startswith(complete) and TORN not in after
    log = read_journal(path)  # the continued chain verifies
    assert log.integrity.status is IntegrityStatus.VERIFIED and log.torn_tail is None
    assert [r.iteration for r in log.iterations] == list(range(len(log.iterations)))
    assert [e.kind for e in log.events].count("resumed") == 1


def test_a_last_line_of_garbage_with_its_newline_is_a_torn_tail_too(tmp_path: Path) -> None:
    path = killed_session(tmp_path / "s", keep_lines=5, torn=b"\x00" * 30 + b"\n")
    log = read_journal(path)
    assert log.torn_tail is not None and log.torn_tail.line == 6
    assert log.torn_tail.size_bytes == 31
    resume_session(path, factory())
    assert b"\x00" not in path.read_bytes()


def test_report_and_replay_ignore_the_torn_tail_read_only_with_a_notice(tmp_path: Path) -> None:
    path = killed_session(tmp_path / "s", keep_lines=5, torn=TORN)
    before = path.read_bytes()
    log = read_journal(path)
    assert log.torn_tail is not None and log.torn_tail.line == 6
    assert any("last line (6) is cut short" in n for n in log.notices)
    data = load_report_data(tmp_path / "s")
    assert any("cut short" in m for m in data.missing)
    build_report(tmp_path / "s")
    result = replay_session(path, factory(), out_dir=tmp_path / "r")
    assert any("cut short" in n for n in result.notices)
    assert result.recorded_iterations == len(log.iterations)
    assert path.read_bytes() == before  # readers never repair
    assert not list((tmp_path / "s").glob("journal.jsonl.torn-*"))


def test_corruption_before_the_last_line_is_refused_untouched(tmp_path: Path) -> None:
    path = killed_session(tmp_path / "s", keep_lines=5, torn=TORN)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:40]  # line 3 cut in the middle, the torn tail still last
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    for reader in (read_journal, lambda p: resume_session(p, factory())):
        with pytest.raises(JournalCorrupt, match="line 3 is not valid JSON"):
            reader(path)
    assert path.read_bytes() == before
    assert not list((tmp_path / "s").glob("journal.jsonl.torn-*"))


def test_a_journal_whose_only_line_is_torn_is_refused(tmp_path: Path) -> None:
    path = killed_session(tmp_path / "s", keep_lines=0, torn=b'{"entry":"header","sch')
    with pytest.raises(JournalCorrupt, match="no complete line"):
        resume_session(path, factory())
    assert path.read_bytes() == b'{"entry":"header","sch'
