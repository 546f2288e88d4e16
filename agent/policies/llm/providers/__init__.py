"""LLM providers: one small Protocol (:mod:`.base`) over each official SDK.

- :func:`make_provider` builds a provider from :class:`ProviderSettings` after the data-egress
  check; :func:`provider_capability_table` lists the providers and what they can do;
- :class:`AnthropicProvider` (Claude, ``anthropic``) and :class:`OpenAiCompatibleProvider`
  (vLLM, Ollama, llama.cpp server, OpenAI; ``openai``);
- :func:`tool_schema` / :func:`adapt_schema`: the tool's JSON schema per provider flavour;
- :func:`classify` / :func:`check_egress`: where a server is and whether data may go there;
- :func:`map_sdk_errors`: the one place SDK exceptions become our errors.

The SDKs are imported on first use: this package imports without them.
"""

from agent.policies.llm.providers.anthropic import DEFAULT_ANTHROPIC_MODEL, AnthropicProvider
from agent.policies.llm.providers.base import (
    LlmProvider,
    Locality,
    ProviderCapabilities,
    ProviderDescription,
    ProviderSettings,
)
from agent.policies.llm.providers.errors import map_sdk_errors, require_sdk, sdk_available
from agent.policies.llm.providers.factory import (
    PROVIDERS,
    ProviderInfo,
    make_provider,
    provider_capability_table,
)
from agent.policies.llm.providers.locality import check_egress, classify
from agent.policies.llm.providers.openai_compat import OpenAiCompatibleProvider
from agent.policies.llm.providers.schema import FLAVOURS, Flavour, adapt_schema, tool_schema

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "FLAVOURS",
    "PROVIDERS",
    "AnthropicProvider",
    "Flavour",
    "LlmProvider",
    "Locality",
    "OpenAiCompatibleProvider",
    "ProviderCapabilities",
    "ProviderDescription",
    "ProviderInfo",
    "ProviderSettings",
    "adapt_schema",
    "check_egress",
    "classify",
    "make_provider",
    "map_sdk_errors",
    "provider_capability_table",
    "require_sdk",
    "sdk_available",
    "tool_schema",
]
