"""Test helpers of the DICOM export (#13): a briefly planned phantom session from the CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import agent.cli.main as cli

runner = CliRunner()
#: OpenKBP pt_1 as vendored (tests/data/openkbp, MIT license; see its README).
PATIENT = Path(__file__).resolve().parent / "data" / "openkbp" / "pt_1"


def plan_phantom(out: Path) -> Path:
    """``rtplan plan --scenario prostate-basic --max-iterations 1`` into ``out`` (a few s)."""
    result = runner.invoke(
        cli.app,
        ["plan", "--scenario", "prostate-basic", "--max-iterations", "1", "--no-report",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out
