"""The case a run plans: exactly one case source, the same rule for every command.

The sources (one option group, "Case source", in ``--help``):

- ``--scenario NAME [--seed N]``: a phantom of the simulated TPS (``rtplan scenarios``);
- ``--tg119 easy|hard [--tg119-path FILE]``: the AAPM TG-119 C-shape, with the template
  ``tg119-easy`` or ``tg119-hard``;
- ``--openkbp PATIENT_DIR``: an OpenKBP head-and-neck patient, with the template
  ``head-and-neck-openkbp`` (``head-and-neck-openkbp-3level`` when it has a PTV63); a patient
  case gets no case label, and its folder's name reaches no label, directory name or journal;
- ``--dicom DIR --template NAME``: a DICOM CT series and RT Structure Set (optionally an RT
  Plan; :mod:`agent.cli.dicom_source`), with the template it requires; a patient case like
  OpenKBP's (label ``dicom``, no folder name anywhere);
- later ``--esapi``: a :class:`SourceKind` and a branch of :func:`choose_case`.

The rule (:func:`choose_case`):

1. two sources given: refused, naming both;
2. none given: the template's own ``scenario:`` is the case (``--template head-and-neck``
   plans the head-and-neck phantom); with no template either, the demo case
   ``prostate-basic``;
3. a source without ``--template``: the source's own template (the scenario's namesake,
   ``tg119-<level>``);
4. a template whose ``scenario:`` names another known case: refused, unless both are of one
   site (``prostate-basic`` / ``prostate-complex``: allowed with a note); a template for a
   case the simulated TPS does not know (a clinic's own) is used as given;
5. ``--scenario tg119`` is ``--tg119`` with the level of a ``tg119-*`` template (without
   one, the error says what to type); ``--scenario tg119-easy`` is ``--tg119 easy``.

Resume and replay take the case from the journal; only ``--tg119-path`` (where the file is,
not which case) applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.errors import CliError
from agent.templates import SiteTemplate
from mock_tps.dicom.plan_spec import DicomSource
from rtplan_common.models import FrozenModel

PANEL = "Case source (one of --scenario, --tg119, --openkbp, --dicom)"
#: The case planned when neither a source nor a template is given.
DEMO_SCENARIO = "prostate-basic"
TG119 = "tg119"
OPENKBP = "openkbp"
DICOM = "dicom"
#: The templates of OpenKBP patients: two dose levels, and three (with a PTV63).
OPENKBP_TEMPLATES = ("head-and-neck-openkbp", "head-and-neck-openkbp-3level")
_TG119_ALIASES = {"tg119", "tg-119", "tg_119"}


class SourceKind(StrEnum):
    """Which case-source option chose the case (later: esapi)."""

    SCENARIO = "scenario"
    TG119 = "tg119"
    OPENKBP = "openkbp"
    DICOM = "dicom"


class Tg119Level(StrEnum):
    """The two TG-119 C-shape protocols."""

    EASY = "easy"
    HARD = "hard"


class CaseSpec(FrozenModel):
    """The one case a run asked for, as the simulated TPS opens it.

    (The journal records where the opened case came from as
    :class:`esapi_bridge.dto.CaseSource`, a kind and a content hash, filled in by the TPS.)
    """

    kind: SourceKind
    scenario: str  # the simulated TPS's name: a phantom, "tg119" or "openkbp"
    seed: int | None = None  # phantoms only
    level: Tg119Level | None = None  # TG-119 only
    tg119_path: Path | None = None  # TG-119 only: the file to load
    openkbp_dir: Path | None = None  # OpenKBP only: the patient folder (never recorded)
    dicom: DicomSource | None = None  # DICOM only: the folder (never recorded) and plan spec

    @property
    def is_patient(self) -> bool:
        """Patient data (OpenKBP, DICOM): no case label reaches the journal."""
        return self.kind in (SourceKind.OPENKBP, SourceKind.DICOM)

    @property
    def label(self) -> str:
        """``prostate-basic/seed0``, ``tg119/easy``: names the case in output and journal.

        A patient case is ``openkbp`` in output and directory names (never its folder's
        name) and has no label in the journal (:attr:`is_patient`).
        """
        if self.kind in (SourceKind.OPENKBP, SourceKind.DICOM):
            return self.kind.value
        if self.kind is SourceKind.TG119:
            return f"{TG119}/{self.level.value}" if self.level else TG119
        return f"{self.scenario}/seed{self.seed or 0}"

    @property
    def default_template(self) -> str | None:
        """The template planned when none is given (none for DICOM: it needs one)."""
        if self.kind is SourceKind.DICOM:
            return None
        if self.kind is SourceKind.OPENKBP:
            three = self.openkbp_dir is not None and any(
                (self.openkbp_dir / f"PTV63{ext}").is_file() for ext in (".csv", ".csv.gz")
            )
            return OPENKBP_TEMPLATES[1] if three else OPENKBP_TEMPLATES[0]
        if self.kind is SourceKind.TG119:
            return f"{TG119}-{self.level.value}" if self.level else None
        return self.scenario


@dataclass(frozen=True)
class CaseChoice:
    """What a run plans: the case, the template (name or file, and loaded), any notes."""

    source: CaseSpec
    template_name: str
    template: SiteTemplate
    notes: tuple[str, ...] = ()


ScenarioOption = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        "-s",
        help="A phantom of the simulated TPS (see 'rtplan scenarios'). "
        "Default: the template's scenario, else prostate-basic.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
SeedOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Seed of the phantom's anatomical variation (with --scenario or a phantom's "
        "template). Default: 0.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Tg119Option = Annotated[
    Tg119Level | None,
    typer.Option(
        "--tg119",
        case_sensitive=False,
        help="The AAPM TG-119 C-shape phantom, planned with the template tg119-easy or tg119-hard.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
OpenKbpOption = Annotated[
    Path | None,
    typer.Option(
        "--openkbp",
        help="An OpenKBP patient folder (ct.csv, dose.csv, masks), planned with the template "
        "head-and-neck-openkbp (-3level with a PTV63); its clinical dose is the reference.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
DicomOption = Annotated[
    Path | None,
    typer.Option(
        "--dicom",
        help="A DICOM folder: one CT series, its RT Structure Set and optionally an RT Plan "
        "(isocenter, beams); needs --template (prescription, goals, beams).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Tg119PathOption = Annotated[
    Path | None,
    typer.Option(
        "--tg119-path",
        help="The TG119.mat file to load. Default: $RTPLAN_TG119, the verified cache, "
        "../shared/data/tg119, or a pip download of pyradplan 0.5.0.",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]


def phantom_scenarios() -> list[str]:
    """The phantom scenarios of the simulated TPS (TG-119 excluded)."""
    from mock_tps.factory import available_scenarios

    return [s for s in available_scenarios() if s not in (TG119, OPENKBP)]


def _site(scenario: str) -> str:
    return scenario.split("-", 1)[0]


def _tg119_level(name: str) -> Tg119Level | None:
    """``easy``/``hard`` from ``tg119-easy``, ``tg119_hard``, ...; ``None`` otherwise."""
    key = name.strip().lower().replace("_", "-")
    for level in Tg119Level:
        if key in {f"tg119-{level.value}", f"tg-119-{level.value}"}:
            return level
    return None


def _load(name: str) -> SiteTemplate:
    from agent.templates import list_templates, load_template

    is_file = name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name
    if not is_file and name not in list_templates():
        raise CliError(
            f"unknown template {name!r}; available: {', '.join(list_templates())} "
            "(or the path of a template YAML file)"
        )
    return load_template(name)


def _scenario_source(name: str, seed: int | None, template: str | None) -> CaseSpec:
    """The source ``--scenario NAME`` stands for (a phantom, or TG-119 through an alias)."""
    key = name.strip()
    level = _tg119_level(key)
    if key.lower() in _TG119_ALIASES or level is not None:
        if level is None and template is not None:
            level = _tg119_level(Path(template).stem)
        if level is None:
            raise CliError(
                f"--scenario {key} needs a TG-119 level: type --tg119 easy or --tg119 hard "
                "(or add --template tg119-easy / tg119-hard)"
            )
        if seed is not None:
            raise CliError("--seed is for the phantoms; the TG-119 phantom has none: drop --seed")
        return CaseSpec(kind=SourceKind.TG119, scenario=TG119, level=level)
    phantoms = phantom_scenarios()
    if key not in phantoms:
        raise CliError(
            f"unknown scenario {key!r}; available: {', '.join(phantoms)}, "
            "and tg119 (--tg119 easy or --tg119 hard); see 'rtplan scenarios'"
        )
    return CaseSpec(kind=SourceKind.SCENARIO, scenario=key, seed=seed or 0)


def _from_template(tpl: SiteTemplate, name: str, seed: int | None) -> CaseSpec:
    """No source given: the template's own ``scenario:``."""
    scenario = tpl.scenario
    if scenario.lower() in _TG119_ALIASES:
        if seed is not None:
            raise CliError(
                f"template {name!r} plans the TG-119 phantom, which has no seed: drop --seed"
            )
        return CaseSpec(kind=SourceKind.TG119, scenario=TG119, level=_tg119_level(Path(name).stem))
    if scenario == OPENKBP:
        raise CliError(f"template {name!r} is for OpenKBP patients: add --openkbp PATIENT_DIR")
    if scenario not in phantom_scenarios():
        raise CliError(
            f"template {name!r} is for scenario {scenario!r}, which the simulated TPS does not "
            "have; choose the case: --scenario NAME (see 'rtplan scenarios') or --tg119 easy|hard"
        )
    return CaseSpec(kind=SourceKind.SCENARIO, scenario=scenario, seed=seed or 0)


