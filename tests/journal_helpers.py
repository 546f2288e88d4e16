"""Small sessions on the fake TPS for the journal tests (integrity, torn tails, locks, v1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fakes import FakeTpsSession

from agent.policies import RulePolicy
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig, SessionSummary
from agent.templates import load_template

TEMPLATE = load_template("prostate-basic")


def run_session(
    session_dir: Path, fake: FakeTpsSession | None = None, **cfg: Any
) -> SessionSummary:
    """A rule-policy session on the fake TPS (no snapshots), case label ``fake/seed0``."""
    config = SessionConfig(template="prostate-basic", scenario="fake", seed=0, **cfg)
    loop = PlanningLoop(
        fake or FakeTpsSession(),
        TEMPLATE,
        RulePolicy(),
        config,
        session_dir,
        save_snapshots=False,
        case_label="fake/seed0",
    )
    return loop.run()


def interrupted_session(session_dir: Path, **kw: Any) -> Path:
    """A session stopped by Ctrl-C at the second optimization; returns its journal."""
    run_session(session_dir, FakeTpsSession(faults={2: KeyboardInterrupt()}), **kw)
    return session_dir / "journal.jsonl"


def killed_session(session_dir: Path, keep_lines: int, torn: bytes) -> Path:
    """An interrupted session's journal cut to ``keep_lines`` complete lines plus ``torn``
    bytes, without ``summary.json``: what a kill (or a full disk) mid-write leaves."""
    path = interrupted_session(session_dir)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep_lines]) + torn)
    (session_dir / "summary.json").unlink()
    return path


def factory(**kw: Any):
    """A ``SessionFactory`` opening a fresh fake plan (kept in ``.sessions``)."""
    sessions: list[FakeTpsSession] = []

    def open_session(config: SessionConfig) -> FakeTpsSession:
        sessions.append(FakeTpsSession(**kw))
        return sessions[-1]

    open_session.sessions = sessions  # type: ignore[attr-defined]
    return open_session


def lines_of(path: Path) -> list[dict[str, Any]]:
    """The journal's lines as JSON objects."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
