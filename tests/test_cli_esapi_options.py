"""``rtplan plan --esapi``'s option checks: each missing or conflicting option is named before
any .NET runtime starts (the sessions themselves: tests/test_plugin_standalone_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

IDS = ["--patient", "P", "--course", "C", "--plan", "PL"]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--course", "C", "--plan", "PL", "--template", "prostate-basic"], "needs --patient"),
        ([*IDS], "needs --template NAME"),
        ([*IDS, "--template", "prostate-basic"], "--esapi-dir DIR or set RTPLAN_ESAPI_DIR"),
        ([*IDS, "--template", "prostate-basic", "--esapi-dir", "."], "needs a plan locator"),
        ([*IDS, "--template", "prostate-basic", "--policy", "llm"], "rule policy for now"),
        ([*IDS, "--scenario", "liver"], "give no simulated case source"),
        ([*IDS, "--template", "no-such-template", "--esapi-dir", ".", "--plan-locator", "X"],
         "no-such-template"),
    ],
)  # fmt: skip
def test_each_bad_esapi_option_is_named(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RTPLAN_ESAPI_DIR", raising=False)
    monkeypatch.delenv("RTPLAN_PLAN_LOCATOR", raising=False)
    monkeypatch.chdir(tmp_path)
    code, output = _run("plan", "--esapi", *args, "--out", str(tmp_path / "s"), "--no-report")
    assert code == 2, output
    assert message in " ".join(output.split())
    assert not (tmp_path / "s").exists()  # nothing written


def test_esapi_options_without_esapi_are_refused(tmp_path: Path) -> None:
    code, output = _run("plan", "--plan", "PL", "--course", "C", "--out", str(tmp_path / "s"))
    assert code == 2 and "--course, --plan only apply with --esapi" in output
    code, output = _run("resume", str(tmp_path), "--plan-locator", "X")
    assert code == 2 and "--plan-locator only apply with --esapi" in output
