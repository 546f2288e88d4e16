"""What the model answers: a list of edits to the current objectives, as one tool call.

The prompt lists the current objectives with ids ``O1``, ``O2``, ... (their order in the
plan); the model changes, adds or removes objectives by id, so that it never has to copy
the whole list. :func:`apply_edits` turns the edits into the complete objective list the
loop expects. Numeric bounds are the guardrails' business, not the schema's: the models
here only refuse what cannot be meant (NaN, negative doses, unknown ids, an edit that
changes nothing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, model_validator

from esapi_bridge.dto import (
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
)
from rtplan_common.models import StrictModel

TOOL_NAME = "propose_plan_edits"
TOOL_DESCRIPTION = (
    "Propose the next changes to the plan's optimization objectives (by their ids O1, O2, ...), "
    "or set done=true when the plan should be accepted as it is."
)
OBJECTIVE_ID = re.compile(r"^O([1-9][0-9]{0,2})$")
MAX_TEXT = 4000


def objective_id(index: int) -> str:
    """The prompt's id of the objective at ``index`` (0-based) of the current list."""
    return f"O{index + 1}"


class ObjectiveChange(StrictModel):
    """Change the dose, volume or priority of one existing objective."""

    objective_id: Annotated[str, Field(pattern=OBJECTIVE_ID.pattern)]
    dose_gy: Annotated[float, Field(ge=0)] | None = None
    volume_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    priority: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ObjectiveChange:
        if self.dose_gy is None and self.volume_pct is None and self.priority is None:
            raise ValueError(f"{self.objective_id}: give dose_gy, volume_pct or priority")
        return self


class NewObjective(StrictModel):
    """A new point (DVH) or mean-dose objective on a plan structure."""

    kind: Literal["point", "mean"]
    structure_id: Annotated[str, Field(min_length=1, max_length=64)]
    operator: Literal["upper", "lower"] = "upper"
    dose_gy: Annotated[float, Field(ge=0)]
    volume_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    priority: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _point_has_volume(self) -> NewObjective:
        if self.kind == "point" and self.volume_pct is None:
            raise ValueError("a point objective needs volume_pct")
        if self.kind == "mean" and self.operator != "upper":
            raise ValueError("a mean-dose objective is an upper objective")
        return self


class PlanEdits(StrictModel):
    """The tool's input: the model's assessment, its edits and whether it is done."""

    assessment: Annotated[str, Field(max_length=MAX_TEXT)] = Field(
        description="One or two sentences: which goals fail or are at risk and why."
    )
    changes: list[ObjectiveChange] = Field(default_factory=list, max_length=40)
    additions: list[NewObjective] = Field(default_factory=list, max_length=5)
    removals: list[Annotated[str, Field(pattern=OBJECTIVE_ID.pattern)]] = Field(
        default_factory=list, max_length=10
    )
    rationale: Annotated[str, Field(max_length=MAX_TEXT)] = Field(
        default="", description="Why these edits should improve the failing goals."
    )
    done: bool = Field(
        default=False, description="true: accept the current plan, no further changes."
    )
    simulate_only: bool = Field(
        default=False,
        description=(
            "true: run a look-ahead trial of these edits and report its goals, without "
            "committing them (only while trials are left in this iteration)."
        ),
    )

    @model_validator(mode="after")
    def _not_empty(self) -> PlanEdits:
        if not self.done and not (self.changes or self.additions or self.removals):
            raise ValueError("no edits: give changes, additions or removals, or set done=true")
        ids = [c.objective_id for c in self.changes] + list(self.removals)
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"each objective id at most once per answer: {', '.join(repeated)}")
        return self


ObjectiveT = TypeVar("ObjectiveT", bound=BaseModel)


class EditError(ValueError):
    """The edits refer to an objective that does not exist or cannot take the change."""


def _changed(objective: Objective, change: ObjectiveChange) -> Objective:
    update: dict[str, float] = {}
    if change.priority is not None:
        update["priority"] = change.priority
    if change.dose_gy is not None:
        if isinstance(objective, NormalTissueObjective):
            raise EditError(f"{change.objective_id} is the normal tissue objective: no dose_gy")
        update["dose_gy"] = change.dose_gy
    if change.volume_pct is not None:
        if not isinstance(objective, PointObjective):
            raise EditError(f"{change.objective_id} is not a point objective: no volume_pct")
        update["volume_pct"] = change.volume_pct
    return _build(type(objective), objective.model_dump() | update)


def _build(cls: type[ObjectiveT], data: dict[str, Any]) -> ObjectiveT:
    """An objective from ``data``; values outside the objective's own bounds (a priority of a
    million) are kept unvalidated so that the guardrails reject the proposal and say why
    (a readable but unsafe proposal is the guardrails' business, not a format error)."""
    try:
        return cls.model_validate(data)
    except ValidationError:
        return cls.model_construct(**data)


def _new(addition: NewObjective) -> Objective:
    if addition.kind == "mean":
        data: dict[str, Any] = {"kind": "mean", "operator": ObjectiveOperator.UPPER}
        return _build(
            MeanDoseObjective,
            data
            | {
                "structure_id": addition.structure_id,
                "dose_gy": addition.dose_gy,
                "priority": addition.priority,
            },
        )
    assert addition.volume_pct is not None  # checked by the model
    return _build(
        PointObjective,
        {
            "kind": "point",
            "structure_id": addition.structure_id,
            "operator": ObjectiveOperator(addition.operator),
            "dose_gy": addition.dose_gy,
            "volume_pct": addition.volume_pct,
            "priority": addition.priority,
        },
    )


def apply_edits(objectives: Sequence[Objective], edits: PlanEdits) -> list[Objective]:
    """The complete objective list after ``edits`` (ids refer to ``objectives``' order).

    Raises
    ------
    EditError
        An id beyond the list, or a field the objective does not have.
    """
    out: list[Objective | None] = list(objectives)
    known = {objective_id(i) for i in range(len(objectives))}
    for ref in [c.objective_id for c in edits.changes] + list(edits.removals):
        if ref not in known:
            raise EditError(f"unknown objective id {ref}: the plan has O1..O{len(objectives)}")
    for change in edits.changes:
        index = int(change.objective_id[1:]) - 1
        current = out[index]
        assert current is not None
        out[index] = _changed(current, change)
    for ref in edits.removals:
        out[int(ref[1:]) - 1] = None
    kept = [o for o in out if o is not None]
    return kept + [_new(a) for a in edits.additions]
