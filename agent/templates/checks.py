"""Cross-reference checks of a site template (run when a ``SiteTemplate`` is validated).

Every problem is reported with the field it concerns (``goals[3].structure``) and the reason;
all problems are collected and raised together as :class:`TemplateProblems`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import ValidationError

from agent.templates.errors import TemplateProblems
from agent.templates.limits import dose_problem, limit_problem, range_problem
from agent.templates.metric import MetricKind, Quantity
from agent.templates.names import simple_key
from agent.templates.objectives import ObjectiveSpec
from agent.templates.specs import (
    DICOM_TYPES,
    GoalSpec,
    PrescriptionSpec,
    ScoreSpec,
    StructureSpec,
)
from esapi_bridge.dto import objective_key
from rtplan_common.models import validation_problems


class TemplateParts(Protocol):
    """What the checks read of a site template (the schema's ``SiteTemplate`` has it)."""

    @property
    def prescription(self) -> PrescriptionSpec: ...
    @property
    def structures(self) -> Sequence[StructureSpec]: ...
    @property
    def objectives(self) -> Sequence[ObjectiveSpec]: ...
    @property
    def goals(self) -> Sequence[GoalSpec]: ...
    @property
    def score(self) -> ScoreSpec | None: ...
    def structure(self, structure_id: str) -> StructureSpec: ...


Problems = list[tuple[str, str]]

# which optional parameters each objective kind takes (True = required)
_KIND_FIELDS: dict[str, dict[str, bool]] = {
    "point": {"structure": True, "operator": True, "dose": True, "volume_pct": True},
    "mean": {"structure": True, "dose": True},
    "geud": {"structure": True, "operator": True, "dose": True, "parameter_a": True},
    "nto": {
        "distance_from_target_border_mm": True,
        "start_dose_pct": True,
        "end_dose_pct": True,
        "fall_off": True,
    },
}
_OPTIONAL_FIELDS = (
    "structure",
    "operator",
    "dose",
    "volume_pct",
    "parameter_a",
    "distance_from_target_border_mm",
    "start_dose_pct",
    "end_dose_pct",
    "fall_off",
)
_RANGE_FIELDS = {
    "point": ("dose", "volume_pct", "priority"),
    "mean": ("dose", "priority"),
    "geud": ("dose", "priority", "parameter_a"),
    "nto": (
        "priority",
        "distance_from_target_border_mm",
        "start_dose_pct",
        "end_dose_pct",
        "fall_off",
    ),
}


def check_template(t: TemplateParts) -> None:
    """Raise :class:`TemplateProblems` listing every inconsistency of ``t``."""
    p: Problems = []
    _check_structures(t, p)
    known = {s.id for s in t.structures}
    _check_prescription(t, known, p)
    _check_objectives(t, known, p)
    _check_goals(t, known, p)
    _check_score(t, known, p)
    if p:
        raise TemplateProblems(p)


def _unknown(sid: str, known: set[str]) -> str:
    return f"unknown structure {sid!r}; template structures: {', '.join(sorted(known))}"


def _check_structures(t: TemplateParts, p: Problems) -> None:
    seen: dict[str, str] = {}  # simple key -> owner id
    ids: set[str] = set()
    for i, s in enumerate(t.structures):
        f = f"structures[{i}]"
        if s.id in ids:
            p.append((f"{f}.id", f"duplicate structure id {s.id!r}"))
        ids.add(s.id)
        if s.dicom_type not in DICOM_TYPES:
            p.append(
                (
                    f"{f}.dicom_type",
                    f"{s.dicom_type!r} is not one of {', '.join(sorted(DICOM_TYPES))}",
                )
            )
        for name in [s.id, *s.aliases]:
            key = simple_key(name)
            if not key:
                p.append((f"{f}.aliases", f"name {name!r} has no letter or digit"))
            elif seen.get(key, s.id) != s.id:
                p.append(
                    (
                        f"{f}.aliases",
                        f"name {name!r} also names structure {seen[key]!r} "
                        "(case and punctuation ignored)",
                    )
                )
            else:
                seen[key] = s.id
    externals = [s.id for s in t.structures if s.dicom_type == "EXTERNAL"]
    if len(externals) != 1:
        p.append(("structures", f"need exactly one EXTERNAL (body) structure, found {externals}"))
    elif not t.structure(externals[0]).required:
        p.append(("structures", f"the EXTERNAL structure {externals[0]!r} must be required"))
    for i, s in enumerate(t.structures):
        if s.derive is None:
            continue
        for ref in s.derive.references:
            if ref not in ids:
                p.append((f"structures[{i}].derive", _unknown(ref, ids)))
            elif ref == s.id:
                p.append((f"structures[{i}].derive", f"{s.id!r} is derived from itself"))
    _check_derive_cycles(t, p)


def _check_derive_cycles(t: TemplateParts, p: Problems) -> None:
    graph = {s.id: (s.derive.references if s.derive else []) for s in t.structures}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*path[path.index(node) :], node]
            p.append(("structures", f"derived structures form a cycle: {' -> '.join(cycle)}"))
            return
        state[node] = 1
        for ref in graph.get(node, []):
            if ref in graph and ref != node:
                visit(ref, [*path, node])
        state[node] = 2

    for sid in graph:
        visit(sid, [])


