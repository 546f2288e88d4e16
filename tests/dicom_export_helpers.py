"""Test helpers of the DICOM export (#13): a briefly planned phantom session from the CLI and
OpenKBP pt_1 as DICOM, each made once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.fixture(scope="session")
def phantom_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One briefly planned phantom session for the export tests (read-only: copy to change)."""
    return plan_phantom(tmp_path_factory.mktemp("phantom") / "session")


@pytest.fixture(scope="session")
def openkbp_dicom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenKBP pt_1 through ``rtplan export-case`` (read-only: copy to change)."""
    folder = tmp_path_factory.mktemp("openkbp-dicom") / "dicom"
    result = runner.invoke(cli.app, ["export-case", str(PATIENT), str(folder)])
    assert result.exit_code == 0, result.output
    assert "pt_1" not in result.output
    return folder
