"""``rtplan templates``: list, show and validate site templates (a typer sub-app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from agent.cli.app_base import Command, Group
from agent.cli.console import console as shared_console
from agent.cli.console import emit_json, esc, json_mode
from agent.cli.errors import fail
from agent.cli.tables import Column, fit_table
from agent.templates import (
    ObjectiveSpec,
    SiteTemplate,
    TemplateError,
    TppRange,
    list_templates,
    load_template,
)
from esapi_bridge.dto import Technique

templates_app = typer.Typer(
    name="templates",
    help="List, show and validate site templates (clinical protocols as data).",
    no_args_is_help=True,
    cls=Group,
)

JsonFlag = Annotated[
    bool,
    typer.Option("--json", help="Print JSON on stdout (nothing else goes to stdout)."),
]


def _console() -> Console:
    return shared_console


def technique_text(t: SiteTemplate) -> str:
    """``IMRT 7 fields`` / ``VMAT 2 arcs, 180 cp``."""
    tech = t.technique
    if tech.technique is Technique.VMAT:
        return f"VMAT {tech.arcs} arc{'s' if tech.arcs != 1 else ''}, {tech.control_points} cp"
    if tech.beams:
        noncoplanar = any(b.couch_deg % 360 for b in tech.beams)
        return f"IMRT {len(tech.beams)} fields" + (" (non-coplanar)" if noncoplanar else "")
    return f"IMRT {tech.fields} fields"


def _goal_counts(t: SiteTemplate) -> str:
    counts = [sum(g.priority == p for g in t.goals) for p in (1, 2, 3)]
    return "/".join(str(c) for c in counts)


_LIST_COLUMNS = (
    Column("name", key=True),
    Column("scenario", key=True, drop=1),
    Column("technique", drop=2),
    Column("Rx", key=True),
    Column("structures", key=True, drop=3, short="str"),
    Column("objectives", key=True, drop=3, short="obj"),
    Column("goals P1/P2/P3", key=True, justify="right", short="P1/P2/P3"),
    Column("max score", key=True, justify="right", short="max"),
)


def template_summary(t: SiteTemplate) -> dict[str, Any]:
    """One template as ``templates list --json`` prints it."""
    return {
        "name": t.name,
        "scenario": t.scenario,
        "technique": technique_text(t),
        "prescription_gy": t.prescription.dose_gy,
        "fractions": t.prescription.fractions,
        "structures": len(t.structures),
        "objectives": len(t.objectives),
        "goals_by_priority": [sum(g.priority == p for g in t.goals) for p in (1, 2, 3)],
        "max_score": t.score.total_weight if t.score else None,
        "description": t.description,
    }


@templates_app.command("list", cls=Command)
def list_command(as_json: JsonFlag = False) -> None:
    """List the shipped site templates."""
    templates = [load_template(name) for name in list_templates()]
    if as_json:
        emit_json([template_summary(t) for t in templates])
        return
    rows = [
        [
            esc(t.name),
            esc(t.scenario),
            esc(technique_text(t)),
            f"{t.prescription.dose_gy:g} Gy / {t.prescription.fractions} fx",
            str(len(t.structures)),
            str(len(t.objectives)),
            _goal_counts(t),
            f"{t.score.total_weight:g}" if t.score else "-",
        ]
        for t in templates
    ]
    console = _console()
    console.print(
        fit_table(_LIST_COLUMNS, rows, console.width, title="Site templates", header_style="bold")
    )


def _bounds(b: tuple[float, float] | None, unit: str = "") -> str:
    return "" if b is None else f"{b[0]:g}..{b[1]:g}{unit}"


def _range_text(r: TppRange) -> str:
    units = {"dose_gy": " Gy", "volume_pct": " %", "start_dose_pct": " %", "end_dose_pct": " %"}
    parts = []
    for name, value in r.model_dump().items():
        if value is not None:
            label = name.removesuffix("_gy").removesuffix("_pct").removesuffix("_mm")
            parts.append(f"{label} {_bounds(tuple(value), units.get(name, ''))}")
    return "; ".join(parts) or "fixed"


def _objective_row(o: ObjectiveSpec, rx_gy: float) -> list[str]:
    if o.kind == "nto":
        what = (
            f"{o.distance_from_target_border_mm:g} mm, {o.start_dose_pct:g}->"
            f"{o.end_dose_pct:g} %, fall-off {o.fall_off:g}"
        )
        return [
            "NTO",
            "nto",
            "",
            "",
            "",
            f"{o.priority:g}",
            f"{what}; {_range_text(o.resolved_range(rx_gy))}",
        ]
    dose = f"{o.dose.resolve('Gy', rx_gy):.2f} Gy" if o.dose is not None else ""
    volume = f"{o.volume_pct:g} %" if o.volume_pct is not None else ""
    if o.parameter_a is not None:
        volume = f"a = {o.parameter_a:g}"
    op = o.operator.value if o.operator is not None else "upper"
    return [
        o.structure or "",
        o.kind,
        op,
        dose,
        volume,
        f"{o.priority:g}",
        _range_text(o.resolved_range(rx_gy)),
    ]


_STRUCTURE_COLUMNS = (
    Column("id", key=True),
    Column("type", key=True),
    Column("required", key=True, short="req", drop=1),
    Column("aliases"),
    Column("derived"),
)
_OBJECTIVE_COLUMNS = (
    Column("structure", key=True),
    Column("kind", key=True),
    Column("operator", key=True, short="op"),
    Column("dose", key=True, justify="right"),
    Column("volume", key=True, justify="right", short="vol"),
    Column("priority", key=True, justify="right", short="P"),
    Column("range"),
)
_GOAL_COLUMNS = (
    Column("id", key=True),
    Column("P", key=True),
    Column("structure", key=True, drop=1),
    Column("metric", key=True),
    Column("goal", key=True, justify="right"),
    Column("variation", key=True, justify="right", short="var", drop=2),
)
_SCORE_COLUMNS = (
    Column("id", key=True),
    Column("structure", key=True, drop=1),
    Column("metric", key=True),
    Column("full", key=True, justify="right"),
    Column("zero", key=True, justify="right"),
    Column("points", key=True, justify="right", short="pts"),
)


def _derive_text(s: Any) -> str:
    if s.derive is None:
        return ""
    d = s.derive
    text = f"{d.op} {d.source}"
    if d.others:
        text += f" - {'/'.join(d.others)}" if d.op == "subtract" else f" + {'/'.join(d.others)}"
    if d.op == "ring":
        text += f" {d.inner_mm:g}-{d.outer_mm:g} mm"
    if d.crop_to:
        text += f" within {d.crop_to}"
    return str(text)


def show_template(t: SiteTemplate, console: Console) -> None:
    """Print a template as tables that fit the console (ids and numbers kept whole)."""
    rx = t.prescription
    width = console.width
    console.print(
        f"[bold]{esc(t.name)}[/bold]  scenario {esc(t.scenario)}  {esc(technique_text(t))}",
        highlight=False,
    )
    console.print(esc(t.description), highlight=False)
    levels = ", ".join(f"{esc(k)} {v:g} Gy" for k, v in rx.dose_levels_gy.items())
    norm = rx.normalization
    console.print(
        f"Rx {rx.dose_gy:g} Gy in {rx.fractions} fx to {esc(rx.target)}"
        + (f" ({levels})" if levels else "")
        + (
            f"; normalization {esc(norm.structure)} {esc(norm.metric)} = {esc(norm.value)}"
            if norm
            else ""
        ),
        highlight=False,
    )
    rows = [
        [esc(s.id), esc(s.dicom_type), "yes" if s.required else "no", esc(", ".join(s.aliases)),
         esc(_derive_text(s))]
        for s in t.structures
    ]  # fmt: skip
    console.print(
        fit_table(_STRUCTURE_COLUMNS, rows, width, title="Structures", header_style="bold")
    )
    rows = [[esc(cell) for cell in _objective_row(o, rx.dose_gy)] for o in t.objectives]
    title = "Initial objectives (TPPs) and ranges"
    console.print(fit_table(_OBJECTIVE_COLUMNS, rows, width, title=title, header_style="bold"))
    rows = []
    for g in t.goals:
        unit = g.metric.unit
        limit = g.limit.resolve(unit, rx.dose_gy)
        variation = g.variation.resolve(unit, rx.dose_gy)
        rows.append(
            [
                esc(g.id),
                str(g.priority),
                esc(g.structure),
                esc(g.metric.text),
                esc(f"{g.comparator} {limit:g} {unit}".rstrip()),
                esc(f"{variation:g} {unit}".rstrip()) if variation else "",
            ]
        )
    console.print(
        fit_table(_GOAL_COLUMNS, rows, width, title="Clinical goals", header_style="bold")
    )
    if t.score is not None:
        rows = []
        for c in t.score.criteria:
            unit = c.metric.unit
            rows.append(
                [
                    esc(c.id),
                    esc(c.structure),
                    esc(c.metric.text),
                    esc(f"{c.comparator} {c.full.resolve(unit, rx.dose_gy):g} {unit}".rstrip()),
                    esc(f"{c.zero.resolve(unit, rx.dose_gy):g} {unit}".rstrip()),
                    f"{c.weight:g}",
                ]
            )
        title = f"Score (max {t.score.total_weight:g})"
        console.print(fit_table(_SCORE_COLUMNS, rows, width, title=title, header_style="bold"))


@templates_app.command("show", cls=Command)
def show_command(
    name: Annotated[
        str,
        typer.Argument(
            help="Template name (see 'list') or path to a YAML file.", show_default=False
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the template as JSON on stdout.")
    ] = False,
) -> None:
    """Show a template: structures, objectives with their ranges, goals and score."""
    with json_mode(as_json):
        try:
            t = load_template(name)
        except TemplateError as exc:
            raise fail(exc) from None
    if as_json:
        emit_json(t.model_dump(mode="json"))
        return
    show_template(t, _console())


@templates_app.command("validate", cls=Command)
def validate_command(
    files: Annotated[
        list[Path], typer.Argument(help="Template YAML files to validate.", show_default=False)
    ],
) -> None:
    """Validate template files; exit code 1 if any is invalid."""
    console = _console()
    failed = 0
    for path in files:
        try:
            t = load_template(path)
        except TemplateError as exc:
            failed += 1
            console.print(f"[red]INVALID[/red] {esc(path)}", highlight=False)
            for field, reason in exc.problems:
                console.print(f"  {esc(field)}: {esc(reason)}", highlight=False)
            continue
        console.print(
            f"[green]OK[/green] {esc(path)}: {esc(t.name)} ({len(t.structures)} structures, "
            f"{len(t.objectives)} objectives, {len(t.goals)} goals"
            + (f", max score {t.score.total_weight:g}" if t.score else "")
            + ")",
            highlight=False,
        )
    if failed:
        raise typer.Exit(code=1)