def _check_prescription(t: TemplateParts, known: set[str], p: Problems) -> None:
    rx = t.prescription
    if rx.target not in known:
        p.append(("prescription.target", _unknown(rx.target, known)))
    elif not t.structure(rx.target).is_target:
        p.append(("prescription.target", f"{rx.target!r} is not a PTV, CTV or GTV"))
    elif not t.structure(rx.target).required:
        p.append(("prescription.target", f"the prescription target {rx.target!r} must be required"))
    for sid in rx.dose_levels_gy:
        if sid not in known:
            p.append((f"prescription.dose_levels_gy.{sid}", _unknown(sid, known)))
    norm = rx.normalization
    if norm is None:
        return
    if norm.structure not in known:
        p.append(("prescription.normalization.structure", _unknown(norm.structure, known)))
    elif not t.structure(norm.structure).required:
        p.append(("prescription.normalization.structure", "must be a required structure"))
    m = norm.metric
    if not (
        m.kind is MetricKind.MEAN or (m.kind is MetricKind.DOSE_AT_VOLUME and m.volume_unit == "%")
    ):
        p.append(
            ("prescription.normalization.metric", f"{m.text!r}: use D<x>% or Mean to normalize")
        )
    if not norm.value.compatible_with("Gy"):
        p.append(("prescription.normalization.value", _mismatch(norm.value, "Gy")))
    elif not norm.value.resolve("Gy", rx.dose_gy) > 0.0:
        p.append(("prescription.normalization.value", f"must be > 0 Gy; got {norm.value}"))


def _mismatch(q: Quantity, unit: str) -> str:
    shown = unit or "no unit"
    allowed = {"Gy": "Gy, cGy, Rx or %Rx", "%": "%", "cm3": "cc or cm3", "": "a bare number"}
    return f"unit mismatch: {q} given where the metric is in {shown} (use {allowed[unit]})"


def _check_objectives(t: TemplateParts, known: set[str], p: Problems) -> None:
    keys: dict[str, int] = {}
    rx = t.prescription.dose_gy
    for i, o in enumerate(t.objectives):
        f = f"objectives[{i}]"
        spec = _KIND_FIELDS[o.kind]
        before = len(p)
        for name in _OPTIONAL_FIELDS:
            present = getattr(o, name) is not None
            if spec.get(name) and not present:
                p.append((f"{f}.{name}", f"required for a {o.kind!r} objective"))
            elif present and name not in spec:
                p.append((f"{f}.{name}", f"not a parameter of a {o.kind!r} objective"))
        if o.structure is not None and o.structure not in known:
            p.append((f"{f}.structure", _unknown(o.structure, known)))
        if o.dose is not None and not o.dose.compatible_with("Gy"):
            p.append((f"{f}.dose", _mismatch(o.dose, "Gy")))
        elif o.dose is not None and (problem := dose_problem(o.dose, o.dose.resolve("Gy", rx))):
            p.append((f"{f}.dose", problem))
        for name in type(o.range).model_fields:
            if getattr(o.range, name) is not None and name not in _RANGE_FIELDS[o.kind]:
                p.append((f"{f}.range.{name}", f"not a parameter of a {o.kind!r} objective"))
        if o.range.dose is not None:
            for j, q in enumerate(o.range.dose):
                if not q.compatible_with("Gy"):
                    p.append((f"{f}.range.dose[{j}]", _mismatch(q, "Gy")))
                elif problem := dose_problem(q, q.resolve("Gy", rx)):
                    p.append((f"{f}.range.dose[{j}]", problem))
        if len(p) > before:
            continue
        try:
            obj = o.to_objective(o.structure, rx)
        except ValidationError as exc:
            # the port's checks (e.g. a gEUD parameter a of 0): named as the template writes them
            for field, reason in validation_problems(exc):
                p.append((f"{f}.{field.removesuffix('_gy')}", reason))
            continue
        except ValueError as exc:
            p.append((f, f"invalid objective: {exc}"))
            continue
        key = objective_key(obj)
        if key in keys:
            p.append((f, f"same objective key {key!r} as objectives[{keys[key]}]"))
        keys[key] = i
        _check_range(o, f, rx, p)


