"""A competent fake LLM planner that reads nothing but the prompt's text.

:func:`decide` gets the text a model would get (system parts and user text) and answers
with a ``propose_plan_edits``-shaped dict. It imports nothing from the project: every
number it uses (prescription, goals, margins, objectives, achieved doses, ranges, the
iteration) is parsed from the prompt's sections and pipe tables, so that a session it
plans to the protocol's goals proves that the prompt carries what a planner needs.

Strategy, as a planner works (in the spirit of the rule policy, but from the text):

- demands: clinical goals of priority 1-2 not met, and score criteria short of full
  points (their ``full`` value as the limit); while a priority-1 goal fails, only
  priority-1 demands are pushed;
- an organ-at-risk upper demand pushes the closest upper point objective of its structure
  (dose level and volume of the goal point): its dose goes below what the structure now
  receives at that volume, its priority up; with no objective near the goal point a new one
  is added just below it;
- a target hot spot (or the body maximum) pushes the target's upper objective down and
  raises the coverage objective's priority; failing coverage raises the lower objective's
  priority and dose; while a target goal fails, organ objectives whose goals all have ample
  margin are relaxed;
- steps shrink with the iteration and halve after a goal flipped in the last iteration;
  every value is clamped to the ranges of the objectives table;
- ``done`` when every priority 1-2 goal is met and every criterion is at full points.
"""

from __future__ import annotations

import json
import re
from typing import Any

TARGET_TYPES = {"PTV", "CTV", "GTV"}
_NUM = r"[-+]?\d+(?:\.\d+)?"


# ----- reading the text ------------------------------------------------------------------
def sections(text: str) -> dict[str, str]:
    """``## heading`` -> body (the last one wins if a heading repeats)."""
    out: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith("## "):
            if current is not None:
                out[current] = "\n".join(lines).strip()
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        out[current] = "\n".join(lines).strip()
    return out


