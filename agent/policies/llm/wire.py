"""Provider-neutral request and reply of one model call.

The policy builds an :class:`LlmRequest`; a provider (``providers/``) translates it into its
SDK's call and the SDK's answer into an :class:`LlmReply`. Assistant turns keep the
provider-native content (``provider_turn``) so that it can be sent back unchanged when a
tool exchange continues (Anthropic's thinking blocks must be returned verbatim).
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator

from rtplan_common.models import FrozenModel

NonNegInt = Annotated[int, Field(ge=0)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _PromptText(FrozenModel):
    """A model whose ``_multiline`` fields are prompt text: line feeds kept, other control
    characters removed, never cut (see :class:`rtplan_common.models.StrictModel`)."""


class ToolSpec(FrozenModel):
    """The one tool the model must call: name, description and a plain JSON schema
    (generated from a pydantic model; each provider adapts it to its strict subset)."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str
    input_schema: dict[str, JsonValue]


class SystemPart(_PromptText):
    """A block of the system prompt. ``cacheable`` marks the static prefix (role, protocol,
    knowledge card) for prompt caching where the provider supports it."""

    _multiline = frozenset({"text"})

    text: str
    cacheable: bool = False


class ImagePart(FrozenModel):
    """A PNG image (a dose plane) as base64, with no metadata beyond its media type.

    ``data_b64`` is checked to be base64 of a PNG and kept whole (free text is cut at the
    strict models' limit; an image is not text)."""

    media_type: Literal["image/png"] = "image/png"
    data_b64: Annotated[str, Field(min_length=1)]
    caption: str = ""

    @field_validator("*", mode="after")
    @classmethod
    def _clean_strings(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "data_b64":
            try:
                png = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"the image is not base64: {exc}") from exc
            if not png.startswith(PNG_SIGNATURE):
                raise ValueError("the image is not a PNG")
            return value
        return super()._clean_strings(value, info)


class ToolResult(_PromptText):
    """The answer to a tool call: ``is_error`` with the exact validation error on a repair."""

    _multiline = frozenset({"content"})

    call_id: str
    content: str
    is_error: bool = False


class Turn(_PromptText):
    """One conversation turn.

    A user turn has ``text`` (and optionally ``images`` or a ``tool_result``); an assistant
    turn replays a previous reply: ``provider_turn`` is the provider-native content as
    received (sent back unchanged), ``text`` a readable copy for logs.
    """

    _multiline = frozenset({"text"})

    role: Literal["user", "assistant"]
    text: str = ""
    images: list[ImagePart] = Field(default_factory=list)
    tool_result: ToolResult | None = None
    provider_turn: JsonValue = None


class LlmRequest(FrozenModel):
    """One model call: system prompt, conversation, the tool and the output limit."""

    system: list[SystemPart]
    turns: list[Turn]
    tool: ToolSpec
    max_output_tokens: Annotated[int, Field(ge=1, le=200_000)] = 4096


class ToolCall(FrozenModel):
    """A tool call as received: ``arguments_text`` is the raw JSON text (a provider that
    delivers parsed arguments serializes them back), parsed and validated by the policy."""

    call_id: str
    name: str
    arguments_text: str


class StopKind(StrEnum):
    """Why the model stopped, normalized across providers."""

    TOOL_USE = "tool_use"
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    REFUSAL = "refusal"
    OTHER = "other"


class TokenUsage(FrozenModel):
    """Tokens of one call (or a sum of calls) as reported by the server."""

    input_tokens: NonNegInt = 0
    output_tokens: NonNegInt = 0
    cached_input_tokens: NonNegInt = 0  # read from the prompt cache
    cache_write_tokens: NonNegInt = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class LlmReply(FrozenModel):
    """A model's answer, normalized."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    reasoning: str = ""  # thinking / reasoning text where the server returns it
    stop: StopKind = StopKind.OTHER
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str = ""
    request_id: str | None = None
    provider_turn: JsonValue = None  # the assistant content to send back unchanged
