"""Claude through the official ``anthropic`` SDK (Messages API).

What this layer honours (current SDKs and models):

- no ``temperature`` / ``top_p`` (current models take none) and no prefilled assistant turn:
  the last turn is always the user's;
- thinking: ``{"type": "adaptive"}`` or ``{"type": "enabled", "budget_tokens": N}``; a forced
  ``tool_choice`` is refused while thinking is on, so then ``{"type": "auto"}`` (the policy
  validates the answer); thinking blocks come back in ``provider_turn`` and are sent back
  unchanged when a tool exchange continues;
- prompt caching: ``cache_control`` on the last cacheable system block only when the cached
  prefix (tool definition + system blocks up to it) reaches the model's minimum cacheable
  length; below it caching does nothing, so nothing is sent;
- the SDK's own timeout and retries with backoff; every SDK error mapped once
  (:func:`~agent.policies.llm.providers.errors.map_sdk_errors`);
- usage: ``TokenUsage.input_tokens`` is the whole prompt (uncached + cache read + cache
  write), as OpenAI-compatible servers count ``prompt_tokens``, so that the offline estimate
  reconciles the same way for every provider; the cache parts are also given apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from loguru import logger

from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.providers.anthropic_wire import (
    assistant_content,
    reply_from_message,
    tool_definition,
    user_content,
)
from agent.policies.llm.providers.base import (
    ProviderCapabilities,
    ProviderDescription,
    ProviderSettings,
)
from agent.policies.llm.providers.errors import map_sdk_errors, require_sdk
from agent.policies.llm.providers.locality import classify, effective_base_url
from agent.policies.llm.providers.tokens import (
    check_conversation,
    estimate_request_tokens,
    json_text,
    text_tokens,
    usage_count,
)
from agent.policies.llm.wire import LlmReply, LlmRequest

if TYPE_CHECKING:
    import httpx2

#: The default model: a current Sonnet id from the installed SDK's ``Model`` literal.
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"
DEFAULT_KEY_VARIABLE = "ANTHROPIC_API_KEY"

#: Minimum cacheable prefix per model id prefix (Anthropic's prompt-caching documentation as
#: quoted in public reports); other models: 2048 for Haiku, 1024 for Sonnet and Opus.
CACHE_MINIMUM_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-haiku-4-5", 4096),
)


def cache_minimum_tokens(model: str) -> int:
    """The smallest prefix (tokens) that ``model`` caches; below it ``cache_control`` does
    nothing."""
    for prefix, tokens in CACHE_MINIMUM_TOKENS:
        if model.startswith(prefix):
            return tokens
    return 2048 if "haiku" in model else 1024


class AnthropicProvider:
    """Claude behind :class:`~agent.policies.llm.providers.base.LlmProvider`.

    Parameters
    ----------
    settings
        ``provider="anthropic"``; ``model`` ``None`` means :data:`DEFAULT_ANTHROPIC_MODEL`;
        ``base_url`` ``None`` means Anthropic's endpoint (``ANTHROPIC_BASE_URL`` is not read:
        the configuration says where data goes).
    http_client
        An ``httpx2.Client`` for the SDK (tests: a ``MockTransport`` or a loopback fake).
    env
        Where the key is read (default ``os.environ``), from ``settings.key_variable`` or
        ``ANTHROPIC_API_KEY``.

    Raises
    ------
    LlmConfigError
        The SDK is missing, the key is missing, the base URL is malformed or the thinking
        settings are incomplete.
    """

    NAME: ClassVar[str] = "anthropic"
    SUPPORTS_IMAGES: ClassVar[bool] = True
    SUPPORTS_THINKING: ClassVar[bool] = True
    NEEDS_NETWORK: ClassVar[bool] = True

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        http_client: httpx2.Client | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if settings.provider != self.NAME:
            raise LlmConfigError(f"AnthropicProvider got settings for {settings.provider!r}")
        sdk = require_sdk("anthropic")
        environment = os.environ if env is None else env
        self._key_variable = settings.key_variable or DEFAULT_KEY_VARIABLE
        key = environment.get(self._key_variable, "").strip()
        if not key:
            raise LlmConfigError(
                f"no Anthropic API key: set the environment variable {self._key_variable} "
                "(or name another one with key_variable)"
            )
        if settings.thinking == "budget" and settings.thinking_budget_tokens is None:
            raise LlmConfigError("thinking 'budget' needs thinking_budget_tokens (>= 1024)")
        self._settings = settings
        self._secrets = (key,)
        self._model = settings.model or DEFAULT_ANTHROPIC_MODEL
        base_url = effective_base_url(settings)
        locality = classify(base_url, settings.on_premise_hosts)
        self._owns_client = http_client is None
        self._probed = False
        with self._errors():
            self._client = sdk.Anthropic(
                api_key=key,
                base_url=base_url,
                timeout=settings.timeout_s,
                max_retries=settings.max_retries,
                http_client=http_client,
            )
        thinking = settings.thinking != "off"
        notes = []
        if thinking:
            notes.append(
                "thinking on: tool_choice auto (a forced tool_choice is refused while thinking "
                "is on); the answer is validated"
            )
        self._description = ProviderDescription(
            provider=self.NAME,
            model=self._model,
            base_url=base_url,
            locality=locality,
            capabilities=ProviderCapabilities(
                forced_tool_choice=not thinking,
                strict_tools=True,
                supports_images=True,
                supports_thinking=True,
                context_tokens=settings.context_tokens,
                notes=notes,
            ),
        )

    @property
    def description(self) -> ProviderDescription:
        """Provider, model, base URL, locality and capabilities (no key)."""
        return self._description

    def probe(self) -> ProviderDescription:
        """Check once, with ``GET /v1/models/{model}``, that the key is accepted and the model
        exists; record its input limit (opt-in: construction makes no call).

        Raises
        ------
        LlmError
            A refused key (:class:`LlmAuthError`), an unknown model
            (:class:`LlmRequestRejected`), an unreachable server.
        """
        if not self._probed:
            with self._errors():
                info = self._client.models.retrieve(self._model)
            limit = usage_count(info, "max_input_tokens") or None
            configured = self._settings.context_tokens
            context = min(configured, limit or configured) if configured else limit
            lifecycle = str(getattr(info, "lifecycle", "") or "unknown")
            if lifecycle != "active":
                logger.warning("Anthropic model {} is {}", self._model, lifecycle)
            caps = self._description.capabilities
            notes = [*caps.notes, f"model {self._model}: {lifecycle}"]
            update = {"context_tokens": context, "notes": notes}
            self._description = self._description.model_copy(
                update={"capabilities": caps.model_copy(update=update)}
            )
            self._probed = True
        return self._description

    def _errors(self) -> Any:
        return map_sdk_errors(
            self.NAME,
            key_variable=self._key_variable,
            timeout_s=self._settings.timeout_s,
            max_retries=self._settings.max_retries,
            secrets=self._secrets,
        )

    def _system(self, request: LlmRequest, tool: dict[str, Any]) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": p.text} for p in request.system]
        cacheable = [i for i, part in enumerate(request.system) if part.cacheable]
        if cacheable:
            last = cacheable[-1]
            prefix = text_tokens(json_text(tool)) + sum(
                text_tokens(part.text) for part in request.system[: last + 1]
            )
            if prefix >= cache_minimum_tokens(self._model):
                blocks[last]["cache_control"] = {"type": "ephemeral"}
        return blocks

    def _thinking(self, request: LlmRequest) -> dict[str, Any] | None:
        mode = self._settings.thinking
        if mode == "adaptive":
            return {"type": "adaptive"}
        if mode == "budget":
            budget = self._settings.thinking_budget_tokens
            assert budget is not None  # checked in __init__
            if budget >= request.max_output_tokens:
                raise LlmConfigError(
                    f"thinking_budget_tokens ({budget}) must be below the output limit "
                    f"({request.max_output_tokens}); lower the budget or raise max_output_tokens"
                )
            return {"type": "enabled", "budget_tokens": budget}
        return None

    def request_params(self, request: LlmRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``request`` (never a sampling
        parameter; the last turn is the user's)."""
        check_conversation(request)
        tool = tool_definition(request.tool)
        messages: list[dict[str, Any]] = []
        for turn in request.turns:
            if turn.role == "user":
                messages.append({"role": "user", "content": user_content(turn)})
            else:
                messages.append({"role": "assistant", "content": assistant_content(turn)})
        thinking = self._thinking(request)
        params: dict[str, Any] = {
            "model": self._model,
            "max_tokens": request.max_output_tokens,
            "messages": messages,
            "tools": [tool],
        }
        if request.system:
            params["system"] = self._system(request, tool)
        if thinking is None:
            params["tool_choice"] = {
                "type": "tool",
                "name": request.tool.name,
                "disable_parallel_tool_use": True,
            }
        else:
            params["thinking"] = thinking
            params["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        return params

    def complete(self, request: LlmRequest) -> LlmReply:
        """One ``messages.create`` call (the SDK's timeout and retries apply).

        Raises
        ------
        LlmError
            A subclass for every SDK error (see :mod:`agent.policies.llm.errors`).
        """
        params = self.request_params(request)
        with self._errors():
            message = self._client.messages.create(**params)
        return reply_from_message(message)

    def estimate_input_tokens(self, request: LlmRequest) -> int:
        """Offline estimate: characters / 3.5 of the system blocks, the turns and the tool
        definition as sent (adapted schema), plus 1600 tokens per image and 4 per message
        (:mod:`agent.policies.llm.providers.tokens`)."""
        return estimate_request_tokens(request, tool_definition(request.tool))

    def close(self) -> None:
        """Close the SDK's HTTP client if this provider created it (an injected one stays
        open: its owner closes it)."""
        if self._owns_client:
            self._client.close()


__all__ = [
    "CACHE_MINIMUM_TOKENS",
    "DEFAULT_ANTHROPIC_MODEL",
    "AnthropicProvider",
    "cache_minimum_tokens",
]
