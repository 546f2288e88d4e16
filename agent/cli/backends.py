"""Backends the CLI can open a plan on (the composition root's only contact with adapters)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.cli.errors import CliError
from agent.session.records import SessionConfig
from esapi_bridge.port import TpsSession


def mock_session_factory(cache_dir: Path | None = None) -> Callable[[SessionConfig], TpsSession]:
    """A function opening the simulated TPS plan a :class:`SessionConfig` names."""
    from mock_tps.factory import open_mock_session

    def open_session(config: SessionConfig) -> TpsSession:
        if config.tps != "mock" or config.scenario is None:
            raise CliError(f"only simulated sessions can be reopened here (tps={config.tps!r})")
        return open_mock_session(
            config.scenario, config.seed or 0, spacing_mm=config.spacing_mm, cache_dir=cache_dir
        )

    return open_session


def resolve_case(scenario: str, tg119: str | None, template: str | None) -> tuple[str, str]:
    """(mock scenario, template name) for the command-line choices; raises :class:`CliError`."""
    from agent.templates import list_templates
    from mock_tps.factory import available_scenarios

    if tg119 is not None:
        level = tg119.lower()
        if level not in ("easy", "hard"):
            raise CliError(f"--tg119 must be 'easy' or 'hard', got {tg119!r}")
        scenario, default_template = "tg119", f"tg119-{level}"
    else:
        scenarios = available_scenarios()
        if scenario not in scenarios:
            raise CliError(f"unknown scenario {scenario!r}; available: {', '.join(scenarios)}")
        default_template = scenario
    name = template or default_template
    if not (name.endswith((".yaml", ".yml")) or "/" in name) and name not in list_templates():
        raise CliError(f"unknown template {name!r}; available: {', '.join(list_templates())}")
    return scenario, name
