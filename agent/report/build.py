"""Build the report of one planning session: HTML, PNG figures, CSV tables and JSON summary.

``build_report(session_dir)`` writes into ``session_dir/report/``:

- ``report.html``: self-contained (inline CSS, figures embedded as base64 PNG), opens
  from disk with no network;
- ``progress.png``, ``dvh.png``, ``dose_slices.png`` (when dose planes exist);
- ``goals.csv`` (initial vs final per goal), ``iterations.csv`` (one row per iteration);
- ``report.json``: a machine-readable summary.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from agent.report.changes import change_log, objective_rows
from agent.report.data import (
    STATUS_LABELS,
    ReportData,
    ReportError,
    fmt_value,
    goal_rows,
    iteration_rows,
    load_report_data,
    score_text,
    status_counts,
)
from agent.report.dose_planes import plot_slices
from agent.report.plots import plot_dvh, plot_progress, structure_colours
from agent.session.outcome import stop_label
from agent.session.records import SessionLog, utc_now_iso
from agent.session.signals import blocked_signals
from rtplan_common.atomic_io import write_text_atomic

REPORT_DIRNAME = "report"
REPORT_SCHEMA_VERSION = 1
TEMPLATES_DIR = Path(__file__).parent / "templates"

GOAL_CSV_COLUMNS = (
    "goal_id",
    "priority",
    "structure_id",
    "plan_structure_id",
    "metric",
    "comparator",
    "limit",
    "unit",
    "variation",
    "initial_value",
    "initial_status",
    "initial_margin",
    "final_value",
    "final_status",
    "final_margin",
    "change",
)
ITERATION_CSV_COLUMNS = (
    "iteration",
    "policy",
    "score",
    "max_score",
    "all_priority1_met",
    "goals_met",
    "goals_within_variation",
    "goals_failed",
    "objective_value",
    "optimizer_success",
    "optimizer_iterations",
    "inner_optimizations",
    "normalization_factor",
    "verdict",
    "rejected_proposals",
    "approval",
    "propose_s",
    "guard_s",
    "approval_s",
    "optimize_s",
    "dose_s",
    "normalize_s",
    "evaluate_s",
    "total_s",
    "timestamp",
)


def build_report(session_dir: Path) -> Path:
    """Build the report of the session in ``session_dir``; return the path of ``report.html``.

    Missing snapshots or an unfinished session still give a report, which lists what
    is missing. The report is built in a temporary directory beside ``report/`` and
    renamed into place, so that an interrupt (Ctrl-C, SIGTERM) or a full disk leaves the
    previous complete report, or none, never a part of one.

    Raises
    ------
    agent.report.data.ReportError
        If there is no session there or its journal (or ``summary.json``, or a
        snapshot) does not parse; the message names the file and, for the journal,
        the line. Also when the report cannot be written (the OS reason is named).
    """
    data = load_report_data(Path(session_dir))
    final = data.session_dir / REPORT_DIRNAME
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".report-", suffix=".tmp", dir=data.session_dir))
    except OSError as exc:
        raise ReportError(_write_error(final, exc)) from exc
    try:
        os.chmod(tmp, 0o755)
        _write_report(data, tmp)
        _move_into_place(tmp, final)
    except OSError as exc:
        raise ReportError(_write_error(final, exc)) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful move
    return final / "report.html"


def _write_error(path: Path, exc: OSError) -> str:
    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return f"cannot write the report in {str(path)!r}: {why}; nothing was changed there"


def _move_into_place(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` (signals held back between the two renames)."""
    old = final.with_name(f".{final.name}-old-{os.getpid()}.tmp")
    with blocked_signals():
        had_old = final.exists()
        if had_old:
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        try:
            tmp.rename(final)
        except OSError:
            if had_old:
                old.rename(final)
            raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError):  # make the renames durable where the OS allows it
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_report(data: ReportData, out: Path) -> None:
    """Write every file of the report into the (new, empty) directory ``out``."""
    goals = goal_rows(data.initial_evaluation, data.final_evaluation)
    iters = iteration_rows(data.log.iterations)
    changes = change_log(data.log)
    structures = _structure_order(data)
    colours = structure_colours(structures)
    best = data.summary.best_iteration if data.summary else None

    figures: dict[str, Path] = {}
    if any(r["goals_met"] is not None for r in iters):
        figures["progress"] = plot_progress(
            iters, _margins(data.log), colours, out / "progress.png", best_iteration=best
        )
    clinical = data.summary.clinical_reference if data.summary else None
    if data.initial_snapshot or data.final_snapshot:
        figures["dvh"] = plot_dvh(
            data.initial_snapshot,
            data.final_snapshot,
            colours,
            data.prescription_gy,
            out / "dvh.png",
            goals=goals,
            reference=clinical.clinical_dvhs if clinical else None,
        )
    snaps = [s for s in (data.initial_snapshot, data.final_snapshot) if s is not None]
    slices_png = plot_slices(snaps, colours, data.prescription_gy, out / "dose_slices.png")
    if slices_png is not None:
        figures["dose_slices"] = slices_png

    _write_csv(out / "goals.csv", GOAL_CSV_COLUMNS, goals)
    _write_csv(out / "iterations.csv", ITERATION_CSV_COLUMNS, iters)
    summary_json = _report_json(data, goals, iters, changes, figures)
    write_text_atomic(out / "report.json", json.dumps(summary_json, indent=2, default=str) + "\n")
    html = _render_html(data, goals, iters, changes, figures, summary_json)
    write_text_atomic(out / "report.html", html)


