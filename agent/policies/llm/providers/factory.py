"""The provider registry: providers by name with the capabilities their classes declare.

:func:`make_provider` checks where the data would go (:func:`~agent.policies.llm.providers.
locality.check_egress`) before it builds anything, so a cloud server that the configuration
does not allow is refused before a key is read or a connection is made.
:func:`provider_capability_table` lists the providers for the CLI (``--provider``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.providers import anthropic as anthropic_provider
from agent.policies.llm.providers import openai_compat
from agent.policies.llm.providers.anthropic import AnthropicProvider
from agent.policies.llm.providers.base import LlmProvider, ProviderSettings
from agent.policies.llm.providers.errors import sdk_available
from agent.policies.llm.providers.locality import check_egress
from agent.policies.llm.providers.openai_compat import OpenAiCompatibleProvider
from rtplan_common.models import FrozenModel

if TYPE_CHECKING:
    import httpx2


#: Providers by name; each class declares what it can do as class variables.
PROVIDERS: dict[str, type[AnthropicProvider] | type[OpenAiCompatibleProvider]] = {
    AnthropicProvider.NAME: AnthropicProvider,
    OpenAiCompatibleProvider.NAME: OpenAiCompatibleProvider,
}
#: The SDK each provider needs (installed by the ``llm`` extra).
SDK_OF = {AnthropicProvider.NAME: "anthropic", OpenAiCompatibleProvider.NAME: "openai"}


class ProviderInfo(FrozenModel):
    """One row of :func:`provider_capability_table`."""

    name: str
    supports_images: bool
    supports_thinking: bool
    needs_network: bool
    sdk: str
    sdk_installed: bool


def provider_capability_table() -> list[ProviderInfo]:
    """Every registered provider with its declared capabilities and whether its SDK is
    installed (no network)."""
    return [
        ProviderInfo(
            name=name,
            supports_images=cls.SUPPORTS_IMAGES,
            supports_thinking=cls.SUPPORTS_THINKING,
            needs_network=cls.NEEDS_NETWORK,
            sdk=SDK_OF[name],
            sdk_installed=sdk_available(SDK_OF[name]),
        )
        for name, cls in PROVIDERS.items()
    ]


def make_provider(
    settings: ProviderSettings,
    *,
    http_client: httpx2.Client | None = None,
    env: Mapping[str, str] | None = None,
) -> LlmProvider:
    """The provider for ``settings``, after the data-egress check.

    Raises
    ------
    LlmConfigError
        A cloud server without ``allow_cloud``, a malformed base URL, an unknown provider, a
        missing SDK or key (raised before anything touches the plan).
    """
    check_egress(settings)
    cls = PROVIDERS.get(settings.provider)
    if cls is None:
        known = ", ".join(PROVIDERS)
        raise LlmConfigError(f"unknown provider {settings.provider!r}; use one of {known}")
    return cls(settings, http_client=http_client, env=env)


__all__ = ["PROVIDERS", "SDK_OF", "ProviderInfo", "make_provider", "provider_capability_table"]


def key_variable(settings: ProviderSettings) -> str:
    """The environment variable the provider of ``settings`` reads its key from."""
    defaults = {
        "anthropic": anthropic_provider.DEFAULT_KEY_VARIABLE,
        "openai-compatible": openai_compat.DEFAULT_KEY_VARIABLE,
    }
    return settings.key_variable or defaults[settings.provider]
