"""Knowledge cards: what successful plans of one scenario had in common, as versioned JSON.

A :class:`KnowledgeCard` holds, per treatment planning parameter (TPP, named as in
:mod:`agent.policies.drl.tpps`), the distribution of its final values in successful plans
(median, quartiles, range), the priority hierarchy that emerged (the priority TPPs ordered by
their median), and the actions that helped most in which situation (per deficient score
criterion or goal, the TPP moves with the largest mean score gain). Doses are stored as
fractions of the prescription, volumes in %, priorities as they are.

A card is tied to the clinical part of its template (:func:`agent.session.identity.clinical_hash`)
and to the dose engine it was learnt on: :func:`check_card` refuses a card of another site,
another clinical template or another engine version with a message saying what to do.
Installed cards live in ``site_templates/knowledge/<scenario>.json``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from agent.session.identity import clinical_hash
from agent.templates import SiteTemplate
from rtplan_common.atomic_io import write_text_atomic
from rtplan_common.models import (
    FrozenModel,
    Identifier,
    SafeText,
    format_problems,
    validation_problems,
)

#: Version of the card format; a card of another version is refused (re-extract it).
CARD_SCHEMA_VERSION = 1
#: Package and folder of the installed cards.
CARD_PACKAGE = "site_templates"
CARD_FOLDER = "knowledge"
#: How a card was made.
CardSource = Literal["drl-episodes", "calibration-search", "shuffled", "synthetic"]
#: Unit of a TPP's values in a card: dose as a fraction of Rx, volume in %, priority.
TppUnit = Literal["Rx", "%", "priority", "value"]


class KnowledgeCardError(ValueError):
    """A card cannot be read, or does not belong to this template or engine."""


class TppStats(FrozenModel):
    """The distribution of one TPP's final values over the successful plans."""

    name: Annotated[str, Field(min_length=1, max_length=128)]
    parameter: Identifier
    unit: TppUnit
    count: Annotated[int, Field(ge=1)]
    median: float
    q1: float
    q3: float
    low: float
    high: float

    def to_tpp_units(self, value: float, prescription_gy: float) -> float:
        """A card value in the TPP's own unit (Gy for doses)."""
        return value * prescription_gy if self.unit == "Rx" else value


class ActionGain(FrozenModel):
    """A TPP move and the mean score gain it brought while ``situation`` was deficient."""

    situation: Annotated[str, Field(min_length=1, max_length=128)]
    tpp: Annotated[str, Field(min_length=1, max_length=128)]
    direction: Literal["up", "down"]
    mean_gain: float
    count: Annotated[int, Field(ge=1)]


class CardProvenance(FrozenModel):
    """Where a card came from."""

    source: CardSource
    seeds: list[int]
    episodes: Annotated[int, Field(ge=0)]
    successful: Annotated[int, Field(ge=0)]
    engine_version: Identifier
    created: Annotated[str, Field(max_length=40)]
    commit: Annotated[str, Field(max_length=64)] = ""
    derived_from: SafeText = ""
    note: SafeText = ""


class KnowledgeCard(FrozenModel):
    """One scenario's knowledge card (see the module docstring)."""

    schema_version: int = CARD_SCHEMA_VERSION
    scenario: Identifier
    template: Identifier
    clinical_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    engine_version: Identifier
    prescription_gy: Annotated[float, Field(gt=0.0)]
    tpps: Annotated[list[TppStats], Field(min_length=1)]
    priority_hierarchy: list[str] = Field(default_factory=list)
    helpful_actions: list[ActionGain] = Field(default_factory=list)
    provenance: CardProvenance

    def stats(self, name: str) -> TppStats:
        """The statistics of TPP ``name``."""
        for t in self.tpps:
            if t.name == name:
                return t
        raise KeyError(f"the knowledge card of {self.scenario} has no TPP {name!r}")

    @property
    def label(self) -> str:
        """``prostate-basic (drl-episodes)``: what the card is, for messages."""
        return f"{self.scenario} ({self.provenance.source})"


def installed_card_path(scenario: str) -> Path:
    """Where the installed card of ``scenario`` lives (it may not exist)."""
    root = resources.files(CARD_PACKAGE).joinpath(CARD_FOLDER, f"{scenario}.json")
    return Path(str(root))


def read_card(path: str | Path) -> KnowledgeCard:
    """Read and validate a card file.

    Raises
    ------
    KnowledgeCardError
        When the file is missing, not JSON, of another schema version or invalid (naming
        the fields).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeCardError(
            f"no knowledge card at {p}; extract one with: python -m bench.knowledge extract"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KnowledgeCardError(f"knowledge card {p} cannot be read as JSON: {exc}") from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != CARD_SCHEMA_VERSION:
        raise KnowledgeCardError(
            f"knowledge card {p} has schema version {version!r}, this agent reads version "
            f"{CARD_SCHEMA_VERSION}: re-extract it (python -m bench.knowledge extract)"
        )
    try:
        return KnowledgeCard.model_validate(data)
    except ValidationError as exc:
        problems = format_problems(validation_problems(exc))
        raise KnowledgeCardError(f"knowledge card {p} is invalid: {problems}") from exc


def write_card(card: KnowledgeCard, path: str | Path) -> Path:
    """Write ``card`` as indented JSON (atomically) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(p, json.dumps(card.model_dump(mode="json"), indent=2) + "\n")
    return p


def check_card(card: KnowledgeCard, template: SiteTemplate, engine_version: str | None) -> None:
    """Refuse ``card`` unless it was made for ``template``'s site and clinical content and,
    when ``engine_version`` is given, for that dose engine.

    Raises
    ------
    KnowledgeCardError
        Naming what differs (site, clinical template, engine) and how to re-extract.
    """
    redo = f"re-extract the card: python -m bench.knowledge extract --scenario {template.scenario}"
    if card.scenario != template.scenario:
        raise KnowledgeCardError(
            f"the knowledge card {card.label} is for site {card.scenario!r}, the plan's template "
            f"{template.name!r} is for {template.scenario!r}: use that site's card or {redo}"
        )
    now = clinical_hash(template)
    if card.clinical_hash != now:
        raise KnowledgeCardError(
            f"the knowledge card {card.label} was made for another version of template "
            f"{card.template!r} (clinical hash {card.clinical_hash}, now {now}: its "
            f"prescription, objectives, ranges, goals or score changed): {redo}"
        )
    if engine_version is not None and card.engine_version != engine_version:
        raise KnowledgeCardError(
            f"the knowledge card {card.label} was learnt on dose engine "
            f"{card.engine_version!r}, the TPS runs {engine_version!r}: {redo}"
        )


def load_installed_card(template: SiteTemplate, engine_version: str | None) -> KnowledgeCard:
    """The installed card of ``template``'s scenario, checked (:func:`check_card`)."""
    path = installed_card_path(template.scenario)
    if not path.is_file():
        raise KnowledgeCardError(
            f"no knowledge card is installed for site {template.scenario!r} "
            f"(site_templates/knowledge/{template.scenario}.json); extract one with: "
            f"python -m bench.knowledge extract --scenario {template.scenario}"
        )
    card = read_card(path)
    check_card(card, template, engine_version)
    return card
