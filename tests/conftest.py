"""Shared test set-up: every test runs with its own installation secret.

The per-installation secret (:mod:`agent.session.secret`) would otherwise be created in
the user's ``~/.config/rtplan``; ``RTPLAN_SECRET_FILE`` points it into a temporary folder
(subprocesses started by a test inherit it).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tg119_file() -> Path:
    """The real TG-119 phantom through the resolver: ``$RTPLAN_TG119``, the verified cache,
    ``../shared`` or a pip fetch of the pyradplan 0.5.0 wheel (about a second, once)."""
    from mock_tps.tg119_fetch import resolve_tg119_path

    return resolve_tg119_path()


@pytest.fixture(autouse=True)
def _installation_secret(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """A temporary secret file (created on first use, mode 0600)."""
    path = tmp_path_factory.getbasetemp() / "rtplan-secret" / "secret"
    monkeypatch.setenv("RTPLAN_SECRET_FILE", str(path))
    return path
