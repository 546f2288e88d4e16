"""``rtplan plan --esapi`` and ``rtplan resume --esapi`` (standalone research mode) end to end.

Each command runs in a child process (``esapi_helpers/standalone_cli.py``: ESAPI and its stubs
allow one Application per process) against the stub patient PSEUDO-1 / C1 / PLAN-1 with
mock_tps behind the stubs. The first session is interrupted by SIGINT during its third
optimization; ``resume --esapi`` with the ids given again continues it to the end; a resume on
another plan (other structures) or without --esapi is refused before any change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from esapi_helpers import TESTING_ASSEMBLY, build_dir

from agent.session.journal import read_journal
from agent.session.records import StopReason

CHILD = Path(__file__).parent / "esapi_helpers" / "standalone_cli.py"
RTPLAN = [sys.executable, "-c", "from agent.cli import app; app(prog_name='rtplan')"]
IDS = ["--patient", "PSEUDO-1", "--course", "C1", "--plan", "PLAN-1"]


def _env(cache: Path) -> dict[str, str]:
    """The children's environment: one installation secret for the module's sessions (the
    module-scoped fixture runs before the per-test secret of conftest is set)."""
    return os.environ | {"RTPLAN_SECRET_FILE": str(cache.parent / "secret")}


def _rtplan(
    cache: Path, seed: int, interrupt_at: int, *args: str
) -> subprocess.CompletedProcess[str]:
    eclipse = [
        "--esapi-dir", str(build_dir()),
        "--plan-locator", "Rtplan.EsapiStubs.Testing.StubPlanLocator",
        "--esapi-assembly", TESTING_ASSEMBLY,
    ]  # fmt: skip
    command = [sys.executable, str(CHILD), str(cache), str(seed), str(interrupt_at), "--"]
    return subprocess.run(
        [*command, *args, *eclipse],
        capture_output=True, text=True, timeout=300, check=False, env=_env(cache),
    )  # fmt: skip


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("standalone-cli")
    cache, out = root / "dij", root / "session"
    done = _rtplan(
        cache, 2, 3, "plan", "--esapi", *IDS, "--template", "prostate-basic",
        "--max-iterations", "3", "--out", str(out), "--no-report",
    )  # fmt: skip
    assert done.returncode == 130, done.stdout + done.stderr
    return cache, out


def test_plan_esapi_is_interrupted_restored_and_journaled_without_ids(
    interrupted: tuple[Path, Path],
) -> None:
    _, out = interrupted
    log = read_journal(out)
    assert log.summary is not None and log.summary.stop_reason is StopReason.INTERRUPTED
    assert log.summary.restored_original and log.header.config.tps == "esapi"
    text = "".join(p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file())
    assert "PLAN-1" not in text and "PSEUDO-1" not in text and 'C1"' not in text


def test_resume_is_refused_on_another_plan_and_without_esapi(
    interrupted: tuple[Path, Path],
) -> None:
    cache, out = interrupted
    before = (out / "journal.jsonl").read_bytes()
    other = _rtplan(cache, 3, 0, "resume", str(out), "--esapi", *IDS, "--no-report")
    assert other.returncode == 2, other.stdout + other.stderr
    assert "not the journaled case" in other.stdout + other.stderr
    plain = subprocess.run(
        [*RTPLAN, "resume", str(out), "--no-report"],
        capture_output=True, text=True, timeout=120, check=False, env=_env(cache),
    )  # fmt: skip
    assert plain.returncode == 2 and "--esapi" in plain.stdout + plain.stderr
    stray = subprocess.run(
        [*RTPLAN, "plan", "--patient", "X", "--no-report"],
        capture_output=True, text=True, timeout=120, check=False, env=_env(cache),
    )  # fmt: skip
    assert stray.returncode == 2 and "only apply with --esapi" in stray.stdout + stray.stderr
    assert (out / "journal.jsonl").read_bytes() == before  # nothing was written


def test_resume_esapi_with_the_ids_again_finishes_the_session(
    interrupted: tuple[Path, Path],
) -> None:
    cache, out = interrupted
    done = _rtplan(cache, 2, 0, "resume", str(out), "--esapi", *IDS, "--no-report")
    assert done.returncode == 0, done.stdout + done.stderr
    log = read_journal(out)
    assert log.summary is not None and log.summary.stop_reason is not StopReason.INTERRUPTED
    assert log.summary.final_evaluation is not None
    # the resumed run journals the agent code hash again (it may have changed in between)
    assert sum(e.kind == "agent_code" for e in log.events) == 2
