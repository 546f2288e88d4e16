"""``rtplan show``, ``rtplan sessions`` and ``rtplan scenarios``: read, never write.

``show`` and ``sessions`` read journals without taking the session lock (a running
session can be watched); each has ``--json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli.case_source import TG119, phantom_scenarios
from agent.cli.console import console, emit_json, esc, json_mode
from agent.cli.errors import fail, known_errors
from agent.cli.tables import Column, fit_table, num, seconds
from agent.session.records import REVERT_POLICY, IterationRecord, SessionLog

#: Where ``rtplan plan`` puts sessions by default (and ``rtplan sessions`` looks).
SESSIONS_DIR = Path("rtplan-sessions")

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (nothing else goes to stdout).")
]

_ITERATION_COLUMNS = (
    Column("iter", key=True, justify="right"),
    Column("score", key=True, justify="right"),
    Column("goals met", key=True, justify="right", short="met"),
    Column("P1", key=True),
    Column("what happened", short="what"),
    Column("opt s", key=True, justify="right", drop=2),
    Column("total s", key=True, justify="right", drop=1, short="s"),
)
_SESSION_COLUMNS = (
    Column("session", key=True),
    Column("case", key=True, drop=2),
    Column("template", key=True, drop=3),
    Column("status", key=True),
    Column("iters", key=True, justify="right", short="it"),
    Column("score", key=True, justify="right"),
    Column("started", key=True, drop=4),
)


def _what(record: IterationRecord) -> str:
    if record.iteration == 0:
        return "template plan"
    if record.proposal.policy == REVERT_POLICY:
        return "back to the best plan"
    parts = [record.verdict.status.value]
    if record.approval.value != "auto":
        parts.append(record.approval.value)
    if record.rejected:
        parts.append(f"{len(record.rejected)} turned down first")
    return ", ".join(parts)


def _score(ev: Any) -> str:
    if ev is None:
        return "-"
    if ev.score is None:
        return "-"
    return f"{num(ev.score)}/{ev.max_score:g}"


def _met(ev: Any) -> str:
    if ev is None:
        return "-"
    return f"{sum(g.status.value == 'met' for g in ev.goals)}/{len(ev.goals)}"


def status_text(log: SessionLog) -> str:
    """The stop reason of a finished session, else ``unfinished``."""
    if log.summary is None:
        return "unfinished"
    return log.summary.stop_reason.value


def iteration_json(record: IterationRecord) -> dict[str, Any]:
    """One row of ``rtplan show --json``."""
    ev = record.evaluation
    return {
        "iteration": record.iteration,
        "score": None if ev is None else ev.score,
        "max_score": None if ev is None else ev.max_score,
        "goals_met": None if ev is None else sum(g.status.value == "met" for g in ev.goals),
        "goals": None if ev is None else len(ev.goals),
        "priority1_met": None if ev is None else ev.all_priority1_met,
        "what": _what(record),
        "policy": record.proposal.policy,
        "rationale": record.proposal.rationale,
        "optimize_s": record.timings.optimize_s,
        "total_s": record.timings.total_s,
    }


def _read(path: Path) -> SessionLog:
    from agent.session.journal import read_journal

    return read_journal(path)


def show(
    session: Annotated[
        Path, typer.Argument(help="A session directory or its journal.jsonl.", show_default=False)
    ],
    as_json: JsonFlag = False,
) -> None:
    """Print a session's journal as a table: one row per iteration (read-only, no lock)."""
    with json_mode(as_json):
        try:
            log = _read(session)
        except known_errors() as exc:
            raise fail(exc) from None
    h = log.header
    if as_json:
        emit_json(
            {
                "session_id": h.session_id,
                "case": h.case.case_label,
                "template": h.template_name,
                "policy": h.config.policy,
                "started_at": h.started_at,
                "status": status_text(log),
                "notices": list(getattr(log, "notices", [])),
                "iterations": [iteration_json(r) for r in log.iterations],
                "summary": None if log.summary is None else log.summary.model_dump(mode="json"),
            }
        )
        return
    console.print(
        f"[bold]{esc(h.case.case_label or h.session_id)}[/] template {esc(h.template_name)}, "
        f"policy {esc(h.config.policy)}, started {esc(h.started_at)}",
        highlight=False,
    )
    for notice in getattr(log, "notices", []):
        console.print(f"[yellow]notice:[/] {esc(notice)}", highlight=False)
    rows = []
    for r in log.iterations:
        ev = r.evaluation
        p1 = "-" if ev is None else ("met" if ev.all_priority1_met else "[red]not met[/]")
        rows.append(
            [
                str(r.iteration), _score(ev), _met(ev), p1, esc(_what(r)),
                num(r.timings.optimize_s, 1), num(r.timings.total_s, 1),
            ]
        )  # fmt: skip
    console.print(fit_table(_ITERATION_COLUMNS, rows, console.width, title="Iterations"))
    if log.summary is None:
        console.print(
            "status: [yellow]unfinished[/] (still running, or stopped without a summary: "
            f"'rtplan resume {esc(session)}' continues it)",
            highlight=False,
        )
    else:
        s = log.summary
        console.print(
            f"status: [bold]{esc(s.stop_reason.value)}[/]: {esc(s.message)}; "
            f"{s.iterations} iterations, {s.inner_optimizations} optimizations, "
            f"{seconds(s.wall_time_s)}",
            highlight=False,
        )


