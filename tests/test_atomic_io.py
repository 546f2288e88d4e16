"""Atomic writes: the file appears whole or not at all, and a failure keeps the old one."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rtplan_common.atomic_io import atomic_writer, write_text_atomic


def test_text_and_bytes_are_written_whole_with_shared_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.html"  # the directory is created
    write_text_atomic(target, "<p>dose 79.2 Gy</p>\n")
    assert target.read_text(encoding="utf-8") == "<p>dose 79.2 Gy</p>\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    blob = tmp_path / "m.bin"
    with atomic_writer(blob, "wb") as fh:
        fh.write(b"\x00\x01\x02")
    assert blob.read_bytes() == b"\x00\x01\x02"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "sub"]  # no temp files


def test_a_failure_mid_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text('{"old": true}\n', encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"), atomic_writer(target) as fh:
        fh.write('{"new": ')
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
