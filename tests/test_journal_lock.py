"""Item 4 of #8: one writer per session directory (exclusive creation and a lock); readers
need no lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from journal_helpers import factory, interrupted_session, run_session

from agent.report.data import load_report_data
from agent.session.journal import Journal, JournalError, JournalLocked, read_journal
from agent.session.records import SessionEvent
from agent.session.resume import resume_session

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_writer_in_the_same_process_is_refused_naming_dir_and_pid(
    tmp_path: Path,
) -> None:
    path = interrupted_session(tmp_path / "s")
    first = Journal(path, append=True)
    with pytest.raises(JournalLocked) as caught:
        Journal(path, append=True)
    message = str(caught.value)
    assert str(tmp_path / "s") in message and f"pid {os.getpid()}" in message
    with pytest.raises(JournalLocked):  # a resume is refused the same way, file untouched
        resume_session(path, factory())
    first.close()
    Journal(path, append=True).close()  # released on close


def test_two_new_sessions_in_one_directory_cannot_both_run(tmp_path: Path) -> None:
    first = Journal(tmp_path / "journal.jsonl")
    with pytest.raises(JournalLocked, match="being written by another rtplan process"):
        Journal(tmp_path / "journal.jsonl")
    first.write(SessionEvent(kind="a"))
    first.close()
    with pytest.raises(JournalError, match="already exists"):
        Journal(tmp_path / "journal.jsonl")


def test_the_journal_is_created_exclusively(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    (tmp_path / "journal.jsonl").write_text("someone else's\n")  # not through rtplan
    with pytest.raises(JournalError, match="created by someone else"):
        journal.write(SessionEvent(kind="a"))
    assert (tmp_path / "journal.jsonl").read_text() == "someone else's\n"


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl lock holder")
def test_a_lock_held_by_another_process_refuses_writers_but_not_readers(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "s" / ".rtplan.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(JournalLocked, match=f"pid {holder.pid}"):
            Journal(tmp_path / "s" / "journal.jsonl", append=True)
        (tmp_path / "s" / "journal.jsonl").rename(tmp_path / "s" / "old.jsonl")
        with pytest.raises(JournalLocked, match=f"pid {holder.pid}"):
            run_session(tmp_path / "s")  # a new session there is refused too
        (tmp_path / "s" / "old.jsonl").rename(tmp_path / "s" / "journal.jsonl")
        assert read_journal(tmp_path / "s").finished  # report and show read without it
        assert load_report_data(tmp_path / "s").summary is not None
    finally:
        holder.kill()
        holder.wait(timeout=10)