def _check_range(o: ObjectiveSpec, f: str, rx: float, p: Problems) -> None:
    """Each bound pair ordered and the initial value inside it."""
    r = o.resolved_range(rx)
    initial = o.to_objective(o.structure, rx)
    for name in type(r).model_fields:
        bounds = getattr(r, name)
        if bounds is None:
            continue
        lo, hi = bounds
        if lo > hi:
            p.append(
                (f"{f}.range.{name.removesuffix('_gy')}", f"lower bound {lo:g} > upper {hi:g}")
            )
            continue
        value = float(getattr(initial, name))
        if not lo - 1e-9 <= value <= hi + 1e-9:
            p.append(
                (
                    f"{f}.range.{name.removesuffix('_gy')}",
                    f"initial value {value:g} outside the range [{lo:g}, {hi:g}]",
                )
            )


def _check_goals(t: TemplateParts, known: set[str], p: Problems) -> None:
    ids: set[str] = set()
    for i, g in enumerate(t.goals):
        f = f"goals[{i}]"
        if g.id in ids:
            p.append((f"{f}.id", f"duplicate goal id {g.id!r}"))
        ids.add(g.id)
        unit = g.metric.unit
        for name in ("limit", "variation"):
            q: Quantity = getattr(g, name)
            if not q.compatible_with(unit):
                p.append((f"{f}.{name}", _mismatch(q, unit)))
            elif name == "limit":
                value = q.resolve(unit, t.prescription.dose_gy)
                if problem := limit_problem(g.metric, g.comparator, q, value):
                    p.append((f"{f}.limit", problem))
        if g.variation.value < 0:
            p.append((f"{f}.variation", "must be >= 0"))
        if g.structure not in known:
            p.append((f"{f}.structure", _unknown(g.structure, known)))
        elif g.metric.is_index and not t.structure(g.structure).is_target:
            p.append((f"{f}.metric", f"{g.metric.text!r} needs a target, not {g.structure!r}"))
        if g.isodose_region is not None:
            if not g.metric.needs_body:
                p.append(
                    (
                        f"{f}.isodose_region",
                        f"only CI_paddick, CI_rtog and GI read isodose volumes, not "
                        f"{g.metric.text!r}: remove isodose_region",
                    )
                )
            elif g.isodose_region not in known:
                p.append((f"{f}.isodose_region", _unknown(g.isodose_region, known)))


def _check_score(t: TemplateParts, known: set[str], p: Problems) -> None:
    if t.score is None:
        return
    ids: set[str] = set()
    rx = t.prescription.dose_gy
    for i, c in enumerate(t.score.criteria):
        f = f"score.criteria[{i}]"
        if c.id in ids:
            p.append((f"{f}.id", f"duplicate criterion id {c.id!r}"))
        ids.add(c.id)
        if c.structure not in known:
            p.append((f"{f}.structure", _unknown(c.structure, known)))
        elif not t.structure(c.structure).required:
            p.append(
                (f"{f}.structure", f"{c.structure!r} is optional; criteria need required ones")
            )
        elif c.metric.is_index and not t.structure(c.structure).is_target:
            p.append((f"{f}.metric", f"{c.metric.text!r} needs a target, not {c.structure!r}"))
        unit = c.metric.unit
        bad = [n for n in ("full", "zero") if not getattr(c, n).compatible_with(unit)]
        for name in bad:
            p.append((f"{f}.{name}", _mismatch(getattr(c, name), unit)))
        if bad:
            continue
        full, zero = c.full.resolve(unit, rx), c.zero.resolve(unit, rx)
        impossible = False
        for name, value in (("full", full), ("zero", zero)):
            if problem := range_problem(c.metric, getattr(c, name), value):
                p.append((f"{f}.{name}", f"no plan can reach this threshold: {problem}"))
                impossible = True
        if impossible:
            continue
        if c.comparator == "<=" and not full < zero:
            p.append(
                (
                    f"{f}.zero",
                    f"threshold order reversed: lower is better, so full ({full:g}) must be < zero ({zero:g})",
                )
            )
        if c.comparator == ">=" and not full > zero:
            p.append(
                (
                    f"{f}.zero",
                    f"threshold order reversed: higher is better, so full ({full:g}) must be > zero ({zero:g})",
                )
            )
    total = t.score.total_weight
    if t.score.max_score is not None and abs(t.score.max_score - total) > 1e-9:
        p.append(
            ("score.max_score", f"{t.score.max_score:g} differs from the sum of weights {total:g}")
        )