def _session_row(path: Path) -> dict[str, Any]:
    """What ``rtplan sessions`` shows of one session directory."""
    row: dict[str, Any] = {"session": path.name, "path": str(path)}
    try:
        log = _read(path)
    except known_errors() as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return row | {"status": "unreadable", "error": first}
    h = log.header
    last = log.iterations[-1].evaluation if log.iterations else None
    final = log.summary.final_evaluation if log.summary is not None else last
    return row | {
        "case": h.case.case_label,
        "template": h.template_name,
        "status": status_text(log),
        "iterations": log.summary.iterations if log.summary else max(len(log.iterations) - 1, 0),
        "score": None if final is None else final.score,
        "max_score": None if final is None else final.max_score,
        "goals_met": _met(final),
        "started_at": h.started_at,
    }


def sessions(
    directory: Annotated[
        Path,
        typer.Argument(help="Where to look for session directories.", show_default=True),
    ] = SESSIONS_DIR,
    as_json: JsonFlag = False,
) -> None:
    """List the sessions under a directory (default rtplan-sessions/) with their status."""
    with json_mode(as_json):
        if not directory.is_dir():
            raise fail(f"no session directory {directory}: give the folder that holds sessions")
    found = sorted(p.parent for p in directory.glob("*/journal.jsonl"))
    if (directory / "journal.jsonl").is_file():
        found.insert(0, directory)
    rows = [_session_row(p) for p in found]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"no sessions under {esc(directory)}", highlight=False)
        return
    cells = []
    for r in rows:
        score = (
            r.get("goals_met", "-")
            if r.get("score") is None
            else (f"{num(r['score'])}/{r['max_score']:g}")
        )
        status = "[red]unreadable[/]" if r["status"] == "unreadable" else esc(r["status"])
        cells.append(
            [esc(r["session"]), esc(r.get("case") or "-"), esc(r.get("template", "-")), status,
             str(r.get("iterations", "-")), esc(score), esc(str(r.get("started_at", "-"))[:19])]
        )  # fmt: skip
    console.print(
        fit_table(_SESSION_COLUMNS, cells, console.width, title=f"Sessions in {esc(directory)}")
    )
    for r in rows:
        if r["status"] == "unreadable":
            console.print(f"[red]{esc(r['session'])}:[/] {esc(r['error'])}", highlight=False)


def scenario_rows() -> list[dict[str, Any]]:
    """Every case of the simulated TPS, how to choose it and its template(s)."""
    from agent.cli.templates import technique_text
    from agent.templates import list_templates, load_template

    templates = [load_template(n) for n in list_templates()]
    rows = []
    for name in [*phantom_scenarios(), TG119]:
        matching = [t for t in templates if t.scenario == name]
        option = "--tg119 easy|hard" if name == TG119 else f"--scenario {name}"
        rows.append(
            {
                "scenario": name,
                "option": option,
                "templates": [t.name for t in matching],
                "technique": ", ".join(dict.fromkeys(technique_text(t) for t in matching)),
            }
        )
    return rows


def scenarios(as_json: JsonFlag = False) -> None:
    """List the simulated cases, the option that chooses each, and its template."""
    rows = scenario_rows()
    if as_json:
        emit_json(rows)
        return
    columns = (
        Column("scenario", key=True),
        Column("choose with", key=True),
        Column("template", key=True),
        Column("technique", drop=1),
    )
    cells = [
        [esc(r["scenario"]), esc(r["option"]), esc(", ".join(r["templates"])), esc(r["technique"])]
        for r in rows
    ]
    console.print(fit_table(columns, cells, console.width, title="Simulated cases"))
    console.print(
        "Without a case option, 'rtplan plan --template NAME' plans the template's scenario.",
        highlight=False,
    )
