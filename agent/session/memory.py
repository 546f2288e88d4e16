"""Short-term memory of a session: the last L iterations as (changes made -> metric deltas).

This is the cause-and-effect record that policies read: what was changed in the
objectives, and how each clinical goal and the score moved in response.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import Field

from agent.evaluation import Evaluation
from agent.session.records import IterationRecord
from esapi_bridge.dto import NormalTissueObjective, Objective, objective_key
from rtplan_common.models import FrozenModel, StrictModel

ChangeField = Literal["dose_gy", "volume_pct", "priority", "parameter_a", "added", "removed"]
_NUMERIC_FIELDS: tuple[ChangeField, ...] = ("dose_gy", "volume_pct", "priority", "parameter_a")


class ObjectiveChange(FrozenModel):
    """One field of one objective changed (or the objective added / removed)."""

    key: str
    structure_id: str | None
    field: ChangeField
    before: float | None = None
    after: float | None = None

    def describe(self) -> str:
        """A compact line, e.g. ``Rectum:point:upper:20 dose_gy 50 -> 46``."""
        if self.field in ("added", "removed"):
            return f"{self.key} {self.field}"
        return f"{self.key} {self.field} {self.before:g} -> {self.after:g}"


class GoalDelta(FrozenModel):
    """How one clinical goal moved between two evaluations (metric unit)."""

    goal_id: str
    structure_id: str
    metric: str
    priority: int
    value_before: float | None
    value_after: float | None
    margin_before: float | None
    margin_after: float | None
    met_before: bool
    met_after: bool

    @property
    def margin_delta(self) -> float | None:
        """Change of the signed margin (> 0: moved towards / further into meeting the goal)."""
        if self.margin_before is None or self.margin_after is None:
            return None
        return self.margin_after - self.margin_before

    @property
    def sign_changed(self) -> bool:
        """Whether the goal flipped between met and failed."""
        return self.met_before != self.met_after


class MemoryStep(StrictModel):
    """One remembered iteration: the changes made and their effect."""

    iteration: int
    changes: list[ObjectiveChange] = Field(default_factory=list)
    goal_deltas: list[GoalDelta] = Field(default_factory=list)
    score_before: float | None = None
    score_after: float | None = None

    @property
    def score_delta(self) -> float | None:
        """Score change caused by this step."""
        if self.score_before is None or self.score_after is None:
            return None
        return self.score_after - self.score_before

    def to_text(self) -> str:
        """Compact multi-line description (for prompts and logs)."""
        changes = "; ".join(c.describe() for c in self.changes) or "no change"
        moved = [
            f"{d.goal_id} margin {d.margin_before:+.2f} -> {d.margin_after:+.2f}"
            for d in self.goal_deltas
            if d.margin_delta is not None
            and d.margin_before is not None
            and d.margin_after is not None
            and abs(d.margin_delta) > 1e-6
        ]
        score = ""
        if self.score_before is not None and self.score_after is not None:
            score = f" score {self.score_before:g} -> {self.score_after:g}"
        return f"iter {self.iteration}: {changes} =>{score} " + ("; ".join(moved) or "no change")


def _numeric(objective: Objective, field: str) -> float | None:
    value = getattr(objective, field, None)
    return float(value) if isinstance(value, int | float) else None


def diff_objectives(
    before: Sequence[Objective], after: Sequence[Objective]
) -> list[ObjectiveChange]:
    """Field-level differences between two objective lists, matched by :func:`objective_key`."""
    old = {objective_key(o): o for o in before}
    new = {objective_key(o): o for o in after}
    changes: list[ObjectiveChange] = []
    for key, obj in new.items():
        structure = None if isinstance(obj, NormalTissueObjective) else obj.structure_id
        if key not in old:
            changes.append(ObjectiveChange(key=key, structure_id=structure, field="added"))
            continue
        for field in _NUMERIC_FIELDS:
            a, b = _numeric(old[key], field), _numeric(obj, field)
            if a is not None and b is not None and abs(a - b) > 1e-9:
                changes.append(
                    ObjectiveChange(key=key, structure_id=structure, field=field, before=a, after=b)
                )
    for key, obj in old.items():
        if key not in new:
            structure = None if isinstance(obj, NormalTissueObjective) else obj.structure_id
            changes.append(ObjectiveChange(key=key, structure_id=structure, field="removed"))
    return changes


def diff_evaluations(before: Evaluation, after: Evaluation) -> list[GoalDelta]:
    """Per-goal deltas between two evaluations of the same template (matched by goal id)."""
    old = {g.goal_id: g for g in before.goals}
    deltas: list[GoalDelta] = []
    for goal in after.goals:
        prev = old.get(goal.goal_id)
        deltas.append(
            GoalDelta(
                goal_id=goal.goal_id,
                structure_id=goal.structure_id,
                metric=goal.metric,
                priority=int(goal.priority),
                value_before=None if prev is None else prev.value,
                value_after=goal.value,
                margin_before=None if prev is None else prev.margin,
                margin_after=goal.margin,
                met_before=prev is not None and prev.margin is not None and prev.margin >= 0,
                met_after=goal.margin is not None and goal.margin >= 0,
            )
        )
    return deltas


def make_step(
    iteration: int,
    objectives_before: Sequence[Objective],
    objectives_after: Sequence[Objective],
    evaluation_before: Evaluation,
    evaluation_after: Evaluation,
) -> MemoryStep:
    """The memory step of one iteration from the objectives and evaluations around it."""
    return MemoryStep(
        iteration=iteration,
        changes=diff_objectives(objectives_before, objectives_after),
        goal_deltas=diff_evaluations(evaluation_before, evaluation_after),
        score_before=evaluation_before.score,
        score_after=evaluation_after.score,
    )


class Memory:
    """The last ``length`` steps, oldest first.

    Parameters
    ----------
    length
        How many steps to keep (L >= 1).
    """

    def __init__(self, length: int = 5) -> None:
        if length < 1:
            raise ValueError(f"memory length must be >= 1, got {length}")
        self.length = length
        self._steps: deque[MemoryStep] = deque(maxlen=length)

    def append(self, step: MemoryStep) -> None:
        """Remember one step (the oldest falls out beyond ``length``)."""
        self._steps.append(step)

    @property
    def steps(self) -> list[MemoryStep]:
        """The remembered steps, oldest first."""
        return list(self._steps)

    @property
    def last(self) -> MemoryStep | None:
        """The most recent step."""
        return self._steps[-1] if self._steps else None

    def copy(self) -> Memory:
        """An independent copy (what a policy is given: later steps do not leak into it)."""
        other = Memory(self.length)
        other._steps.extend(self._steps)
        return other

    def __len__(self) -> int:
        return len(self._steps)

    def changes_of(self, key: str) -> list[tuple[MemoryStep, ObjectiveChange]]:
        """Every remembered change of the objective ``key`` with its step, oldest first."""
        return [(s, c) for s in self._steps for c in s.changes if c.key == key]

    def goal_history(self, goal_id: str) -> list[GoalDelta]:
        """The remembered deltas of one goal, oldest first."""
        return [d for s in self._steps for d in s.goal_deltas if d.goal_id == goal_id]

    def to_text(self) -> str:
        """All remembered steps, one per line (for prompts)."""
        return "\n".join(s.to_text() for s in self._steps) or "(no history yet)"

    @classmethod
    def from_records(cls, records: Iterable[IterationRecord], length: int = 5) -> Memory:
        """Rebuild the memory from journaled iterations (resume)."""
        memory = cls(length)
        previous: IterationRecord | None = None
        for record in records:
            if previous is not None and previous.evaluation and record.evaluation:
                memory.append(
                    make_step(
                        record.iteration,
                        previous.applied_objectives,
                        record.applied_objectives,
                        previous.evaluation,
                        record.evaluation,
                    )
                )
            if record.evaluation is not None:
                previous = record
        return memory
