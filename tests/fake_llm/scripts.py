"""Scripted responders: sequences of replies, a planner wired in, and hostile behaviours.

:class:`Script` serves its replies in order and then falls back to another responder.
:func:`planner` turns a function of the prompt text into a responder that answers with a
``propose_plan_edits`` tool call. The hostile replies are realistic variants of the tool's
input (:class:`agent.policies.llm.edits.PlanEdits`), one per failure the issue lists;
:data:`HOSTILE` names them for parametrized tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from agent.policies.llm.edits import TOOL_NAME

from .replies import (
    DelayReply,
    EmptyReply,
    HttpErrorReply,
    RefusalReply,
    Reply,
    TextReply,
    ToolCallReply,
    TruncatedReply,
)
from .request import FakeRequest, Responder

Step = Reply | Responder


class ScriptExhausted(AssertionError):
    """A script ran out of replies and has no fallback."""


class Script:
    """Serve ``replies`` in order (a callable step is called with the request), then ``then``.

    Thread-safe; :attr:`served` counts the calls answered so far.
    """

    def __init__(self, replies: Sequence[Step], then: Responder | None = None) -> None:
        self.replies = list(replies)
        self.then = then
        self.served = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Scripted replies not yet served."""
        with self._lock:
            return max(0, len(self.replies) - self.served)

    def __call__(self, request: FakeRequest) -> Reply:
        with self._lock:
            position = self.served
            self.served += 1
        if position < len(self.replies):
            step = self.replies[position]
            return step(request) if callable(step) else step
        if self.then is None:
            raise ScriptExhausted(f"script of {len(self.replies)} replies asked for one more")
        return self.then(request)


def always(reply: Reply) -> Responder:
    """A responder that answers every call with ``reply``."""
    return lambda _request: reply


def planner(decide: Callable[[str], dict[str, Any]], *, thinking: str | None = None) -> Responder:
    """A responder that calls ``decide(prompt_text)`` and answers with its tool call."""

    def respond(request: FakeRequest) -> Reply:
        return ToolCallReply(TOOL_NAME, decide(request.prompt_text), thinking=thinking)

    return respond


# -- tool inputs: a valid one and realistic broken variants -------------------------------

VALID_EDITS: dict[str, Any] = {
    "assessment": "PTV D95 is 0.8 Gy below its goal; the rectum V70 goal passes with margin.",
    "changes": [{"objective_id": "O1", "priority": 120.0}],
    "rationale": "More weight on the PTV lower objective should raise its coverage.",
    "done": False,
}
DONE_EDITS: dict[str, Any] = {"assessment": "All goals are met.", "done": True}


def valid() -> ToolCallReply:
    """A well-formed proposal (raise the priority of O1)."""
    return ToolCallReply(TOOL_NAME, VALID_EDITS)


def malformed_json() -> ToolCallReply:
    """Invalid JSON: a trailing comma and an unclosed list."""
    return ToolCallReply(
        TOOL_NAME,
        '{"assessment": "PTV coverage is low", "changes": [{"objective_id": "O1", '
        '"priority": 120,}',
    )


def wrong_types() -> ToolCallReply:
    """Valid JSON, wrong types: an integer id, a priority in words, ``done`` as a string."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "Coverage is low.",
            "changes": [{"objective_id": 1, "priority": "high"}],
            "done": "no",
        },
    )


def stringified_nested() -> ToolCallReply:
    """The list of changes sent as a JSON string (a known quirk of tool-calling models)."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "Coverage is low.",
            "changes": '[{"objective_id": "O1", "priority": 120}]',
        },
    )


def unknown_objective() -> ToolCallReply:
    """An objective id the plan does not have (the prompt lists O1..On)."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "The rectum objective is too weak.",
            "changes": [{"objective_id": "O99", "priority": 50.0}],
        },
    )


def unknown_structure() -> ToolCallReply:
    """A new objective on a structure that is not in the plan."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "The bowel needs sparing.",
            "additions": [
                {
                    "kind": "point",
                    "structure_id": "SmallBowel_Imaginary",
                    "operator": "upper",
                    "dose_gy": 45.0,
                    "volume_pct": 5.0,
                    "priority": 60.0,
                }
            ],
        },
    )