def _cell(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith('"'):
        return json.loads(raw)
    return None if raw == "-" else raw


def table(body: str) -> list[dict[str, Any]]:
    """The first pipe table of a section body as dicts (quoted cells decoded)."""
    rows = [line.strip() for line in body.split("\n") if line.strip().startswith("|")]
    if len(rows) < 2:
        return []
    header = [h.strip() for h in rows[0].strip("|").split("|")]
    out = []
    for row in rows[2:]:
        cells = [_cell(c) for c in row[1:-1].split("|")]
        out.append(dict(zip(header, cells, strict=True)))
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _range(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = value.split("..")
    return float(lo), float(hi)


def _clamp(value: float, bounds: tuple[float, float] | None) -> float:
    if bounds is None:
        return value
    return min(max(value, bounds[0]), bounds[1])


class Prompt:
    """What the planner reads from the prompt text."""

    def __init__(self, text: str) -> None:
        sec = sections(text)
        protocol = sec["Site protocol"]
        m = re.search(rf"^prescription: ({_NUM}) Gy", protocol, re.M)
        assert m, "no prescription line"
        self.rx_gy = float(m.group(1))
        m = re.search(r"^iteration: (\d+) of (\d+)", sec["Iteration"], re.M)
        assert m, "no iteration line"
        self.iteration, self.max_iterations = int(m.group(1)), int(m.group(2))
        self.types = {r["structure"]: r["type"] for r in table(sec["Structures"])}
        self.goals = table(sec["Clinical goals"])
        self.criteria = table(sec.get("Score criteria", ""))
        self.objectives = table(sec["Current objectives"])
        self.memory = sec.get("Recent iterations", "")
        self.rejected = "Previous attempt rejected" in sec

    def is_target(self, structure: str | None) -> bool:
        return self.types.get(structure or "") in TARGET_TYPES

    def is_body(self, structure: str | None) -> bool:
        return self.types.get(structure or "") == "EXTERNAL"


# ----- demands ---------------------------------------------------------------------------
class Demand:
    """A goal or criterion to improve: ``deficit`` > 0 in the goal's scale."""

    def __init__(self, row: dict[str, Any], limit: float, priority: int, scale: float) -> None:
        self.id = row.get("goal") or row.get("criterion")
        self.structure: str = row["structure"]
        self.metric: str = row["metric"]
        self.upper = row["comparator"] in ("<=", "<")
        self.level_gy = _float(row.get("level_gy"))
        self.limit = limit
        self.value = float(row["value"])
        self.unit = row["unit"]
        self.priority = priority
        room = limit - self.value if self.upper else self.value - limit
        self.deficit = max(-room, 0.0) / scale

    def point(self) -> tuple[float, float] | None:
        """(dose Gy, volume %) of a ``V`` or ``D%`` demand."""
        if self.level_gy is not None and self.unit == "%":
            return self.level_gy, self.limit
        m = re.fullmatch(rf"D({_NUM})%", self.metric)
        if m and self.unit == "Gy":
            return self.limit, float(m.group(1))
        return None


def demands(p: Prompt) -> tuple[list[Demand], dict[str, float]]:
    """Failing demands, and the smallest goal margin (in variation scales) per structure."""
    out: list[Demand] = []
    slack: dict[str, float] = {}
    for g in p.goals:
        priority = int(g["priority"])
        if priority > 2:
            continue
        scale = 2.0 if g["unit"] == "%" else 0.02 * p.rx_gy
        margin = float(g["margin"]) / scale
        slack[g["structure"]] = min(slack.get(g["structure"], 99.0), margin)
        if g["status"] != "met":
            out.append(Demand(g, float(g["limit"]), priority, scale))
    for c in p.criteria:
        if float(c["points"]) < float(c["max_points"]) - 1e-6:
            full, zero = float(c["full"]), float(c["zero"])
            d = Demand(c, full, 2, abs(zero - full) or 1.0)
            if d.deficit > 0 and all(x.id != d.id for x in out):
                out.append(d)
    if any(d.priority == 1 for d in out):
        out = [d for d in out if d.priority == 1]
    return sorted(out, key=lambda d: -d.deficit), slack


# ----- moves -----------------------------------------------------------------------------
def _step_scale(p: Prompt) -> float:
    scale = max(0.3, 0.8 ** (p.iteration - 1))
    last = p.memory.strip().split("\n")[-1] if p.memory.strip() else ""
    if "(now failing)" in last:
        scale *= 0.5
    return scale


class Edits:
    """Changes per objective id (merged) and additions."""

    def __init__(self, p: Prompt) -> None:
        self.p = p
        self.by_id = {o["id"]: o for o in p.objectives}
        self.changes: dict[str, dict[str, float]] = {}
        self.additions: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def current(self, oid: str, field: str) -> float:
        return self.changes.get(oid, {}).get(field, float(self.by_id[oid][field]))

    def set(self, oid: str, field: str, value: float, bounds: tuple[float, float] | None) -> None:
        value = round(_clamp(value, bounds), 2)
        if abs(value - float(self.by_id[oid][field])) >= 0.01:
            self.changes.setdefault(oid, {})[field] = value

    def tighten_upper(self, oid: str, step_gy: float, factor: float) -> None:
        o = self.by_id[oid]
        achieved = _float(o["achieved_gy"])
        start = self.current(oid, "dose_gy")
        if achieved is not None:
            start = min(start, achieved)
        self.set(oid, "dose_gy", start - step_gy, _range(o["dose_range_gy"]))
        self.raise_priority(oid, factor)

    def raise_priority(self, oid: str, factor: float) -> None:
        o = self.by_id[oid]
        self.set(oid, "priority", self.current(oid, "priority") * factor + 5.0,
                 _range(o["priority_range"]))  # fmt: skip

    def relax(self, oid: str, step_gy: float) -> None:
        o = self.by_id[oid]
        if oid in self.changes:
            return
        self.set(oid, "dose_gy", float(o["dose_gy"]) + step_gy, _range(o["dose_range_gy"]))
        self.set(oid, "priority", float(o["priority"]) / 1.15, _range(o["priority_range"]))

    def answer(self, done: bool, assessment: str) -> dict[str, Any]:
        changes = [{"objective_id": k, **v} for k, v in sorted(self.changes.items())]
        return {
            "assessment": assessment,
            "changes": changes,
            "additions": self.additions,
            "removals": [],
            "rationale": "; ".join(self.notes),
            "done": done,
        }


def _uppers(p: Prompt, structure: str) -> list[dict[str, Any]]:
    return [
        o
        for o in p.objectives
        if o["kind"] == "point" and o["structure"] == structure and o["operator"] == "upper"
    ]


def _oar_demand(e: Edits, d: Demand, scale: float) -> None:
    p = e.p
    point = d.point()
    uppers = _uppers(p, d.structure)
    step = 0.04 * p.rx_gy * scale * min(2.0, max(0.5, d.deficit))
    if point is None:
        for o in uppers:
            e.tighten_upper(o["id"], step, 1 + 0.3 * scale)
        return
    dose, volume = point

    def distance(o: dict[str, Any]) -> float:
        return (
            abs(float(o["dose_gy"]) - dose) / p.rx_gy + abs(float(o["volume_pct"]) - volume) / 100
        )

    near = [
        o
        for o in uppers
        if abs(float(o["volume_pct"]) - volume) <= 10
        and abs(float(o["dose_gy"]) - dose) <= 0.1 * p.rx_gy
    ]
    if not near:
        key = (d.structure, round(0.8 * volume, 1))
        if all((a["structure_id"], a["volume_pct"]) != key for a in e.additions):
            priority = max([float(o["priority"]) for o in uppers] or [60.0])
            e.additions.append(
                {
                    "kind": "point", "structure_id": d.structure, "operator": "upper",
                    "dose_gy": round(dose - 0.02 * p.rx_gy, 2), "volume_pct": key[1],
                    "priority": round(priority, 2),
                }
            )  # fmt: skip
            e.notes.append(f"{d.id}: new objective at the goal point of {d.structure}")
        return
    best = min(near, key=distance)
    e.tighten_upper(best["id"], step, 1 + 0.5 * scale)
    e.notes.append(f"{d.id}: push {best['id']}")


def _target_demand(e: Edits, d: Demand, scale: float) -> None:
    p = e.p
    targets = [o for o in p.objectives if p.is_target(o["structure"]) and o["kind"] == "point"]
    lowers = [o for o in targets if o["operator"] == "lower"]
    step = 0.02 * p.rx_gy * scale * min(2.0, max(0.5, d.deficit))
    if d.upper:  # a hot spot: the hot part down, the cold part up (normalization does the rest)
        for o in targets:
            if o["operator"] == "upper":
                e.tighten_upper(o["id"], step, 1 + 0.3 * scale)
        for o in lowers:
            e.raise_priority(o["id"], 1 + 0.2 * scale)
        e.notes.append(f"{d.id}: hot spot: lower the target maximum")
    else:
        for o in lowers:
            e.set(o["id"], "dose_gy", e.current(o["id"], "dose_gy") + 0.5 * step,
                  _range(o["dose_range_gy"]))  # fmt: skip
            e.raise_priority(o["id"], 1 + 0.3 * scale)
        e.notes.append(f"{d.id}: coverage: raise the lower objective")


def _body_demand(e: Edits, d: Demand, scale: float) -> None:
    for o in e.p.objectives:
        if o["kind"] == "nto":
            e.raise_priority(o["id"], 1 + 0.3 * scale)
    _target_demand(e, d, scale)


def decide(prompt_text: str) -> dict[str, Any]:
    """A ``propose_plan_edits`` input for the prompt (see the module docstring)."""
    p = Prompt(prompt_text)
    failing, slack = demands(p)
    if not failing:
        return {
            "assessment": "Every priority-1 and priority-2 goal is met and the score is full.",
            "changes": [], "additions": [], "removals": [],
            "rationale": "nothing left to improve", "done": True,
        }  # fmt: skip
    scale = _step_scale(p)
    e = Edits(p)
    for d in failing:
        if p.is_body(d.structure):
            _body_demand(e, d, scale)
        elif p.is_target(d.structure):
            _target_demand(e, d, scale)
        elif d.upper:
            _oar_demand(e, d, scale)
    if any(p.is_target(d.structure) or p.is_body(d.structure) for d in failing):
        failing_structures = {d.structure for d in failing}
        for o in p.objectives:
            s = o["structure"]
            if o["kind"] != "point" or o["operator"] != "upper" or p.is_target(s) or p.is_body(s):
                continue
            if s not in failing_structures and slack.get(s, 0.0) > 2.0:
                e.relax(o["id"], 0.02 * p.rx_gy * scale)
    if not e.changes and not e.additions:
        return {
            "assessment": "Goals fail but no objective can move further within its range.",
            "changes": [], "additions": [], "removals": [],
            "rationale": "nothing can move", "done": True,
        }  # fmt: skip
    names = ", ".join(str(d.id) for d in failing)
    return e.answer(False, f"Not yet met: {names}.")
