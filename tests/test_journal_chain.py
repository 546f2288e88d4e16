"""Item 5 of #8: journals are tamper-evident (HMAC chain keyed by the installation secret)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from journal_helpers import factory, interrupted_session, lines_of, run_session

from agent.report import ReportError, build_report
from agent.session.journal import (
    JournalTampered,
    JournalUnverifiable,
    SecretError,
    read_journal,
)
from agent.session.provenance import IntegrityStatus
from agent.session.replay import replay_session
from agent.session.resume import resume_session
from agent.session.secret import default_secret_path, key_id, load_secret


def _edit_line(path: Path, number: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_text("".join(lines))


def test_every_entry_is_chained_and_summary_json_holds_the_head(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    path = tmp_path / "s" / "journal.jsonl"
    entries = lines_of(path)
    assert all(len(e["hmac"]) == 64 for e in entries)
    assert entries[0]["chain_key_id"] == key_id(load_secret())
    head = json.loads((tmp_path / "s" / "summary.json").read_text())["chain_head"]
    assert head == {"entries": len(entries), "last_hmac": entries[-1]["hmac"]}
    log = read_journal(path)
    assert log.integrity.status is IntegrityStatus.VERIFIED and log.integrity.head_checked
    assert log.notices == []


def test_an_edited_value_is_named_by_line_and_entry_everywhere(tmp_path: Path) -> None:
    path = interrupted_session(tmp_path / "s")
    number = next(i for i, e in enumerate(lines_of(path), 1) if e["entry"] == "iteration")
    _edit_line(path, number, '"iteration":0', '"iteration":0 ')  # even whitespace counts
    before = path.read_bytes()
    expected = f"line {number} \\(iteration 0\\) does not match its HMAC chain"
    with pytest.raises(JournalTampered, match=expected):
        read_journal(path)
    with pytest.raises(JournalTampered, match=expected):
        resume_session(path, factory())
    with pytest.raises(JournalTampered, match=expected):
        replay_session(path, factory(), out_dir=tmp_path / "r")
    with pytest.raises(ReportError, match=expected):
        build_report(tmp_path / "s")
    assert path.read_bytes() == before and not (tmp_path / "r").exists()


def test_removed_and_reordered_entries_break_the_chain_at_that_line(tmp_path: Path) -> None:
    path = interrupted_session(tmp_path / "s")
    original = path.read_text().splitlines(keepends=True)
    path.write_text("".join(original[:2] + original[3:]))  # line 3 removed
    with pytest.raises(JournalTampered, match="line 3 "):
        read_journal(path)
    path.write_text("".join([original[0], original[2], original[1], *original[3:]]))
    with pytest.raises(JournalTampered, match="line 2 "):
        read_journal(path)


def test_whole_entries_dropped_at_the_end_are_caught_by_the_chain_head(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    path = tmp_path / "s" / "journal.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))  # a valid chain prefix, the summary dropped
    with pytest.raises(JournalTampered, match=f"has {len(lines) - 2} complete entries but"):
        read_journal(path)
    with pytest.raises(JournalTampered, match="truncated"):
        resume_session(path, factory())


def test_a_journal_of_another_installation_is_unverifiable_not_tampered(
    tmp_path: Path, monkeypatch
) -> None:
    path = interrupted_session(tmp_path / "s")
    monkeypatch.setenv("RTPLAN_SECRET_FILE", str(tmp_path / "other" / "secret"))
    load_secret()  # this installation's own, different secret
    log = read_journal(path)
    assert log.integrity.status is IntegrityStatus.FOREIGN_SECRET
    assert "cannot be verified with this installation's secret" in log.notices[0]
    with pytest.raises(JournalUnverifiable, match="not resumed"):
        resume_session(path, factory())
    build_report(tmp_path / "s")  # renders, with the warning first
    report = json.loads((tmp_path / "s" / "report" / "report.json").read_text())
    assert report["missing"][0].startswith("UNVERIFIED: ")
    result = replay_session(path, factory(), out_dir=tmp_path / "r")
    assert any("UNVERIFIED" in n for n in result.notices)


def test_readers_never_create_the_secret(tmp_path: Path, monkeypatch) -> None:
    path = interrupted_session(tmp_path / "s")
    monkeypatch.setenv("RTPLAN_SECRET_FILE", str(tmp_path / "none" / "secret"))
    log = read_journal(path)
    assert log.integrity.status is IntegrityStatus.FOREIGN_SECRET
    assert "no secret yet" in log.integrity.message
    assert not (tmp_path / "none").exists()


def test_the_secret_is_created_0600_and_refused_when_others_can_read_it(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / "cfg" / "secret"
    secret = load_secret(path)
    assert secret is not None and len(secret) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == secret  # stable
    os.chmod(path, 0o644)
    with pytest.raises(
        SecretError, match=r"accessible by group or others \(mode 0644\).*chmod 600"
    ):
        load_secret(path)


def test_the_secret_file_location_rule(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RTPLAN_SECRET_FILE", str(tmp_path / "mine"))
    assert default_secret_path() == tmp_path / "mine"
    monkeypatch.delenv("RTPLAN_SECRET_FILE")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_secret_path() == tmp_path / "xdg" / "rtplan" / "secret"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_secret_path() == tmp_path / "home" / ".config" / "rtplan" / "secret"
