"""Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, OpenAI) through ``openai``.

The server is probed once per provider, lazily before the first call or by :meth:`probe`
(:mod:`agent.policies.llm.providers.openai_probe`). What the probed kind means here:

- vLLM, OpenAI, unknown servers: a named ``tool_choice`` (vLLM decodes against the schema);
- llama.cpp server: ``tool_choice: "required"`` (it does not read a named choice; with one
  tool, "required" forces that tool under its grammar);
- Ollama: it ignores ``tool_choice``, so the answer is asked for as JSON content with
  ``response_format`` ``json_schema`` and that content is accepted as the tool call (call id
  :data:`JSON_CONTENT_CALL_PREFIX` + the completion id; its result goes back as user text).

Reasoning text arrives in non-standard fields (``reasoning_content``, ``reasoning``) or as a
leading ``<think>`` block: it is read defensively into ``LlmReply.reasoning``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.providers.base import (
    Locality,
    ProviderDescription,
    ProviderSettings,
)
from agent.policies.llm.providers.errors import map_sdk_errors, require_sdk
from agent.policies.llm.providers.locality import classify, effective_base_url, host_of
from agent.policies.llm.providers.openai_probe import (
    ServerKind,
    ServerProbe,
    capabilities_for,
    probe_server,
)
from agent.policies.llm.providers.openai_wire import (
    JSON_CONTENT_CALL_PREFIX,
    chat_messages,
    json_hint,
    reply_from_completion,
    tool_definition,
)
from agent.policies.llm.providers.tokens import check_conversation, estimate_request_tokens
from agent.policies.llm.wire import LlmReply, LlmRequest

if TYPE_CHECKING:
    import httpx2

DEFAULT_KEY_VARIABLE = "OPENAI_API_KEY"
#: Sent as the key to local and on-premise servers that need none.
PLACEHOLDER_KEY = "not-needed"


class OpenAiCompatibleProvider:
    """An OpenAI-compatible chat-completions server behind ``LlmProvider``.

    Parameters
    ----------
    settings
        ``provider="openai-compatible"``; ``base_url`` ``None`` means OpenAI itself (cloud);
        ``model`` ``None`` is allowed for a local server that serves exactly one model.
    http_client
        An ``httpx2.Client`` for the SDK (tests: a ``MockTransport`` or a loopback fake).
    env
        Where the key is read (default ``os.environ``), from ``settings.key_variable`` or
        ``OPENAI_API_KEY``; local and on-premise servers without one get a placeholder.

    Raises
    ------
    LlmConfigError
        The SDK is missing, a cloud server has no key or no model, the base URL is malformed.
    """

    NAME: ClassVar[str] = "openai-compatible"
    SUPPORTS_IMAGES: ClassVar[bool] = True  # if the served model is multimodal
    SUPPORTS_THINKING: ClassVar[bool] = False  # reasoning is read, not configured
    NEEDS_NETWORK: ClassVar[bool] = False  # a loopback server will do

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        http_client: httpx2.Client | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if settings.provider != self.NAME:
            raise LlmConfigError(f"OpenAiCompatibleProvider got settings for {settings.provider!r}")
        sdk = require_sdk("openai")
        environment = os.environ if env is None else env
        self._settings = settings
        self._base_url = effective_base_url(settings)
        self._locality = classify(self._base_url, settings.on_premise_hosts)
        self._is_openai = host_of(self._base_url) == "api.openai.com"
        self._key_variable = settings.key_variable or DEFAULT_KEY_VARIABLE
        key = environment.get(self._key_variable, "").strip()
        if not key:
            if self._locality is Locality.CLOUD:
                raise LlmConfigError(
                    f"no API key for the cloud server at {self._base_url}: set the environment "
                    f"variable {self._key_variable} (or name another one with key_variable)"
                )
            key = PLACEHOLDER_KEY
        if settings.model is None and self._locality is Locality.CLOUD:
            raise LlmConfigError(
                f"no model named for {self._base_url}: set the model (--model NAME)"
            )
        self._secrets = (key,) if key != PLACEHOLDER_KEY else ()
        self._model = settings.model or ""
        self._probe: ServerProbe | None = None
        self._owns_client = http_client is None
        with self._errors():
            self._client = sdk.OpenAI(
                api_key=key,
                base_url=self._base_url,
                timeout=settings.timeout_s,
                max_retries=settings.max_retries,
                http_client=http_client,
            )
        self._description = ProviderDescription(
            provider=self.NAME,
            model=self._model,
            base_url=self._base_url,
            locality=self._locality,
            capabilities=capabilities_for(
                ServerProbe(
                    kind="openai" if self._is_openai else "unknown",
                    model=self._model,
                    context_tokens=settings.context_tokens,
                    notes=["not probed yet"],
                ),
                supports_images=self.SUPPORTS_IMAGES,
            ),
        )

    def _errors(self) -> Any:
        return map_sdk_errors(
            self.NAME,
            key_variable=self._key_variable,
            timeout_s=self._settings.timeout_s,
            max_retries=self._settings.max_retries,
            secrets=self._secrets,
        )

    @property
    def description(self) -> ProviderDescription:
        """Provider, model, base URL, locality and (after the probe) the probed capabilities."""
        return self._description

    @property
    def server_kind(self) -> ServerKind:
        """The probed kind of server (``unknown`` before the probe, ``openai`` for OpenAI)."""
        if self._probe is not None:
            return self._probe.kind
        return "openai" if self._is_openai else "unknown"

    def probe(self) -> ProviderDescription:
        """Probe the server once (later calls return the recorded result) and record the
        capabilities in :attr:`description`.

        Raises
        ------
        LlmConfigError
            The configured model is not served (the message lists some that are).
        LlmError
            The models endpoint failed (unreachable server, bad key, wrong base URL).
        """
        if self._probe is None:
            self._probe = probe_server(
                self._client,
                self._base_url,
                self._settings,
                is_openai=self._is_openai,
                errors=self._errors(),
            )
            self._model = self._probe.model
            self._description = self._description.model_copy(
                update={
                    "model": self._model,
                    "capabilities": capabilities_for(
                        self._probe, supports_images=self.SUPPORTS_IMAGES
                    ),
                }
            )
        return self._description

    # -- request ----------------------------------------------------------------------------

    @property
    def _json_content_mode(self) -> bool:
        return self.server_kind == "ollama"

    def request_params(self, request: LlmRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request`` (probes the
        server first if that has not happened yet)."""
        check_conversation(request)
        self.probe()
        messages = chat_messages(request, json_content=self._json_content_mode)
        limit = "max_completion_tokens" if self.server_kind == "openai" else "max_tokens"
        params: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            limit: request.max_output_tokens,
        }
        tool = tool_definition(request.tool)
        if self._json_content_mode:
            function = tool["function"]
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": function["name"],
                    "description": function["description"],
                    "schema": function["parameters"],
                    "strict": True,
                },
            }
        else:
            params["tools"] = [tool]
            params["tool_choice"] = (
                "required"
                if self.server_kind == "llama.cpp"
                else {"type": "function", "function": {"name": request.tool.name}}
            )
            params["parallel_tool_calls"] = False
        return params

    def complete(self, request: LlmRequest) -> LlmReply:
        """One ``chat.completions.create`` call (the SDK's timeout and retries apply).

        Raises
        ------
        LlmError
            A subclass for every SDK error (see :mod:`agent.policies.llm.errors`).
        """
        params = self.request_params(request)
        with self._errors():
            completion = self._client.chat.completions.create(**params)
        return reply_from_completion(
            completion, request.tool.name, json_content=self._json_content_mode
        )

    def estimate_input_tokens(self, request: LlmRequest) -> int:
        """Offline estimate: characters / 3.5 of the system text, the turns and the tool
        definition as sent, plus 1600 tokens per image and 4 per message
        (:mod:`agent.policies.llm.providers.tokens`); no network (the probe is not run)."""
        extra = [json_hint(request.tool)] if self._json_content_mode else []
        return estimate_request_tokens(request, tool_definition(request.tool), extra)

    def close(self) -> None:
        """Close the SDK's HTTP client if this provider created it."""
        if self._owns_client:
            self._client.close()


__all__ = ["JSON_CONTENT_CALL_PREFIX", "PLACEHOLDER_KEY", "OpenAiCompatibleProvider"]
