"""Knowledge cards on the command line: ``--policy knowledge`` and ``--policy llm --knowledge``.

Both use the installed card of the plan's site (``site_templates/knowledge/<scenario>.json``),
checked against the template and the simulated TPS's dose engine: a card of another site,
clinical template or engine is refused before the case is opened.
"""

from __future__ import annotations

from typing import Any

from agent.cli.errors import CliError
from agent.templates import SiteTemplate


def simulated_engine_version() -> str:
    """The dose-engine version of the simulated TPS (what installed cards must match)."""
    from mock_tps.dose_engine import ENGINE_VERSION

    return ENGINE_VERSION


def policy_options(policy: str) -> dict[str, Any]:
    """Keyword arguments of ``make_policy(policy)`` the composition root supplies: the engine
    version the knowledge policy checks its card against."""
    if policy == "knowledge":
        return {"engine_version": simulated_engine_version()}
    return {}


def installed_card_text(template: SiteTemplate) -> str:
    """The installed, checked card of ``template``'s site as prompt text.

    Raises
    ------
    CliError
        When none is installed or it does not match the template or the engine.
    """
    from agent.policies.knowledge import KnowledgeCardError, card_text, load_installed_card

    try:
        card = load_installed_card(template, simulated_engine_version())
    except KnowledgeCardError as exc:
        raise CliError(f"--knowledge: {exc}") from exc
    return card_text(card, template.prescription.dose_gy)
