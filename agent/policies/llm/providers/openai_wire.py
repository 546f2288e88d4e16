"""Translation between the provider-neutral wire (:mod:`agent.policies.llm.wire`) and the
Chat Completions API of OpenAI-compatible servers.

Requests: one system message (several confuse some local chat templates), user, assistant
and ``tool`` messages, images as data-URL ``image_url`` parts; a tool result's ``is_error``
becomes an ``ERROR:`` prefix (the API has no such field). Replies: ``function.arguments`` is
kept as the raw text it is; reasoning is read from ``reasoning_content`` / ``reasoning`` (not
standard, in ``model_extra``) or a leading ``<think>`` block; in JSON-content mode (Ollama)
a JSON message content is the tool call, with call id :data:`JSON_CONTENT_CALL_PREFIX` plus
the completion id (deterministic on replay), and its result goes back as user text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent.policies.llm.errors import LlmBadResponse
from agent.policies.llm.providers.schema import adapt_schema
from agent.policies.llm.providers.tokens import usage_count
from agent.policies.llm.wire import (
    LlmReply,
    LlmRequest,
    StopKind,
    TokenUsage,
    ToolCall,
    ToolSpec,
    Turn,
)

#: Call ids of tool calls read from JSON content (Ollama): their results go back as user text.
JSON_CONTENT_CALL_PREFIX = "json-content-"

_STOP = {
    "tool_calls": StopKind.TOOL_USE,
    "function_call": StopKind.TOOL_USE,
    "stop": StopKind.END_TURN,
    "length": StopKind.MAX_TOKENS,
    "content_filter": StopKind.REFUSAL,
}
_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def tool_definition(tool: ToolSpec) -> dict[str, Any]:
    """The tool as sent: a function with the openai-strict schema and ``strict: true``."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": adapt_schema(tool.input_schema, "openai-strict"),
            "strict": True,
        },
    }


def json_hint(tool: ToolSpec) -> str:
    """The system line that asks for JSON content instead of a tool call (Ollama)."""
    return (
        f"Answer with one JSON object only: the input of the tool {tool.name} "
        f"({tool.description}), matching the given JSON schema."
    )


def _user_messages(turn: Turn) -> list[dict[str, Any]]:
    """The user turn as messages: a tool result first, then images and text."""
    out: list[dict[str, Any]] = []
    result = turn.tool_result
    if result is not None:
        text = f"ERROR: {result.content}" if result.is_error else result.content
        if result.call_id.startswith(JSON_CONTENT_CALL_PREFIX):
            out.append({"role": "user", "content": text})
        else:
            out.append({"role": "tool", "tool_call_id": result.call_id, "content": text})
    if turn.images:
        parts: list[dict[str, Any]] = []
        for image in turn.images:
            if image.caption:
                parts.append({"type": "text", "text": image.caption})
            url = f"data:{image.media_type};base64,{image.data_b64}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        if turn.text:
            parts.append({"type": "text", "text": turn.text})
        out.append({"role": "user", "content": parts})
    elif turn.text:
        out.append({"role": "user", "content": turn.text})
    if not out:
        raise ValueError("a user turn needs text, images or a tool result")
    return out


def chat_messages(request: LlmRequest, *, json_content: bool) -> list[dict[str, Any]]:
    """The ``messages`` of ``request`` (``json_content``: with the JSON-answer system line)."""
    system = [part.text for part in request.system]
    if json_content:
        system.append(json_hint(request.tool))
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": "\n\n".join(system)})
    for turn in request.turns:
        if turn.role == "user":
            messages.extend(_user_messages(turn))
        elif isinstance(turn.provider_turn, dict):
            messages.append(dict(turn.provider_turn))
        elif turn.text:
            messages.append({"role": "assistant", "content": turn.text})
        else:
            raise ValueError("an assistant turn needs provider_turn (a message) or text")
    return messages


def reply_from_completion(completion: object, tool_name: str, *, json_content: bool) -> LlmReply:
    """The normalized reply of an SDK ``ChatCompletion`` (anything else:
    :class:`LlmBadResponse`)."""
    choices = getattr(completion, "choices", None)
    first = choices[0] if isinstance(choices, list) and choices else None
    message = getattr(first, "message", None)
    if message is None:
        raise LlmBadResponse(
            "openai-compatible: the server's answer is not a chat completion; check that the "
            "base URL points at an OpenAI-compatible API (usually ending in /v1)"
        )
    extra = getattr(message, "model_extra", None) or {}
    content = getattr(message, "content", None)
    content = content if isinstance(content, str) else ""
    raw_calls = getattr(message, "tool_calls", None)
    raw_calls = raw_calls if isinstance(raw_calls, list) else []
    reasoning = next(
        (extra[k] for k in ("reasoning_content", "reasoning") if isinstance(extra.get(k), str)),
        "",
    )
    think = _THINK.match(content)
    if think:
        reasoning = "\n\n".join(r for r in (reasoning, think.group(1).strip()) if r)
        content = content[think.end() :]
    calls = [_tool_call(i, call) for i, call in enumerate(raw_calls)]
    finish = str(getattr(first, "finish_reason", "") or "")
    stop = _STOP.get(finish, StopKind.OTHER)
    text = content
    if not calls and json_content and content.strip() and stop is StopKind.END_TURN:
        ident = str(getattr(completion, "id", "") or "0")
        calls = [
            ToolCall(
                call_id=f"{JSON_CONTENT_CALL_PREFIX}{ident}",
                name=tool_name,
                arguments_text=content.strip(),
            )
        ]
        stop, text = StopKind.TOOL_USE, ""
    refusal = getattr(message, "refusal", None)
    if isinstance(refusal, str) and refusal:
        stop, text = StopKind.REFUSAL, text or refusal
    turn: dict[str, Any] = {"role": "assistant", "content": content}
    if raw_calls:
        turn["tool_calls"] = [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_text},
            }
            for c in calls
        ]
    usage = getattr(completion, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    return LlmReply(
        text=text,
        tool_calls=calls,
        reasoning=reasoning,
        stop=stop,
        usage=TokenUsage(
            input_tokens=usage_count(usage, "prompt_tokens"),
            output_tokens=usage_count(usage, "completion_tokens"),
            cached_input_tokens=usage_count(details, "cached_tokens"),
            cache_write_tokens=usage_count(details, "cache_write_tokens"),
        ),
        model=str(getattr(completion, "model", "") or ""),
        request_id=getattr(completion, "_request_id", None),
        provider_turn=turn,
    )


def _tool_call(index: int, call: object) -> ToolCall:
    function = getattr(call, "function", None)
    name = getattr(function, "name", None)
    if not isinstance(name, str):
        raise LlmBadResponse("openai-compatible: a tool call without a function name")
    arguments = getattr(function, "arguments", None)
    if not isinstance(arguments, str):  # some servers send an object: serialize it once
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id = getattr(call, "id", None)
    return ToolCall(
        call_id=call_id if isinstance(call_id, str) and call_id else f"call-{index}",
        name=name,
        arguments_text=arguments,
    )


__all__ = [
    "JSON_CONTENT_CALL_PREFIX",
    "chat_messages",
    "json_hint",
    "reply_from_completion",
    "tool_definition",
]
