"""``rtplan templates list | show | validate`` (the typer sub-app, mounted as the CLI does)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from agent.cli.templates import templates_app

app = typer.Typer()
app.add_typer(templates_app, name="templates")
runner = CliRunner()


def test_list_shows_every_template() -> None:
    result = runner.invoke(app, ["templates", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("prostate-basic", "prostate-complex", "liver", "head-and-neck", "cervix"):
        assert name in result.output
    assert "tg119-hard" in result.output and "79.2 Gy / 44 fx" in result.output


def test_show_prints_structures_objectives_goals_and_score() -> None:
    result = runner.invoke(app, ["templates", "show", "liver"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "Structures",
        "Liver-PTV",
        "subtract Liver - PTV",
        "Clinical goals",
        "Score (max 4)",
    ):
        assert text in out
    assert "<= 40 Gy" in out  # cord D0.03cc <= 0.8 Rx resolved at 50 Gy


def test_show_json_and_unknown_name() -> None:
    result = runner.invoke(app, ["templates", "show", "tg119-hard", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "tg119-hard" and data["scenario"] == "tg119"
    assert data["goals"][2]["metric"] == "D10%" and data["goals"][2]["limit"] == "10 Gy"
    bad = runner.invoke(app, ["templates", "show", "pancreas"])
    assert bad.exit_code == 2  # bad input, as everywhere in rtplan
    assert "no template named 'pancreas'" in bad.output


def test_validate_good_and_bad_files(tmp_path: Path) -> None:
    good = resources.files("site_templates").joinpath("cervix.yaml")
    ok_path = tmp_path / "cervix.yaml"
    ok_path.write_text(good.read_text())
    result = runner.invoke(app, ["templates", "validate", str(ok_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "cervix" in result.output

    data = yaml.safe_load(good.read_text())
    data["goals"][0]["metric"] = "D95"
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(data))
    result = runner.invoke(
        app, ["templates", "validate", str(ok_path), str(bad_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "INVALID" in result.output and "goals[0].metric" in result.output
    assert "missing volume unit" in result.output