def _structure_order(data: ReportData) -> list[str]:
    """Plan structure ids in template order, then any other snapshot structure."""
    ids = list(data.log.header.structure_map.values())
    for snap in (data.final_snapshot, data.initial_snapshot):
        if snap is not None:
            ids += list(snap.dvhs)
            for s in snap.slices.values():
                ids += list(s.masks)
    return list(dict.fromkeys(ids))


def _margins(log: SessionLog) -> dict[str, dict[str, Any]]:
    margins: dict[str, dict[str, Any]] = {}
    for it in log.iterations:
        for g in it.evaluation.goals if it.evaluation else []:
            entry = margins.setdefault(
                g.goal_id,
                {
                    "label": f"{g.plan_structure_id} {g.metric}",
                    "unit": g.unit,
                    "priority": g.priority,
                    "structure": g.structure_id,
                    "plan_structure": g.plan_structure_id,
                    "values": {},
                },
            )
            if g.margin is not None:
                entry["values"][it.iteration] = g.margin
    return margins


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    write_text_atomic(path, buffer.getvalue())


def _eval_summary(evaluation: Any) -> dict[str, Any] | None:
    if evaluation is None:
        return None
    return {
        "score": evaluation.score,
        "max_score": evaluation.max_score,
        "all_priority1_met": evaluation.all_priority1_met,
        "goals": status_counts(evaluation),
    }


def _report_json(
    data: ReportData,
    goals: list[dict[str, Any]],
    iters: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    figures: Mapping[str, Path],
) -> dict[str, Any]:
    header, summary = data.log.header, data.summary
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": utc_now_iso(),
        "session_id": header.session_id,
        "finished": summary is not None,
        "stop_reason": None if summary is None else summary.stop_reason.value,
        "stop_label": "unfinished" if summary is None else stop_label(summary.stop_reason),
        "message": "" if summary is None else summary.message,
        "template": {"name": header.template_name, "hash": header.template_hash},
        "case": header.case.model_dump(mode="json"),
        "config": header.config.model_dump(mode="json"),
        "iterations": None if summary is None else summary.iterations,
        "iterations_recorded": len(data.log.iterations),
        "inner_optimizations": None if summary is None else summary.inner_optimizations,
        "rejected_proposals": None if summary is None else summary.rejected_proposals,
        "model_calls": None
        if summary is None or summary.model_calls is None
        else summary.model_calls.model_dump(mode="json"),
        "restored_original": None if summary is None else summary.restored_original,
        "best_iteration": None if summary is None else summary.best_iteration,
        "wall_time_s": None if summary is None else summary.wall_time_s,
        "initial": _eval_summary(data.initial_evaluation),
        "final": _eval_summary(data.final_evaluation),
        "score_text": {
            "initial": score_text(data.initial_evaluation),
            "final": score_text(data.final_evaluation),
        },
        "final_source": data.final_source,
        "goals": goals,
        "per_iteration": iters,
        "objective_changes": changes,
        "snapshots": {
            label: None
            if snap is None
            else {
                "dvh_structures": sorted(snap.dvhs),
                "dvh_missing": snap.dvh_missing,
                "slices": [p.value for p in snap.slices],
                "slices_unavailable": snap.slices_unavailable,
            }
            for label, snap in (("initial", data.initial_snapshot), ("final", data.final_snapshot))
        },
        "events": [e.model_dump(mode="json") for e in data.log.events],
        "missing": data.missing,
        "files": {
            "html": "report.html",
            "goals_csv": "goals.csv",
            "iterations_csv": "iterations.csv",
            **{name: p.name for name, p in figures.items()},
        },
    }


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _fmt_num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _render_html(
    data: ReportData,
    goals: list[dict[str, Any]],
    iters: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    figures: Mapping[str, Path],
    summary_json: Mapping[str, Any],
) -> str:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _fmt_num
    env.filters["val"] = fmt_value
    env.globals["status_label"] = lambda key: STATUS_LABELS.get(key, key or "—")
    first = data.log.iterations[0] if data.log.iterations else None
    final_objectives = data.log.iterations[-1].applied_objectives if data.log.iterations else []
    template = env.get_template("report.html.j2")
    return template.render(
        header=data.log.header,
        summary=data.summary,
        report=summary_json,
        missing=data.missing,
        goals=goals,
        iterations=iters,
        changes=changes,
        criteria=_criteria_rows(data),
        initial_objectives=objective_rows(first.applied_objectives) if first else [],
        original_objectives=objective_rows(data.log.header.original_objectives),
        final_objectives=objective_rows(final_objectives),
        events=data.log.events,
        final_source=data.final_source,
        images={
            name: _png_data_uri(figures[name]) if name in figures else None
            for name in ("progress", "dvh", "dose_slices")
        },
        snapshot_notes=[m for m in data.missing if "snapshot" in m or "planes" in m],
    )


def _criteria_rows(data: ReportData) -> list[dict[str, Any]]:
    first = (
        {c.criterion_id: c for c in data.initial_evaluation.criteria}
        if data.initial_evaluation
        else {}
    )
    last = (
        {c.criterion_id: c for c in data.final_evaluation.criteria} if data.final_evaluation else {}
    )
    rows = []
    for cid in list(dict.fromkeys([*last, *first])):
        ref = last.get(cid) or first[cid]
        c0, c1 = first.get(cid), last.get(cid)
        rows.append(
            {
                "criterion_id": cid,
                "structure_id": ref.structure_id,
                "metric": ref.metric,
                "max_points": ref.max_points,
                "initial_value": None if c0 is None else c0.value,
                "initial_points": None if c0 is None else c0.points,
                "final_value": None if c1 is None else c1.value,
                "final_points": None if c1 is None else c1.points,
            }
        )
    return rows