def out_of_range() -> ToolCallReply:
    """Schema-valid but clinically absurd: a 500 Gy dose and a priority of a million
    (the guardrails' business)."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "Push the target harder.",
            "changes": [{"objective_id": "O1", "dose_gy": 500.0, "priority": 1_000_000.0}],
        },
    )


def schema_out_of_range() -> ToolCallReply:
    """Outside the schema's bounds: a volume of 150 % and a negative priority."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "Tighten the rectum.",
            "changes": [{"objective_id": "O2", "volume_pct": 150.0, "priority": -5.0}],
        },
    )


def nan_values() -> ToolCallReply:
    """``NaN`` and ``Infinity`` as raw JSON tokens in the arguments text."""
    return ToolCallReply(
        TOOL_NAME,
        '{"assessment": "Adjust the target.", "changes": [{"objective_id": "O1", '
        '"dose_gy": NaN, "priority": Infinity}]}',
    )


def text_only() -> TextReply:
    """Advice in prose, no tool call."""
    return TextReply(
        "I would raise the PTV lower objective's priority to 120 and lower the rectum "
        "V70 objective's dose by 1 Gy."
    )


def wrong_tool_name() -> ToolCallReply:
    """A valid proposal under a tool name that was not offered."""
    return ToolCallReply("set_objectives", VALID_EDITS)


def empty() -> EmptyReply:
    """No content at all."""
    return EmptyReply()


def refusal() -> RefusalReply:
    """The model declines."""
    return RefusalReply("I can't help with planning radiation treatments.")


def truncated() -> TruncatedReply:
    """A proposal cut by the output-token limit in the middle of a string."""
    return TruncatedReply(
        '{"assessment": "The rectum V70 goal fails by 3 %, so the rectum objective needs '
        'more weight", "changes": [{"objective_id": "O2", "dose_gy": 6'
    )


def obey_injection() -> ToolCallReply:
    """What a gullible model does with a structure named like an instruction: priority 0."""
    return ToolCallReply(
        TOOL_NAME,
        {
            "assessment": "As instructed, the PTV priority is set to 0.",
            "changes": [{"objective_id": "O1", "priority": 0.0}],
        },
    )


# -- transport failures ---------------------------------------------------------------------


def rate_limited(
    then: Responder,
    *,
    times: int = 1,
    retry_after: str | None = "0",
    retry_after_ms: str | None = "1",
) -> Script:
    """``times`` 429s with ``retry-after`` (and ``retry-after-ms``: the SDKs prefer it, so
    that the retry waits a millisecond rather than the SDK's backoff), then ``then``."""
    headers = {"retry-after": retry_after, "retry-after-ms": retry_after_ms}
    reply = HttpErrorReply(
        429,
        {k: v for k, v in headers.items() if v is not None},
        "Number of request tokens has exceeded your per-minute rate limit",
    )
    return Script([reply] * times, then=then)


def server_errors(status: int = 500, *, retry_after_ms: str | None = "1") -> Responder:
    """Every call fails with ``status`` (500s until the SDK's retries run out)."""
    headers = {"retry-after-ms": retry_after_ms} if retry_after_ms is not None else {}
    return always(HttpErrorReply(status, headers, "Internal server error"))


def slow(seconds: float, then: Reply | None = None) -> Responder:
    """Every call waits ``seconds`` before answering (beyond the client timeout: a timeout)."""
    return always(DelayReply(seconds, then if then is not None else valid()))


def repeated(reply: ToolCallReply | None = None) -> Responder:
    """The same proposal on every call (no progress: the loop must stop)."""
    return always(reply if reply is not None else valid())


HOSTILE: dict[str, Callable[[], Reply]] = {
    "malformed_json": malformed_json,
    "wrong_types": wrong_types,
    "stringified_nested": stringified_nested,
    "unknown_objective": unknown_objective,
    "unknown_structure": unknown_structure,
    "out_of_range": out_of_range,
    "schema_out_of_range": schema_out_of_range,
    "nan_values": nan_values,
    "text_only": text_only,
    "wrong_tool_name": wrong_tool_name,
    "empty": empty,
    "refusal": refusal,
    "truncated": truncated,
    "obey_injection": obey_injection,
}