def _check_match(source: CaseSpec, tpl: SiteTemplate, name: str) -> tuple[str, ...]:
    """Refuse a template for another known case; a note for a sibling of the same site."""
    wanted = TG119 if tpl.scenario.lower() in _TG119_ALIASES else tpl.scenario
    known = {*phantom_scenarios(), TG119, OPENKBP}
    if source.kind is SourceKind.DICOM:  # a patient: any site's template applies
        return ()
    if wanted == source.scenario:
        level = _tg119_level(Path(name).stem)
        if source.level is not None and level is not None and level is not source.level:
            return (f"--tg119 {source.level.value} with template {name}: its goals are used",)
        return ()
    if wanted not in known:
        return (f"template {name} is for scenario {wanted!r}; planning it on {source.label}",)
    if _site(wanted) == _site(source.scenario) and TG119 not in (wanted, source.scenario):
        return (f"template {name} was written for {wanted}; planning it on {source.label}",)
    given = {SourceKind.TG119: "--tg119", SourceKind.OPENKBP: "--openkbp"}.get(
        source.kind, f"--scenario {source.scenario}"
    )
    raise CliError(
        f"template {name!r} is for scenario {wanted!r}, not {source.scenario!r} ({given}): "
        f"drop {given} (the template's scenario is the default) or choose a template for "
        f"{source.scenario} (see 'rtplan scenarios')"
    )


