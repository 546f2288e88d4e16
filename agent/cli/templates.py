"""``rtplan templates``: list, show and validate site templates (a typer sub-app)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

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
)


def _console() -> Console:
    return Console(soft_wrap=False)


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


@templates_app.command("list")
def list_command() -> None:
    """List the shipped site templates."""
    table = Table(title="Site templates", header_style="bold")
    for col in ("name", "scenario", "technique", "Rx", "structures", "objectives"):
        table.add_column(col, overflow="fold")
    table.add_column("goals P1/P2/P3", justify="right")
    table.add_column("max score", justify="right")
    for name in list_templates():
        t = load_template(name)
        rx = t.prescription
        table.add_row(
            t.name,
            t.scenario,
            technique_text(t),
            f"{rx.dose_gy:g} Gy / {rx.fractions} fx",
            str(len(t.structures)),
            str(len(t.objectives)),
            _goal_counts(t),
            f"{t.score.total_weight:g}" if t.score else "-",
        )
    _console().print(table)


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
        return ["NTO", "nto", "", what, "", f"{o.priority:g}", _range_text(o.resolved_range(rx_gy))]
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


def show_template(t: SiteTemplate, console: Console) -> None:
    """Print a template as rich tables."""
    rx = t.prescription
    console.print(f"[bold]{t.name}[/bold]  scenario {t.scenario}  {technique_text(t)}")
    console.print(t.description)
    levels = ", ".join(f"{k} {v:g} Gy" for k, v in rx.dose_levels_gy.items())
    norm = rx.normalization
    console.print(
        f"Rx {rx.dose_gy:g} Gy in {rx.fractions} fx to {rx.target}"
        + (f" ({levels})" if levels else "")
        + (f"; normalization {norm.structure} {norm.metric} = {norm.value}" if norm else "")
    )

    st = Table(title="Structures", header_style="bold")
    for col in ("id", "type", "required", "aliases", "derived"):
        st.add_column(col, overflow="fold")
    for s in t.structures:
        derive = ""
        if s.derive is not None:
            d = s.derive
            derive = f"{d.op} {d.source}"
            if d.others:
                derive += (
                    f" - {'/'.join(d.others)}" if d.op == "subtract" else f" + {'/'.join(d.others)}"
                )
            if d.op == "ring":
                derive += f" {d.inner_mm:g}-{d.outer_mm:g} mm"
            if d.crop_to:
                derive += f" within {d.crop_to}"
        st.add_row(s.id, s.dicom_type, "yes" if s.required else "no", ", ".join(s.aliases), derive)
    console.print(st)

    ot = Table(title="Initial objectives (TPPs) and ranges", header_style="bold")
    for col in ("structure", "kind", "operator", "dose", "volume", "priority", "range"):
        ot.add_column(col, overflow="fold")
    for o in t.objectives:
        ot.add_row(*_objective_row(o, rx.dose_gy))
    console.print(ot)

    gt = Table(title="Clinical goals", header_style="bold")
    for col in ("id", "P", "structure", "metric", "goal", "variation"):
        gt.add_column(col, overflow="fold")
    for g in t.goals:
        unit = g.metric.unit
        limit = g.limit.resolve(unit, rx.dose_gy)
        variation = g.variation.resolve(unit, rx.dose_gy)
        gt.add_row(
            g.id,
            str(g.priority),
            g.structure,
            g.metric.text,
            f"{g.comparator} {limit:g} {unit}".rstrip(),
            f"{variation:g} {unit}".rstrip() if variation else "",
        )
    console.print(gt)

    if t.score is not None:
        sc = Table(title=f"Score (max {t.score.total_weight:g})", header_style="bold")
        for col in ("id", "structure", "metric", "full", "zero", "points"):
            sc.add_column(col, overflow="fold")
        for c in t.score.criteria:
            unit = c.metric.unit
            sc.add_row(
                c.id,
                c.structure,
                c.metric.text,
                f"{c.comparator} {c.full.resolve(unit, rx.dose_gy):g} {unit}".rstrip(),
                f"{c.zero.resolve(unit, rx.dose_gy):g} {unit}".rstrip(),
                f"{c.weight:g}",
            )
        console.print(sc)


@templates_app.command("show")
def show_command(
    name: Annotated[str, typer.Argument(help="Template name (see 'list') or path to a YAML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the template as JSON.")] = False,
) -> None:
    """Show a template: structures, objectives with their ranges, goals and score."""
    console = _console()
    try:
        t = load_template(name)
    except TemplateError as exc:
        console.print("[red]error:[/red]", end=" ")
        console.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(t.model_dump(mode="json"), indent=2))
        return
    show_template(t, console)


@templates_app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="Template YAML files to validate.")],
) -> None:
    """Validate template files; exit code 1 if any is invalid."""
    console = _console()
    failed = 0
    for path in files:
        try:
            t = load_template(path)
        except TemplateError as exc:
            failed += 1
            console.print(f"[red]INVALID[/red] {path}", highlight=False)
            for field, reason in exc.problems:
                console.print(f"  {field}: {reason}", markup=False, highlight=False)
            continue
        console.print(
            f"[green]OK[/green] {path}: {t.name} ({len(t.structures)} structures, "
            f"{len(t.objectives)} objectives, {len(t.goals)} goals"
            + (f", max score {t.score.total_weight:g}" if t.score else "")
            + ")",
            highlight=False,
        )
    if failed:
        raise typer.Exit(code=1)
