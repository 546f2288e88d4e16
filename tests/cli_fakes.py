"""The fake TPS behind the ``rtplan`` CLI in tests, and a console of a chosen width."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakes import FakeTpsSession

import agent.cli.backends as backends
from agent.cli.console import console
from agent.session.records import SessionConfig


@dataclass
class FakeTps:
    """The sessions the CLI opened (with their configs and TG-119 paths), faults for the next."""

    opened: list[FakeTpsSession] = field(default_factory=list)
    configs: list[SessionConfig] = field(default_factory=list)
    tg119_paths: list[Path | None] = field(default_factory=list)
    faults: dict[int, BaseException | str] = field(default_factory=dict)


def install_fake_tps(monkeypatch: pytest.MonkeyPatch) -> FakeTps:
    """Make every session the CLI opens a fresh fake TPS (prostate-like structures)."""
    tps = FakeTps()

    def factory(cache_dir: Path | None = None, tg119_path: Path | None = None):  # type: ignore[no-untyped-def]
        def open_session(config: SessionConfig) -> FakeTpsSession:
            tps.configs.append(config)
            tps.tg119_paths.append(tg119_path)
            tps.opened.append(FakeTpsSession(faults=dict(tps.faults)))
            return tps.opened[-1]

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    return tps


@pytest.fixture
def fake_tps(monkeypatch: pytest.MonkeyPatch) -> FakeTps:
    """Every session the CLI opens is a fresh fake TPS."""
    return install_fake_tps(monkeypatch)


@pytest.fixture
def width80() -> Iterator[int]:
    """The CLI's console is 80 columns wide (as in a pipe or a small terminal)."""
    before = console._width
    console.width = 80
    try:
        yield 80
    finally:
        console._width = before


def long_lines(text: str, width: int = 80) -> list[str]:
    """Lines of ``text`` wider than ``width``."""
    return [line for line in text.splitlines() if len(line) > width]
