"""Translation between the provider-neutral wire (:mod:`agent.policies.llm.wire`) and the
Anthropic Messages API.

Requests: a user turn is its tool result first (the API wants ``tool_result`` blocks first),
then each image (base64 block, its caption as text before it), then the text; an assistant
turn is its ``provider_turn`` exactly as received (thinking blocks and signatures intact).
Replies: ``tool_use`` input is serialized once to ``arguments_text``; thinking text goes to
``reasoning`` (``redacted_thinking``: :data:`REDACTED_THINKING_NOTE`); ``provider_turn`` is
the content blocks as JSON, as they must be sent back; ``input_tokens`` is the whole prompt
(uncached + cache read + cache write).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from agent.policies.llm.errors import LlmBadResponse
from agent.policies.llm.providers.schema import adapt_schema
from agent.policies.llm.providers.tokens import usage_count
from agent.policies.llm.wire import LlmReply, StopKind, TokenUsage, ToolCall, ToolSpec, Turn

REDACTED_THINKING_NOTE = "[redacted thinking]"

_STOP = {
    "tool_use": StopKind.TOOL_USE,
    "end_turn": StopKind.END_TURN,
    "max_tokens": StopKind.MAX_TOKENS,
    "model_context_window_exceeded": StopKind.MAX_TOKENS,  # cut by a limit, too
    "refusal": StopKind.REFUSAL,
}


def tool_definition(tool: ToolSpec) -> dict[str, Any]:
    """The tool as sent: the anthropic-strict schema with ``strict: true``."""
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": adapt_schema(tool.input_schema, "anthropic-strict"),
        "strict": True,
    }


def user_content(turn: Turn) -> list[dict[str, Any]]:
    """The content blocks of a user turn."""
    blocks: list[dict[str, Any]] = []
    if turn.tool_result is not None:  # tool results come first in a user turn
        result = turn.tool_result
        blocks.append(
            {
                "type": "tool_result",
                "tool_use_id": result.call_id,
                "content": result.content,
                "is_error": result.is_error,
            }
        )
    for image in turn.images:
        if image.caption:
            blocks.append({"type": "text", "text": image.caption})
        source = {"type": "base64", "media_type": image.media_type, "data": image.data_b64}
        blocks.append({"type": "image", "source": source})
    if turn.text:
        blocks.append({"type": "text", "text": turn.text})
    if not blocks:
        raise ValueError("a user turn needs text, images or a tool result")
    return blocks


def assistant_content(turn: Turn) -> list[Any]:
    """The content of an assistant turn: ``provider_turn`` as received, else its text."""
    if isinstance(turn.provider_turn, list):
        return list(turn.provider_turn)  # as received: thinking blocks and signatures intact
    if turn.text:
        return [{"type": "text", "text": turn.text}]
    raise ValueError("an assistant turn needs provider_turn (a content list) or text")


def reply_from_message(message: object) -> LlmReply:
    """The normalized reply of an SDK ``Message`` (a non-message answer:
    :class:`LlmBadResponse`)."""
    content = getattr(message, "content", None)
    if not isinstance(content, list):
        raise LlmBadResponse(
            "anthropic: the server's answer is not a Messages API message; check that "
            "the base URL points at the Anthropic API"
        )
    blocks = [_as_dict(block) for block in content]
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            reasoning.append(str(block.get("thinking", "")))
        elif kind == "redacted_thinking":
            reasoning.append(REDACTED_THINKING_NOTE)
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    usage = getattr(message, "usage", None)
    fresh = usage_count(usage, "input_tokens")
    read = usage_count(usage, "cache_read_input_tokens")
    written = usage_count(usage, "cache_creation_input_tokens")
    stop_reason = getattr(message, "stop_reason", None)
    return LlmReply(
        text="\n".join(t for t in texts if t),
        tool_calls=calls,
        reasoning="\n\n".join(reasoning),
        stop=_STOP.get(str(stop_reason), StopKind.OTHER),
        usage=TokenUsage(
            input_tokens=fresh + read + written,
            output_tokens=usage_count(usage, "output_tokens"),
            cached_input_tokens=read,
            cache_write_tokens=written,
        ),
        model=str(getattr(message, "model", "") or ""),
        request_id=getattr(message, "_request_id", None),
        provider_turn=_finite_json(blocks),
    )


def _finite_json(value: Any) -> Any:
    """``value`` with non-finite numbers written as strings: a tool input holding NaN (the
    real API never sends one; a model may) cannot be journaled or sent back as JSON. The
    tool call's ``arguments_text`` keeps the NaN, so the policy counts and repairs it."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def _as_dict(block: object) -> dict[str, Any]:
    if isinstance(block, dict):
        return dict(block)
    dump = getattr(block, "model_dump", None)
    if dump is None:
        raise LlmBadResponse("anthropic: a content block of the answer is not an object")
    data = dump(mode="json", exclude_none=True)
    if isinstance(data, dict) and data.get("type") == "tool_use":
        data["input"] = getattr(block, "input", data.get("input"))  # nulls kept as sent
    return dict(data)


def _tool_call(block: Mapping[str, Any]) -> ToolCall:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise LlmBadResponse("anthropic: a tool_use block without id or name")
    return ToolCall(
        call_id=call_id,
        name=name,
        arguments_text=json.dumps(block.get("input"), ensure_ascii=False),
    )


__all__ = [
    "REDACTED_THINKING_NOTE",
    "assistant_content",
    "reply_from_message",
    "tool_definition",
    "user_content",
]
