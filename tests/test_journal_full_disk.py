"""Item 3 of #8: a full disk or read-only directory gives our clear error and leaves no
empty or partial file behind (journal, summary.json, report files)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fakes import FakeTpsSession
from journal_helpers import interrupted_session, run_session

from agent.session.journal import Journal, JournalError, read_journal
from agent.session.plan_step import write_summary
from agent.session.records import SessionEvent, SessionSummary
from rtplan_common.atomic_io import AtomicWriteError, write_text_atomic

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _fail_after(monkeypatch, target: str, calls: int) -> None:
    """Make ``target`` (``os.write`` or ``os.fsync`` of a module) fail from call ``calls + 1``."""
    real = getattr(os, target)
    count = {"n": 0}

    def flaky(*args):
        count["n"] += 1
        if count["n"] > calls:
            raise ENOSPC
        return real(*args)

    monkeypatch.setattr(f"agent.session.journal.os.{target}", flaky)


@pytest.mark.parametrize("target", ["write", "fsync"])
def test_a_failed_first_write_leaves_no_journal_and_no_lock_file(
    tmp_path: Path, monkeypatch, target: str
) -> None:
    journal = Journal(tmp_path / "s" / "journal.jsonl")
    _fail_after(monkeypatch, target, 0)
    with pytest.raises(JournalError, match="the disk is full"):
        journal.write(SessionEvent(kind="a"))
    assert list((tmp_path / "s").iterdir()) == []
    assert journal.closed


def test_a_failed_later_write_is_cut_back_to_the_last_complete_line(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.write(SessionEvent(kind="a"))
    good = path.read_bytes()
    real = os.write

    def half_then_full(fd: int, data: bytes) -> int:  # a partial write, then ENOSPC
        if fd == journal._fd and len(data) > 20:
            real(fd, bytes(data)[:20])
            raise ENOSPC
        return real(fd, data)

    monkeypatch.setattr("agent.session.journal.os.write", half_then_full)
    with pytest.raises(JournalError, match="the disk is full"):
        journal.write(SessionEvent(kind="b"))
    assert path.read_bytes() == good  # no partial line left
    assert journal.closed


def test_a_session_on_a_full_disk_raises_journal_error_with_complete_lines_only(
    tmp_path: Path, monkeypatch
) -> None:
    run_session(tmp_path / "warm-up")  # the secret exists before os.write starts failing
    _fail_after(monkeypatch, "write", 6)
    with pytest.raises(JournalError, match="disk is full"):
        run_session(tmp_path / "s", FakeTpsSession())
    monkeypatch.undo()
    log = read_journal(tmp_path / "s")  # complete lines only, and the chain verifies
    assert log.torn_tail is None and len(log.iterations) >= 1
    assert not (tmp_path / "s" / "summary.json").exists()


def test_summary_json_on_a_full_disk_is_a_journal_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    interrupted_session(tmp_path / "s")
    summary = SessionSummary.model_validate_json((tmp_path / "s" / "summary.json").read_text())
    (tmp_path / "s" / "summary.json").unlink()
    monkeypatch.setattr(
        "rtplan_common.atomic_io.os.fsync", lambda fd: (_ for _ in ()).throw(ENOSPC)
    )
    with pytest.raises(JournalError, match=r"summary.*the disk is full"):
        write_summary(tmp_path / "s", summary)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [".rtplan.lock", "journal.jsonl"]


def test_atomic_write_errors_name_the_file_and_leave_no_temp_file(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(
        "rtplan_common.atomic_io.os.fsync", lambda fd: (_ for _ in ()).throw(ENOSPC)
    )
    with pytest.raises(AtomicWriteError) as caught:
        write_text_atomic(tmp_path / "report.json", "{}")
    assert str(caught.value) == f"cannot write {str(tmp_path / 'report.json')!r}: the disk is full"
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("rtplan_common.atomic_io.tempfile.mkstemp", read_only)
    with pytest.raises(AtomicWriteError, match="permission denied"):
        write_text_atomic(tmp_path / "summary.json", "{}")
    assert list(tmp_path.iterdir()) == []
