"""TG-119 file resolution: explicit path, env, cache, ../shared, pip fetch (faked, no network)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import mock_tps.tg119_fetch as fetch
from esapi_bridge.errors import InvalidInput
from mock_tps.tg119 import default_tg119_path

GOOD = b"fake TG-119 phantom bytes" * 100
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


class FakePip:
    """Stands in for ``subprocess.run``: writes a wheel holding ``content`` at ``member``."""

    def __init__(
        self,
        content: bytes = GOOD,
        member: str = fetch.MEMBER,
        returncode: int = 0,
        stderr: str = "",
    ) -> None:
        self.content, self.member = content, member
        self.returncode, self.stderr = returncode, stderr
        self.calls: list[list[str]] = []
        self.kwargs: list[dict[str, Any]] = []

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(cmd))
        self.kwargs.append(kwargs)
        if self.returncode == 0:
            dest = Path(cmd[cmd.index("-d") + 1])
            with zipfile.ZipFile(dest / "pyradplan-0.5.0-py3-none-any.whl", "w") as whl:
                whl.writestr("pyRadPlan/__init__.py", "")
                whl.writestr(self.member, self.content)
        return subprocess.CompletedProcess(cmd, self.returncode, "", self.stderr)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No env path, not offline, an empty cache dir and no ../shared; the fake hash is expected."""
    monkeypatch.delenv(fetch.ENV_VAR, raising=False)
    monkeypatch.delenv(fetch.OFFLINE_ENV, raising=False)
    monkeypatch.setenv("RTPLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(fetch, "SIBLING_PATH", tmp_path / "no-shared" / "TG119.mat")
    monkeypatch.setattr(fetch, "SHA256", GOOD_SHA)
    return tmp_path / "cache" / "tg119" / "TG119.mat"


def _install(monkeypatch: pytest.MonkeyPatch, pip: FakePip) -> FakePip:
    monkeypatch.setattr(fetch.subprocess, "run", pip)
    return pip


def test_cache_dir_follows_the_dij_cache_setting(env: Path) -> None:
    assert fetch.cached_tg119_path() == env


def test_fetch_runs_pip_download_and_caches_a_good_file(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pip = _install(monkeypatch, FakePip())
    assert fetch.resolve_tg119_path() == env
    assert env.read_bytes() == GOOD
    (cmd,) = pip.calls
    assert cmd[:3] == [sys.executable, "-m", "pip"]
    assert cmd[3:8] == ["download", "--no-deps", "--only-binary=:all:", "pyradplan==0.5.0", "-d"]
    assert pip.kwargs[0]["timeout"] > 0 and pip.kwargs[0]["capture_output"] is True
    # The cached copy is reused: no second download, also through the loader's default.
    assert fetch.resolve_tg119_path() == env
    assert default_tg119_path() == env
    assert len(pip.calls) == 1
    assert not list(env.parent.glob("*.tmp"))


def test_wrong_content_is_refused_and_not_cached(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(monkeypatch, FakePip(content=b"something else"))
    with pytest.raises(InvalidInput, match="sha256") as err:
        fetch.resolve_tg119_path()
    assert GOOD_SHA in str(err.value) and "not cached" in str(err.value)
    assert not env.exists()


def test_cached_file_with_wrong_hash_is_fetched_anew(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.parent.mkdir(parents=True)
    env.write_bytes(b"stale or truncated")
    pip = _install(monkeypatch, FakePip())
    assert fetch.resolve_tg119_path() == env
    assert env.read_bytes() == GOOD and len(pip.calls) == 1


def test_offline_names_every_place_tried(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pip = _install(monkeypatch, FakePip())
    monkeypatch.setenv(fetch.OFFLINE_ENV, "1")
    with pytest.raises(InvalidInput) as err:
        fetch.resolve_tg119_path()
    msg = str(err.value)
    assert "RTPLAN_TG119" in msg and str(env) in msg
    assert str(tmp_path / "no-shared" / "TG119.mat") in msg
    assert "RTPLAN_OFFLINE=1" in msg and "pyradplan 0.5.0" in msg
    assert "path explicitly" in msg and "set RTPLAN_TG119" in msg
    assert pip.calls == []


def test_explicit_path_beats_env_and_cache_and_env_beats_cache(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pip = _install(monkeypatch, FakePip())
    env.parent.mkdir(parents=True)
    env.write_bytes(GOOD)
    own = tmp_path / "mine.mat"  # no hash required, need not even exist
    monkeypatch.setenv(fetch.ENV_VAR, str(tmp_path / "from-env.mat"))
    assert fetch.resolve_tg119_path(own) == own
    assert fetch.resolve_tg119_path(str(own)) == own
    assert fetch.resolve_tg119_path() == tmp_path / "from-env.mat"
    monkeypatch.delenv(fetch.ENV_VAR)
    assert fetch.resolve_tg119_path() == env
    assert pip.calls == []


def test_shared_sibling_is_used_in_place(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pip = _install(monkeypatch, FakePip())
    sibling = tmp_path / "shared" / "TG119.mat"
    sibling.parent.mkdir()
    sibling.write_bytes(b"the shared copy")
    monkeypatch.setattr(fetch, "SIBLING_PATH", sibling)
    assert fetch.resolve_tg119_path() == sibling
    assert pip.calls == [] and not env.exists()


@pytest.mark.parametrize(
    ("pip", "match"),
    [
        (FakePip(returncode=1, stderr="ERROR: No matching distribution"), "exit 1.*No matching"),
        (FakePip(member="pyRadPlan/other.mat"), "has no pyRadPlan/data/phantoms/TG119.mat"),
    ],
)
def test_fetch_failures_are_explained(
    env: Path, monkeypatch: pytest.MonkeyPatch, pip: FakePip, match: str
) -> None:
    _install(monkeypatch, pip)
    with pytest.raises(InvalidInput, match=match) as err:
        fetch.resolve_tg119_path()
    assert "tried" in str(err.value) and "set RTPLAN_TG119" in str(err.value)
    assert not env.exists()


def test_fetch_timeout_is_explained(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(cmd: list[str], **kwargs: Any) -> None:
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    monkeypatch.setattr(fetch.subprocess, "run", slow)
    with pytest.raises(InvalidInput, match="did not finish within"):
        fetch.resolve_tg119_path()
