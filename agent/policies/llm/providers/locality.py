"""Where a provider's server is, and whether plan data may be sent there.

:func:`classify` reads only the base URL (no DNS look-up: a name is judged by what it says,
so the result is the same offline and on every machine): loopback names and addresses are
``LOCAL``; hosts the configuration lists are ``ON_PREMISE``; anything else, and the default
endpoints of Anthropic and OpenAI, is ``CLOUD``. :func:`check_egress` refuses a cloud server
unless the configuration explicitly allows sending de-identified plan data off the
workstation.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.providers.base import Locality, ProviderSettings

#: The SDKs' default endpoints (used when ``base_url`` is not set).
ANTHROPIC_DEFAULT_BASE_URL = "https://api.anthropic.com"
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def host_of(base_url: str) -> str:
    """The lower-case host of ``base_url`` (``http(s)://host[:port][/path]``).

    Raises
    ------
    LlmConfigError
        Not an http(s) URL with a host, or a malformed port.
    """
    text = base_url.strip()
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise LlmConfigError(
            f"base URL {text!r} is malformed ({exc}); use http(s)://host[:port][/path]"
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LlmConfigError(
            f"base URL {text!r} is not an http(s) URL with a host; use http(s)://host[:port][/path]"
        )
    if parts.username or parts.password:
        raise LlmConfigError(
            "base URL must not hold credentials; keys come from the environment variable "
            "named by key_variable"
        )
    return parts.hostname.lower().rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    name = host.lower().strip("[]").rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped is not None and mapped.is_loopback)


def _listed(host: str, entry: str) -> bool:
    """Whether ``host`` matches an ``on_premise_hosts`` entry: a host name or address, a
    ``*.domain`` suffix, or an address network (``10.0.0.0/8``)."""
    pattern = entry.strip().lower().rstrip(".")
    if not pattern:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if "/" in pattern:
        try:
            network = ipaddress.ip_network(pattern, strict=False)
            return ipaddress.ip_address(host) in network
        except ValueError:
            return False
    return host == pattern.strip("[]")


def classify(base_url: str | None, on_premise_hosts: Sequence[str] = ()) -> Locality:
    """The locality of a server at ``base_url`` (``None``: a provider's default endpoint).

    Raises
    ------
    LlmConfigError
        A malformed base URL.
    """
    if base_url is None:
        return Locality.CLOUD
    host = host_of(base_url)
    if is_loopback(host):
        return Locality.LOCAL
    if any(_listed(host, entry) for entry in on_premise_hosts):
        return Locality.ON_PREMISE
    return Locality.CLOUD


def effective_base_url(settings: ProviderSettings) -> str:
    """The base URL the provider will call: the configured one or the SDK's default."""
    if settings.base_url:
        return settings.base_url
    if settings.provider == "anthropic":
        return ANTHROPIC_DEFAULT_BASE_URL
    return OPENAI_DEFAULT_BASE_URL


def check_egress(settings: ProviderSettings) -> Locality:
    """The provider's locality; raises unless plan data may go there.

    Raises
    ------
    LlmConfigError
        A cloud server without ``allow_cloud``, or a malformed base URL.
    """
    url = effective_base_url(settings)
    locality = classify(url, settings.on_premise_hosts)
    if locality is Locality.CLOUD and not settings.allow_cloud:
        raise LlmConfigError(
            f"the {settings.provider} server at {url} is a cloud service: de-identified plan "
            "data (objectives, dose statistics, goals; never patient identifiers) would leave "
            "this workstation. Allow it explicitly with --allow-cloud on the command line or "
            "allow_cloud: true in the policy configuration, or list the host in "
            "on_premise_hosts if it runs inside the clinic's network."
        )
    return locality


__all__ = [
    "ANTHROPIC_DEFAULT_BASE_URL",
    "OPENAI_DEFAULT_BASE_URL",
    "check_egress",
    "classify",
    "effective_base_url",
    "host_of",
    "is_loopback",
]
