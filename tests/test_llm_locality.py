"""Where a provider's server is, the data-egress rule, and the provider registry
(agent/policies/llm/providers/locality.py, factory.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.providers import (
    AnthropicProvider,
    LlmProvider,
    Locality,
    OpenAiCompatibleProvider,
    ProviderSettings,
    check_egress,
    classify,
    make_provider,
    provider_capability_table,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "http://LOCALHOST.:11434/v1",
        "http://127.0.0.1:8080",
        "http://127.8.9.10/v1",
        "http://[::1]:11434/v1",
        "http://[::ffff:127.0.0.1]:8000",
        "https://ollama.localhost/v1",
    ],
)
def test_loopback_is_local(url: str) -> None:
    assert classify(url, []) is Locality.LOCAL


@pytest.mark.parametrize(
    "url",
    [
        "https://api.anthropic.com",
        "https://api.openai.com/v1",
        "http://10.1.2.3:8000/v1",  # private, but not listed: counts as cloud
        "http://127.0.0.1.example.com/v1",
        "http://localhost.example.com/v1",
        "http://example.com/localhost",
        "http://0.0.0.0:8000",
    ],
)
def test_anything_else_is_cloud(url: str) -> None:
    assert classify(url, []) is Locality.CLOUD


def test_default_endpoint_is_cloud() -> None:
    assert classify(None, ["api.anthropic.com"]) is Locality.CLOUD


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("http://gpu01.hospital.local:8000/v1", ["GPU01.hospital.local"]),
        ("http://gpu07.hospital.local:8000/v1", ["*.hospital.local"]),
        ("http://10.1.2.3:8000/v1", ["10.0.0.0/8"]),
        ("http://[fd00::5]:8000/v1", ["fd00::/8"]),
        ("http://192.168.1.20:11434/v1", ["192.168.1.20"]),
    ],
)
def test_listed_hosts_are_on_premise(url: str, hosts: list[str]) -> None:
    assert classify(url, hosts) is Locality.ON_PREMISE


def test_a_suffix_entry_does_not_match_a_lookalike() -> None:
    assert classify("http://evilhospital.local/v1", ["*.hospital.local"]) is Locality.CLOUD
    assert classify("http://hospital.local.evil.com/v1", ["*.hospital.local"]) is Locality.CLOUD


@pytest.mark.parametrize(
    "url",
    ["localhost:8000", "ftp://localhost/", "http://", "http://localhost:99999/v1", "not a url"],
)
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(LlmConfigError, match="http"):
        classify(url, [])


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(LlmConfigError, match="environment variable"):
        classify("http://user:secret@localhost:8000/v1", [])


def test_cloud_needs_explicit_permission() -> None:
    with pytest.raises(LlmConfigError) as caught:
        check_egress(ProviderSettings(provider="anthropic"))
    message = str(caught.value)
    assert "--allow-cloud" in message and "allow_cloud: true" in message
    assert "de-identified" in message and "https://api.anthropic.com" in message
    assert check_egress(ProviderSettings(provider="anthropic", allow_cloud=True)) is Locality.CLOUD
    with pytest.raises(LlmConfigError, match="cloud"):
        check_egress(ProviderSettings(provider="openai-compatible"))  # OpenAI's own endpoint


def test_local_and_on_premise_need_no_permission() -> None:
    local = ProviderSettings(provider="openai-compatible", base_url="http://127.0.0.1:8000/v1")
    assert check_egress(local) is Locality.LOCAL
    on_premise = ProviderSettings(
        provider="anthropic",
        base_url="https://llm-gw.hospital.local",
        on_premise_hosts=["llm-gw.hospital.local"],
    )
    assert check_egress(on_premise) is Locality.ON_PREMISE


def test_make_provider_refuses_cloud_before_reading_a_key_or_connecting() -> None:
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(500)

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    with pytest.raises(LlmConfigError, match="cloud") as caught:
        make_provider(ProviderSettings(provider="anthropic"), http_client=client, env={})
    assert "ANTHROPIC_API_KEY" not in str(caught.value)
    assert calls == []


def test_make_provider_builds_the_registered_class() -> None:
    local = ProviderSettings(provider="openai-compatible", base_url="http://localhost:8000/v1")
    provider = make_provider(local, env={})
    assert isinstance(provider, OpenAiCompatibleProvider) and isinstance(provider, LlmProvider)
    assert provider.description.locality is Locality.LOCAL
    provider.close()
    cloud = ProviderSettings(provider="anthropic", allow_cloud=True)
    claude = make_provider(cloud, env={"ANTHROPIC_API_KEY": "sk-ant-test-0000000000"})
    assert isinstance(claude, AnthropicProvider) and isinstance(claude, LlmProvider)
    claude.close()


def test_the_capability_table_lists_what_each_provider_declares() -> None:
    table = {row.name: row for row in provider_capability_table()}
    assert set(table) == {"anthropic", "openai-compatible"}
    assert table["anthropic"].supports_thinking and table["anthropic"].needs_network
    assert not table["openai-compatible"].needs_network
    assert all(row.supports_images and row.sdk_installed for row in table.values())
    assert table["anthropic"].sdk == "anthropic" and table["openai-compatible"].sdk == "openai"


def test_the_package_imports_without_the_sdks_and_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['anthropic'] = None; sys.modules['openai'] = None\n"
        "from agent.policies.llm.providers import ProviderSettings, make_provider\n"
        "from agent.policies.llm.providers import provider_capability_table\n"
        "assert not any(row.sdk_installed for row in provider_capability_table())\n"
        "s = ProviderSettings(provider='openai-compatible', base_url='http://localhost:1/v1')\n"
        "try:\n"
        "    make_provider(s, env={})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("LlmConfigError")
    assert "'openai' package is not installed" in done.stdout
    assert "pip install -e '.[llm]'" in done.stdout