def choose_case(
    *,
    scenario: str | None = None,
    seed: int | None = None,
    tg119: Tg119Level | str | None = None,
    tg119_path: Path | None = None,
    openkbp: Path | None = None,
    dicom: Path | None = None,
    template: str | None = None,
) -> CaseChoice:
    """The case and template of a run from its command-line options (the rule above).

    Raises
    ------
    CliError
        Two sources, an unknown scenario or template, a template for another case, a seed
        or TG-119 file where they do not apply; the message says what to type instead.
    agent.templates.TemplateError
        The template file is invalid.
    """
    given = [f"--scenario {scenario}"] if scenario is not None else []
    if tg119 is not None:
        given.append(f"--tg119 {Tg119Level(str(tg119).lower()).value}")
    if openkbp is not None:
        given.append("--openkbp")  # the folder's name is never echoed
    if dicom is not None:
        given.append("--dicom")
    if len(given) > 1:
        raise CliError(f"give one case source, not {' and '.join(given)}")
    if seed is not None and tg119 is not None:
        raise CliError("--seed is for the phantoms; the TG-119 phantom has none: drop --seed")
    if seed is not None and openkbp is not None:
        raise CliError("--seed is for the phantoms; an OpenKBP patient has none: drop --seed")
    if seed is not None and dicom is not None:
        raise CliError("--seed is for the phantoms; a DICOM case has none: drop --seed")
    if openkbp is not None and not openkbp.is_dir():
        raise CliError(
            "--openkbp: the patient folder given is not a directory; pass an OpenKBP patient "
            "folder (ct.csv, dose.csv, voxel_dimensions.csv, PTV70.csv, ...)"
        )
    tpl = _load(template) if template is not None else None
    if dicom is not None:
        from agent.cli.dicom_source import dicom_source

        found = dicom_source(dicom, tpl, template)
        source = CaseSpec(kind=SourceKind.DICOM, scenario=DICOM, dicom=found)
    elif openkbp is not None:
        source = CaseSpec(kind=SourceKind.OPENKBP, scenario=OPENKBP, openkbp_dir=openkbp)
    elif tg119 is not None:
        source = CaseSpec(
            kind=SourceKind.TG119, scenario=TG119, level=Tg119Level(str(tg119).lower())
        )
    elif scenario is not None:
        source = _scenario_source(scenario, seed, template)
    elif tpl is not None and template is not None:
        source = _from_template(tpl, template, seed)
    else:
        source = CaseSpec(kind=SourceKind.SCENARIO, scenario=DEMO_SCENARIO, seed=seed or 0)
    if tg119_path is not None:
        if source.kind is not SourceKind.TG119:
            raise CliError(
                "--tg119-path is for the TG-119 phantom: add --tg119 easy or --tg119 hard"
            )
        source = source.model_copy(update={"tg119_path": tg119_path})
    if tpl is None or template is None:
        name = source.default_template
        if name is None:  # pragma: no cover - every TG-119 source without template has a level
            raise CliError("choose a template: --template tg119-easy or tg119-hard")
        return CaseChoice(source, name, _load(name))
    notes = _check_match(source, tpl, template)
    default = source.default_template if source.kind is SourceKind.OPENKBP else None
    if default == OPENKBP_TEMPLATES[1] and "PTV63" not in tpl.structure_ids:
        notes += (f"the patient has a PTV63, which template {template} does not plan: "
                  f"use {default}",)  # fmt: skip
    return CaseChoice(source, template, tpl, notes)
