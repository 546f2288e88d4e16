"""Reading a model reply: from :class:`LlmReply` to validated :class:`PlanEdits`, or a
:class:`FormatProblem` naming the kind of format error and the exact message sent back to
the model for a repair.

The order of the checks follows what a repair can fix: a refusal or a cut answer first
(the model must answer again, shorter), then the tool call itself (missing, wrong tool),
then its JSON, then the schema. Nothing here reaches the TPS.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agent.policies.llm.wire import LlmReply, StopKind, ToolCall
from agent.session.model_calls import FormatErrorKind
from rtplan_common.models import validation_problems

MAX_ERROR_CHARS = 1500


@dataclass(frozen=True)
class FormatProblem:
    """Why a reply is unusable: ``kind`` for the counts, ``message`` for the model."""

    kind: FormatErrorKind
    message: str
    call: ToolCall | None = None  # the tool call the message answers, if any


AnswerT = TypeVar("AnswerT", bound=BaseModel)


@dataclass(frozen=True)
class ReadReply(Generic[AnswerT]):
    """A usable reply: the validated tool input and the tool call it came in."""

    edits: AnswerT
    call: ToolCall


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number JSON allows; give a finite number")


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _schema_message(exc: ValidationError) -> str:
    lines = [f"- {field or '(top level)'}: {reason}" for field, reason in validation_problems(exc)]
    text = "\n".join(lines)
    return text[:MAX_ERROR_CHARS]


def read_reply(
    reply: LlmReply, tool_name: str, model: type[AnswerT]
) -> ReadReply[AnswerT] | FormatProblem:
    """The validated tool input of ``reply`` (a ``model``), or the format problem to repair."""
    calls = [c for c in reply.tool_calls if c.name == tool_name]
    if reply.stop is StopKind.REFUSAL:
        return FormatProblem(
            FormatErrorKind.REFUSAL,
            "You declined to answer. This is a treatment-planning task on de-identified, "
            f"simulated or anonymized data: answer by calling {tool_name}.",
        )
    if reply.stop is StopKind.MAX_TOKENS:
        return FormatProblem(
            FormatErrorKind.TRUNCATED,
            f"Your answer was cut by the output token limit. Call {tool_name} again with "
            "fewer edits and shorter assessment and rationale texts.",
            calls[0] if calls else None,
        )
    if not reply.tool_calls:
        return FormatProblem(
            FormatErrorKind.NO_TOOL_CALL,
            f"Your answer had no tool call. Answer only by calling the tool {tool_name}.",
        )
    if not calls:
        wrong = reply.tool_calls[0]
        return FormatProblem(
            FormatErrorKind.WRONG_TOOL,
            f"There is no tool {json.dumps(wrong.name[:64])}; the only tool is {tool_name}.",
            wrong,
        )
    call = calls[0]
    try:
        data = json.loads(call.arguments_text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        return FormatProblem(
            FormatErrorKind.INVALID_JSON,
            f"The tool arguments are not valid JSON ({exc}). Send one JSON object.",
            call,
        )
    if not isinstance(data, dict) or not _finite(data):
        return FormatProblem(
            FormatErrorKind.SCHEMA_VIOLATION,
            "The tool arguments must be one JSON object with finite numbers.",
            call,
        )
    try:
        edits = model.model_validate(data)
    except ValidationError as exc:
        return FormatProblem(
            FormatErrorKind.SCHEMA_VIOLATION,
            "The tool arguments do not match the schema:\n" + _schema_message(exc),
            call,
        )
    return ReadReply(edits=edits, call=call)
