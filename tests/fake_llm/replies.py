"""What the fake server answers: reply kinds, and their JSON for each API.

A responder returns one :data:`Reply`; the server turns it into an Anthropic Messages body
(:func:`anthropic_message`) or an OpenAI Chat Completions body (:func:`openai_completion`)
with the field names and values the real services use, so that the real SDK clients parse
them into their own types. Error bodies follow each API's error shape
(:func:`anthropic_error`, :func:`openai_error`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import from_json

from agent.policies.llm.edits import TOOL_NAME

JsonDict = dict[str, Any]
SIGNATURE_PREFIX = "fake-sig-"


@dataclass(frozen=True)
class ToolCallReply:
    """A call of tool ``name``; ``arguments`` as a dict or as raw text (maybe malformed).

    ``thinking`` adds a reasoning block before the call (Anthropic: a ``thinking`` block
    with a ``signature``; OpenAI-compatible servers: their non-standard reasoning field),
    ``text`` a text block before it.
    """

    name: str
    arguments: JsonDict | str
    thinking: str | None = None
    text: str = ""


@dataclass(frozen=True)
class TextReply:
    """A plain text answer, no tool call."""

    text: str
    thinking: str | None = None


@dataclass(frozen=True)
class RefusalReply:
    """A refusal: Anthropic ``stop_reason`` "refusal"; OpenAI ``message.refusal``."""

    text: str = "I can't help with that request."
    finish_reason: Literal["stop", "content_filter"] = "stop"  # OpenAI side


@dataclass(frozen=True)
class TruncatedReply:
    """A tool call cut by the output-token limit: ``partial_arguments`` is the text so far.

    Anthropic: ``stop_reason`` "max_tokens" with the ``tool_use`` block holding what a
    partial JSON parse of the text gives (as the SDK's own streaming accumulator does);
    OpenAI: ``finish_reason`` "length" with the raw partial arguments text.
    """

    partial_arguments: str
    name: str = TOOL_NAME


@dataclass(frozen=True)
class EmptyReply:
    """No content at all: no Anthropic content blocks; OpenAI ``content`` "" (or None)."""

    openai_content: str | None = ""


@dataclass(frozen=True)
class HttpErrorReply:
    """An HTTP error; ``body`` None gives the API's error JSON with ``message``."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = "fake server error"
    body: JsonDict | bytes | None = None


@dataclass(frozen=True)
class DelayReply:
    """Wait ``seconds`` (interrupted when the server stops), then answer ``then``."""

    seconds: float
    then: Reply


@dataclass(frozen=True)
class RawReply:
    """Exactly these bytes with this status and content type (malformed bodies)."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


Reply = (
    ToolCallReply
    | TextReply
    | RefusalReply
    | TruncatedReply
    | EmptyReply
    | HttpErrorReply
    | DelayReply
    | RawReply
)
ContentReply = ToolCallReply | TextReply | RefusalReply | TruncatedReply | EmptyReply


@dataclass(frozen=True)
class ReplyContext:
    """What a body builder needs besides the reply: ids, model, usage and flavour facts."""

    message_id: str
    call_id: str
    model: str
    input_tokens: int
    created: int = 1_700_000_000
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    openai_cached_tokens: int | None = None  # None: no prompt_tokens_details (Ollama)
    max_tokens: int | None = None
    forced_tool: bool = False  # OpenAI: a named tool_choice was honoured
    tools_as_text: bool = False  # Ollama: tools ignored, a tool call becomes content
    json_response_format: bool = False  # Ollama: the request asked for a JSON schema
    reasoning_field: str | None = None  # OpenAI-compatible: where thinking goes


def thinking_signature(thinking: str) -> str:
    """The deterministic signature of a thinking block (checked when it comes back)."""
    return SIGNATURE_PREFIX + hashlib.sha256(thinking.encode()).hexdigest()[:40]


def arguments_text(arguments: JsonDict | str) -> str:
    """Raw arguments text: a dict serialized (non-finite floats as ``NaN`` tokens)."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def anthropic_input(arguments: JsonDict | str) -> JsonDict:
    """A ``tool_use`` block's ``input``: Anthropic always sends an object, so raw text is
    parsed (``NaN`` allowed), else parsed partially (as the SDK does), else ``{}``."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments)
    except ValueError:
        try:
            value = from_json(arguments, allow_partial=True)
        except ValueError:
            value = {}
    return value if isinstance(value, dict) else {}


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text.encode()) / 4))


def output_tokens(reply: ContentReply) -> int:
    """Deterministic output tokens of a reply (about 4 bytes a token, at least 1)."""
    if isinstance(reply, ToolCallReply):
        return _tokens(reply.text + (reply.thinking or "") + reply.name) + _tokens(
            arguments_text(reply.arguments)
        )
    if isinstance(reply, TextReply):
        return _tokens(reply.text + (reply.thinking or ""))
    if isinstance(reply, RefusalReply):
        return _tokens(reply.text)
    if isinstance(reply, TruncatedReply):
        return _tokens(reply.partial_arguments)
    return 1


def _anthropic_blocks(reply: ContentReply, ctx: ReplyContext) -> list[JsonDict]:
    blocks: list[JsonDict] = []
    thinking = reply.thinking if isinstance(reply, ToolCallReply | TextReply) else None
    if thinking is not None:
        blocks.append(
            {"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking)}
        )
    if isinstance(reply, ToolCallReply):
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        blocks.append(
            {
                "type": "tool_use",
                "id": ctx.call_id,
                "name": reply.name,
                "input": anthropic_input(reply.arguments),
            }
        )
    elif isinstance(reply, TruncatedReply):
        blocks.append(
            {
                "type": "tool_use",
                "id": ctx.call_id,
                "name": reply.name,
                "input": anthropic_input(reply.partial_arguments),
            }
        )
    elif isinstance(reply, TextReply | RefusalReply) and reply.text:
        blocks.append({"type": "text", "text": reply.text})
    return blocks


_ANTHROPIC_STOP: dict[type, str] = {
    ToolCallReply: "tool_use",
    TextReply: "end_turn",
    RefusalReply: "refusal",
    TruncatedReply: "max_tokens",
    EmptyReply: "end_turn",
}


def anthropic_message(reply: ContentReply, ctx: ReplyContext) -> JsonDict:
    """The Messages API body (``type`` "message") for ``reply``."""
    out_tokens = output_tokens(reply)
    if isinstance(reply, TruncatedReply) and ctx.max_tokens is not None:
        out_tokens = ctx.max_tokens
    body: JsonDict = {
        "id": ctx.message_id,
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": _anthropic_blocks(reply, ctx),
        "stop_reason": _ANTHROPIC_STOP[type(reply)],
        "stop_sequence": None,
        "usage": {
            "input_tokens": ctx.input_tokens,
            "output_tokens": out_tokens,
            "cache_creation_input_tokens": ctx.cache_write_tokens,
            "cache_read_input_tokens": ctx.cache_read_tokens,
            "service_tier": "standard",
        },
    }
    if isinstance(reply, RefusalReply):
        body["stop_details"] = {"type": "refusal", "category": None, "explanation": reply.text}
    return body


def _tool_as_content(reply: ToolCallReply | TruncatedReply, ctx: ReplyContext) -> str:
    raw = (
        arguments_text(reply.arguments)
        if isinstance(reply, ToolCallReply)
        else reply.partial_arguments
    )
    if ctx.json_response_format:
        return raw
    return f"Here are the changes I propose:\n```json\n{raw}\n```"


def _openai_message(reply: ContentReply, ctx: ReplyContext) -> tuple[JsonDict, str]:
    message: JsonDict = {"role": "assistant", "content": None, "refusal": None}
    finish = "stop"
    if isinstance(reply, ToolCallReply | TruncatedReply):
        if isinstance(reply, TruncatedReply):
            finish, raw = "length", reply.partial_arguments
        else:
            finish, raw = (
                ("stop" if ctx.forced_tool else "tool_calls"),
                arguments_text(reply.arguments),
            )
        if ctx.tools_as_text:
            message["content"] = _tool_as_content(reply, ctx)
            finish = "length" if isinstance(reply, TruncatedReply) else "stop"
        else:
            message["content"] = (reply.text or None) if isinstance(reply, ToolCallReply) else None
            message["tool_calls"] = [
                {
                    "id": ctx.call_id,
                    "type": "function",
                    "function": {"name": reply.name, "arguments": raw},
                }
            ]
    elif isinstance(reply, TextReply):
        message["content"] = reply.text
    elif isinstance(reply, RefusalReply):
        message["refusal"] = reply.text
        finish = reply.finish_reason
    else:
        message["content"] = reply.openai_content
    thinking = reply.thinking if isinstance(reply, ToolCallReply | TextReply) else None
    if thinking is not None and ctx.reasoning_field is not None:
        message[ctx.reasoning_field] = thinking
    return message, finish


def openai_completion(reply: ContentReply, ctx: ReplyContext) -> JsonDict:
    """The Chat Completions body (``object`` "chat.completion") for ``reply``."""
    message, finish = _openai_message(reply, ctx)
    completion = output_tokens(reply)
    if finish == "length" and ctx.max_tokens is not None:
        completion = ctx.max_tokens
    usage: JsonDict = {
        "prompt_tokens": ctx.input_tokens,
        "completion_tokens": completion,
        "total_tokens": ctx.input_tokens + completion,
    }
    if ctx.openai_cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": ctx.openai_cached_tokens}
    return {
        "id": ctx.message_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
        "system_fingerprint": "fp_fake",
    }


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
}


def anthropic_error(status: int, message: str, request_id: str) -> JsonDict:
    """Anthropic's error body: ``{"type": "error", "error": {type, message}, request_id}``."""
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def openai_error(status: int, message: str) -> JsonDict:
    """OpenAI's error body: ``{"error": {message, type, param, code}}``."""
    kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
