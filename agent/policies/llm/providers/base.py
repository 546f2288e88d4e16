"""The provider interface: one small Protocol over each official SDK.

A provider is built from :class:`ProviderSettings` (recorded in the session config; never a
key: keys come from the environment variable the settings name) and an optional injected
``http_client`` (tests point it at a loopback fake server or a ``MockTransport``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Protocol, runtime_checkable

from pydantic import Field

from agent.policies.llm.wire import LlmReply, LlmRequest
from rtplan_common.models import FrozenModel


class Locality(StrEnum):
    """Where a provider's server is: the data-egress rule depends on it."""

    LOCAL = "local"  # loopback
    ON_PREMISE = "on-premise"  # a host the configuration lists as on-premise
    CLOUD = "cloud"  # anything else: de-identified plan data leaves the workstation


class ProviderSettings(FrozenModel):
    """How to reach a model. Goes into the session config (resume uses it); holds no key.

    ``key_variable`` names the environment variable holding the key (``None``: the SDK's
    default, ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY``; local OpenAI-compatible servers get
    a placeholder). ``allow_cloud`` must be set explicitly for a cloud locality.
    """

    provider: Literal["anthropic", "openai-compatible"] = "anthropic"
    model: Annotated[str, Field(min_length=1, max_length=128)] | None = None  # None: default
    base_url: Annotated[str, Field(max_length=512)] | None = None
    key_variable: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0
    max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    max_output_tokens: Annotated[int, Field(ge=256, le=200_000)] = 4096
    context_tokens: Annotated[int, Field(ge=1024, le=10_000_000)] | None = None  # None: model's
    thinking: Literal["off", "adaptive", "budget"] = "off"
    thinking_budget_tokens: Annotated[int, Field(ge=1024)] | None = None
    on_premise_hosts: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list)
    allow_cloud: bool = False


class ProviderCapabilities(FrozenModel):
    """What the server supports, as probed once per session and recorded."""

    forced_tool_choice: bool = True  # a named tool_choice is honoured
    json_schema_response_format: bool = False  # response_format json_schema (Ollama fallback)
    strict_tools: bool = False
    supports_images: bool = False
    supports_thinking: bool = False
    context_tokens: int | None = None
    notes: list[str] = Field(default_factory=list)


class ProviderDescription(FrozenModel):
    """What the journal records about the provider of a session (no key)."""

    provider: str
    model: str
    base_url: str | None
    locality: Locality
    capabilities: ProviderCapabilities


@runtime_checkable
class LlmProvider(Protocol):
    """One model behind one SDK. Every SDK error is mapped to :mod:`agent.policies.llm.errors`."""

    @property
    def description(self) -> ProviderDescription:
        """Provider, model, base URL, locality and probed capabilities."""
        ...

    def complete(self, request: LlmRequest) -> LlmReply:
        """One call (the SDK's retries and timeout apply); raises :class:`LlmError` subclasses."""
        ...

    def estimate_input_tokens(self, request: LlmRequest) -> int:
        """An offline estimate of the request's input tokens (no network)."""
        ...

    def close(self) -> None:
        """Release the HTTP client (if the provider created it)."""
        ...
