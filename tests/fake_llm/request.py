"""What the fake server received: the recorded HTTP request and the responder's view of it.

:class:`RecordedRequest` is every request as it arrived (exact body bytes). :class:`FakeRequest`
is what a responder reads: the API, the parsed body and helpers over it (the prompt text in
order, the tool names, the last tool result), computed from the body alone, as a real server
sees it. :func:`anthropic_problem` and :func:`openai_problem` are the checks the real
services make that matter to the planner (each returns the API's error message or None).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .replies import SIGNATURE_PREFIX, Reply, thinking_signature

Api = Literal["anthropic", "openai"]
JsonDict = dict[str, Any]
PROMPT_ROLES = ("system", "developer", "user", "tool")


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as received (credential header values redacted unless asked)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any | None  # the parsed body, None when it is not JSON


@dataclass(frozen=True)
class ToolResultSeen:
    """The last tool result of a conversation: its text, error flag (Anthropic) and call id."""

    content: str
    is_error: bool | None
    call_id: str | None


def _texts(content: Any) -> list[str]:
    """The text parts of a message content (a string or a list of blocks / parts)."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    out.append(part["text"])
                elif part.get("type") == "tool_result":
                    out.extend(_texts(part.get("content")))
    return out


@dataclass(frozen=True)
class FakeRequest:
    """The responder's view of one LLM call (``index``: 0-based count of LLM calls)."""

    api: Api
    flavour: str
    index: int
    body: JsonDict
    record: RecordedRequest = field(repr=False)

    @property
    def model(self) -> str:
        """The requested model."""
        return str(self.body.get("model", ""))

    @property
    def prompt_text(self) -> str:
        """All system, user and tool text of the request, in order, joined by blank lines."""
        parts: list[str] = []
        if self.api == "anthropic":
            parts.extend(_texts(self.body.get("system")))
        for message in self.body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") in PROMPT_ROLES:
                parts.extend(_texts(message.get("content")))
        return "\n\n".join(parts)

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools offered."""
        names: list[str] = []
        for tool in self.body.get("tools") or []:
            spec = tool.get("function", tool) if isinstance(tool, dict) else {}
            if isinstance(spec, dict) and isinstance(spec.get("name"), str):
                names.append(spec["name"])
        return names

    @property
    def forced_tool_name(self) -> str | None:
        """The tool a named ``tool_choice`` forces, if any."""
        choice = self.body.get("tool_choice")
        if not isinstance(choice, dict):
            return None
        if self.api == "anthropic":
            return str(choice["name"]) if choice.get("type") == "tool" else None
        function = choice.get("function")
        return str(function.get("name")) if isinstance(function, dict) else None

    @property
    def wants_json_schema(self) -> bool:
        """Whether the request asked for ``response_format`` json_schema (or json_object)."""
        fmt = self.body.get("response_format")
        return isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object")

    @property
    def thinking_enabled(self) -> bool:
        """Anthropic: ``thinking`` of type "enabled" or "adaptive"."""
        thinking = self.body.get("thinking")
        return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")

    @property
    def max_output_tokens(self) -> int | None:
        """``max_tokens`` (Anthropic) or ``max_completion_tokens`` / ``max_tokens`` (OpenAI)."""
        for key in ("max_tokens", "max_completion_tokens"):
            value = self.body.get(key)
            if isinstance(value, int):
                return value
        return None

    @property
    def last_tool_result(self) -> ToolResultSeen | None:
        """The last tool result in the conversation (Anthropic block or OpenAI tool turn)."""
        found: ToolResultSeen | None = None
        for message in self.body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            if message.get("role") == "tool":
                text = "\n".join(_texts(message.get("content")))
                found = ToolResultSeen(text, None, message.get("tool_call_id"))
            content = message.get("content")
            if message.get("role") == "user" and isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        text = "\n".join(_texts(block.get("content")))
                        error = bool(block.get("is_error", False))
                        found = ToolResultSeen(text, error, block.get("tool_use_id"))
        return found


Responder = Callable[[FakeRequest], Reply]
"""What decides each answer of the fake server."""


def anthropic_problem(body: JsonDict) -> str | None:
    """The 400 message the Messages API gives for this body, or None if it is accepted."""
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        return "This model does not support assistant message prefill."
    thinking = body.get("thinking")
    thinking_on = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    if thinking_on and body.get("temperature", 1) != 1:
        return "temperature may only be set to 1 when thinking is enabled."
    choice = body.get("tool_choice")
    if thinking_on and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024 or budget >= body["max_tokens"]:
            return "thinking.budget_tokens: must be >= 1024 and less than max_tokens"
    return _thinking_problem(messages, thinking_on)


def _thinking_problem(messages: list[Any], thinking_on: bool) -> str | None:
    last_assistant: list[Any] | None = None
    for n, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        if message.get("role") == "assistant":
            last_assistant = content
        for m, block in enumerate(content):
            if not isinstance(block, dict) or block.get("type") != "thinking":
                continue
            signature = block.get("signature")
            thought = block.get("thinking")
            if not isinstance(signature, str) or not signature.startswith(SIGNATURE_PREFIX):
                return f"messages.{n}.content.{m}: Invalid `signature` in `thinking` block"
            if not isinstance(thought, str) or signature != thinking_signature(thought):
                return f"messages.{n}.content.{m}: Invalid `signature` in `thinking` block"
    if thinking_on and last_assistant:
        has_tool_use = any(
            isinstance(b, dict) and b.get("type") == "tool_use" for b in last_assistant
        )
        first = last_assistant[0]
        starts_thinking = isinstance(first, dict) and first.get("type") in (
            "thinking",
            "redacted_thinking",
        )
        if has_tool_use and not starts_thinking:
            return (
                "Expected `thinking` or `redacted_thinking`, but found `tool_use`. When "
                "`thinking` is enabled, a final `assistant` message must start with a "
                "thinking block."
            )
    return None


def openai_problem(body: JsonDict) -> str | None:
    """The 400 message an OpenAI-compatible server gives for this body, or None."""
    for key in ("model", "messages"):
        if key not in body:
            return f"'{key}' is a required property"
    if not isinstance(body["messages"], list) or not body["messages"]:
        return "'messages' must be a non-empty array"
    return None
