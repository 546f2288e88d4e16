"""One case source per run: the rule of :func:`agent.cli.case_source.choose_case`, on the CLI
and on every scenario and ``rtplan plan`` command the README names."""

from __future__ import annotations

import re
import shlex
from importlib import resources
from pathlib import Path

import pytest
import yaml
from cli_fakes import fake_tps  # noqa: F401 (fixture)
from typer.testing import CliRunner

import agent.cli.main as cli
from agent.cli.case_source import SourceKind, Tg119Level, choose_case
from agent.cli.errors import CliError

README = Path(__file__).resolve().parent.parent / "README.md"
runner = CliRunner()


def test_no_source_and_no_template_is_the_demo_case() -> None:
    case = choose_case()
    assert (case.source.scenario, case.source.seed, case.template_name) == (
        "prostate-basic",
        0,
        "prostate-basic",
    )


def test_the_templates_scenario_is_the_default_source() -> None:
    case = choose_case(template="head-and-neck")
    assert case.source.scenario == "head-and-neck" and case.template_name == "head-and-neck"
    case = choose_case(template="head-and-neck", seed=3)
    assert case.source.label == "head-and-neck/seed3"
    case = choose_case(template="tg119-hard")
    assert case.source.kind is SourceKind.TG119 and case.source.level is Tg119Level.HARD


def test_a_source_brings_its_own_template() -> None:
    assert choose_case(scenario="liver").template_name == "liver"
    assert choose_case(tg119="easy").template_name == "tg119-easy"
    assert choose_case(tg119=Tg119Level.HARD).source.label == "tg119/hard"


def test_two_sources_are_refused_naming_both() -> None:
    with pytest.raises(CliError, match="one case source, not --scenario liver and --tg119 hard"):
        choose_case(scenario="liver", tg119="hard")


def test_scenario_tg119_works_with_a_tg119_template_and_says_what_to_type_without() -> None:
    case = choose_case(scenario="tg119", template="tg119-hard")
    assert case.source.kind is SourceKind.TG119 and case.template_name == "tg119-hard"
    assert choose_case(scenario="tg119-easy").template_name == "tg119-easy"
    with pytest.raises(CliError, match="type --tg119 easy or --tg119 hard"):
        choose_case(scenario="tg119")


def test_a_template_for_another_case_is_refused() -> None:
    with pytest.raises(CliError, match="'prostate-basic' is for scenario 'prostate-basic', not"):
        choose_case(scenario="liver", template="prostate-basic")
    with pytest.raises(CliError, match="drop --tg119"):
        choose_case(tg119="easy", template="liver")
    # same site: allowed, with a note
    case = choose_case(scenario="prostate-complex", template="prostate-basic")
    assert case.notes and "written for prostate-basic" in case.notes[0]
    # another TG-119 level than the template's: its goals are used, with a note
    assert "its goals are used" in choose_case(tg119="easy", template="tg119-hard").notes[0]


def test_seed_and_tg119_path_only_where_they_apply(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="drop --seed"):
        choose_case(tg119="easy", seed=2)
    with pytest.raises(CliError, match="drop --seed"):
        choose_case(template="tg119-easy", seed=2)
    with pytest.raises(CliError, match="--tg119-path is for the TG-119 phantom"):
        choose_case(scenario="liver", tg119_path=tmp_path / "TG119.mat")
    case = choose_case(tg119="easy", tg119_path=tmp_path / "TG119.mat")
    assert case.source.tg119_path == tmp_path / "TG119.mat"


def test_a_clinic_template_for_an_unknown_case_needs_a_source(tmp_path: Path) -> None:
    data = yaml.safe_load((resources.files("site_templates") / "liver.yaml").read_text())
    data["scenario"] = "clinic-liver"
    path = tmp_path / "clinic.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CliError, match="choose the case: --scenario NAME"):
        choose_case(template=str(path))
    case = choose_case(scenario="liver", template=str(path))
    assert case.source.scenario == "liver" and "clinic-liver" in case.notes[0]


def test_unknown_names_list_what_exists() -> None:
    with pytest.raises(CliError, match="unknown scenario 'pancreas'; available: prostate-basic"):
        choose_case(scenario="pancreas")
    with pytest.raises(CliError, match="unknown template 'nowhere'"):
        choose_case(template="nowhere")


def test_cli_template_alone_opens_the_templates_phantom(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    result = runner.invoke(
        cli.app, ["plan", "--template", "liver", "--out", str(tmp_path / "s"), "--no-report"]
    )
    # the fake plan has prostate structures: the liver template then cannot map them
    assert result.exit_code == 2
    assert fake_tps.configs[0].scenario == "liver" and fake_tps.configs[0].template == "liver"


def test_cli_refuses_two_sources_before_opening_anything(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    result = runner.invoke(
        cli.app, ["plan", "--scenario", "liver", "--tg119", "easy", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 2 and "--scenario liver and --tg119 easy" in result.output
    assert fake_tps.opened == [] and not (tmp_path / "s").exists()


def test_cli_passes_the_tg119_path_to_the_tps(tmp_path: Path, fake_tps) -> None:  # noqa: F811
    mat = tmp_path / "my TG119 [copy].mat"
    args = ["plan", "--tg119", "easy", "--tg119-path", str(mat), "--out", str(tmp_path / "s")]
    runner.invoke(cli.app, [*args, "--no-report"])
    assert fake_tps.tg119_paths == [mat] and fake_tps.configs[0].scenario == "tg119"
    assert fake_tps.configs[0].seed is None


def _readme_scenarios() -> list[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^Scenarios\b[^:]*:(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    assert match, "README has no 'Scenarios:' paragraph"
    return re.findall(r"`([a-z0-9][a-z0-9-]*)`", match.group(1))


def test_every_scenario_the_readme_names_resolves() -> None:
    names = _readme_scenarios()
    assert {"prostate-basic", "head-and-neck", "tg119"} <= set(names)
    for name in names:
        template = "tg119-easy" if name == "tg119" else None
        case = choose_case(scenario=name, template=template)
        assert case.source.scenario == name and case.template.scenario == name


_PLAN_OPTIONS = {"--scenario": "scenario", "-s": "scenario", "--seed": "seed", "--tg119": "tg119"}


def _readme_plan_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:bash|text|sh)?\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ").split("#", 1)[0]
            if re.match(r"(\.venv/bin/)?rtplan plan\b", line):
                commands.append(shlex.split(line)[2:])
    return commands


def test_every_plan_command_in_the_readme_names_one_valid_case() -> None:
    commands = _readme_plan_commands()
    assert any("--tg119" in c for c in commands) and any("--scenario" in c for c in commands)
    for args in commands:
        options: dict[str, object] = {}
        for i, token in enumerate(args):
            if token in _PLAN_OPTIONS:
                options[_PLAN_OPTIONS[token]] = args[i + 1]
            elif token == "--template":
                options["template"] = args[i + 1]
        if "seed" in options:
            options["seed"] = int(str(options["seed"]))
        case = choose_case(**options)  # type: ignore[arg-type]
        assert case.template.scenario == case.source.scenario, args


def test_the_tg119_not_found_message_names_the_option(tmp_path: Path, monkeypatch) -> None:
    import mock_tps.tg119_fetch as fetch
    from esapi_bridge.errors import InvalidInput

    monkeypatch.setenv("RTPLAN_OFFLINE", "1")
    monkeypatch.setenv("RTPLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RTPLAN_TG119", raising=False)
    monkeypatch.setattr(fetch, "SIBLING_PATH", tmp_path / "none" / "TG119.mat")
    with pytest.raises(InvalidInput, match="--tg119-path FILE"):
        fetch.resolve_tg119_path()
