"""AnthropicProvider over the real ``anthropic`` SDK, with the network replaced by an
``httpx2.MockTransport`` that records each request and answers with Messages API JSON
(shaped after ``anthropic.types.Message``)."""

from __future__ import annotations

import base64
import json
import logging
import typing
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from loguru import logger

from agent.policies.llm.edits import TOOL_DESCRIPTION, TOOL_NAME, PlanEdits
from agent.policies.llm.errors import (
    LlmAuthError,
    LlmBadResponse,
    LlmConfigError,
    LlmConnectionError,
    LlmError,
    LlmRateLimited,
    LlmRequestRejected,
    LlmServerError,
    LlmTimeout,
)
from agent.policies.llm.providers import (
    DEFAULT_ANTHROPIC_MODEL,
    AnthropicProvider,
    Locality,
    ProviderSettings,
)
from agent.policies.llm.providers.anthropic import cache_minimum_tokens
from agent.policies.llm.providers.errors import require_sdk
from agent.policies.llm.providers.tokens import IMAGE_TOKENS
from agent.policies.llm.wire import (
    ImagePart,
    LlmRequest,
    StopKind,
    SystemPart,
    ToolResult,
    ToolSpec,
    Turn,
)

KEY = "sk-ant-api03-TOPSECRET-0123456789abcdef"
TOOL = ToolSpec(
    name=TOOL_NAME, description=TOOL_DESCRIPTION, input_schema=PlanEdits.model_json_schema()
)
EDITS = {"assessment": "PTV D95 fails.", "changes": [{"objective_id": "O1", "dose_gy": 61.0}]}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def message(
    content: list[dict[str, Any]],
    stop_reason: str = "tool_use",
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A Messages API response body."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": DEFAULT_ANTHROPIC_MODEL,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 900, "output_tokens": 120},
    }


TOOL_USE: dict[str, Any] = {"type": "tool_use", "id": "toolu_01", "name": TOOL_NAME, "input": EDITS}
THINKING: dict[str, Any] = {
    "type": "thinking",
    "thinking": "Coverage is short by 1 Gy.",
    "signature": "EqQBCkYIBxgCKkDsig==",
}

Answer = httpx2.Response | Callable[[httpx2.Request], httpx2.Response]


class Server:
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


def ok(body: dict[str, Any]) -> httpx2.Response:
    return httpx2.Response(200, json=body, headers={"request-id": "req_01"})


def error(status: int, kind: str, text: str, **headers: str) -> httpx2.Response:
    body = {"type": "error", "error": {"type": kind, "message": text}}
    return httpx2.Response(status, json=body, headers={"request-id": "req_err", **headers})


def make(server: Server, **settings: Any) -> AnthropicProvider:
    values: dict[str, Any] = {"allow_cloud": True, "max_retries": 0, **settings}
    client = httpx2.Client(transport=httpx2.MockTransport(server))
    return AnthropicProvider(
        ProviderSettings(**values), http_client=client, env={"ANTHROPIC_API_KEY": KEY}
    )


def ask(*turns: Turn, system: list[SystemPart] | None = None, max_tokens: int = 4096) -> LlmRequest:
    return LlmRequest(
        system=system if system is not None else [SystemPart(text="You plan radiotherapy.")],
        turns=list(turns) or [Turn(role="user", text="Propose the next edits.")],
        tool=TOOL,
        max_output_tokens=max_tokens,
    )


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru message (DEBUG and up) during the test."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    yield lines
    logger.remove(sink)


# -- request translation -------------------------------------------------------------------


def test_a_forced_tool_call_without_thinking_and_no_sampling_parameters() -> None:
    server = Server(ok(message([TOOL_USE])))
    make(server).complete(ask())
    body = server.bodies[0]
    assert body["tool_choice"] == {
        "type": "tool",
        "name": TOOL_NAME,
        "disable_parallel_tool_use": True,
    }
    assert "thinking" not in body
    assert not {"temperature", "top_p", "top_k"} & set(body)
    tool = body["tools"][0]
    assert tool["name"] == TOOL_NAME and tool["strict"] is True
    assert "minimum" not in json.dumps(tool["input_schema"]).replace("minimum 0", "")
    assert body["model"] == DEFAULT_ANTHROPIC_MODEL and body["max_tokens"] == 4096
    assert body["system"] == [{"type": "text", "text": "You plan radiotherapy."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Propose the next edits."}]}
    ]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("thinking", "budget", "expected"),
    [
        ("adaptive", None, {"type": "adaptive"}),
        ("budget", 2048, {"type": "enabled", "budget_tokens": 2048}),
    ],
)
def test_thinking_uses_auto_tool_choice(
    thinking: str, budget: int | None, expected: dict[str, Any]
) -> None:
    server = Server(ok(message([THINKING, TOOL_USE])))
    provider = make(server, thinking=thinking, thinking_budget_tokens=budget)
    provider.complete(ask())
    body = server.bodies[0]
    assert body["thinking"] == expected
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert not {"temperature", "top_p", "top_k"} & set(body)
    assert provider.description.capabilities.forced_tool_choice is False
    assert "tool_choice auto" in provider.description.capabilities.notes[0]


def test_thinking_budget_must_be_set_and_below_the_output_limit() -> None:
    with pytest.raises(LlmConfigError, match="thinking_budget_tokens"):
        make(Server(ok(message([TOOL_USE]))), thinking="budget")
    provider = make(Server(ok(message([TOOL_USE]))), thinking="budget", thinking_budget_tokens=4096)
    with pytest.raises(LlmConfigError, match="below the output limit"):
        provider.complete(ask(max_tokens=4096))


def test_thinking_blocks_go_back_unchanged_when_the_exchange_continues() -> None:
    first = message([THINKING, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va=="}, TOOL_USE])
    server = Server(ok(first), ok(message([TOOL_USE])))
    provider = make(server, thinking="adaptive")
    reply = provider.complete(ask())
    repair = ask(
        Turn(role="user", text="Propose the next edits."),
        Turn(role="assistant", text=reply.text, provider_turn=reply.provider_turn),
        Turn(
            role="user",
            tool_result=ToolResult(call_id="toolu_01", content="O9 does not exist", is_error=True),
        ),
    )
    provider.complete(repair)
    sent = server.bodies[1]["messages"]
    assert sent[1] == {"role": "assistant", "content": first["content"]}  # signatures intact
    assert sent[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "toolu_01",
            "content": "O9 does not exist",
            "is_error": True,
        }
    ]


def test_the_assistant_turn_is_never_prefilled() -> None:
    provider = make(Server(ok(message([TOOL_USE]))))
    with pytest.raises(ValueError, match="never prefilled"):
        provider.complete(ask(Turn(role="user", text="go"), Turn(role="assistant", text="{")))
    with pytest.raises(ValueError, match="start with a user turn"):
        provider.complete(ask(Turn(role="assistant", text="hi"), Turn(role="user", text="go")))


def test_cache_control_only_on_the_last_cacheable_block_above_the_minimum() -> None:
    short = [SystemPart(text="Role.", cacheable=True), SystemPart(text="Case data.")]
    server = Server(ok(message([TOOL_USE])))
    provider = make(server)
    provider.complete(ask(system=short))
    assert "cache_control" not in json.dumps(server.bodies[0])
    long_card = "Knowledge card line about rectum sparing.\n" * 120  # about 5000 characters
    long = [
        SystemPart(text="Role. " * 200, cacheable=True),
        SystemPart(text=long_card, cacheable=True),
        SystemPart(text="Current plan: ..."),
    ]
    provider.complete(ask(system=long))
    system = server.bodies[1]["system"]
    assert [("cache_control" in block) for block in system] == [False, True, False]
    assert system[1]["cache_control"] == {"type": "ephemeral"}


def test_the_cache_minimum_depends_on_the_model() -> None:
    assert cache_minimum_tokens(DEFAULT_ANTHROPIC_MODEL) == 1024
    assert cache_minimum_tokens("claude-opus-4-6") == 4096
    assert cache_minimum_tokens("claude-haiku-4-5-20251001") == 4096
    assert cache_minimum_tokens("claude-3-haiku-20240307") == 2048
    just_above_sonnet = [SystemPart(text="x" * 4400, cacheable=True)]  # ~1260 tokens + tool
    server = Server(ok(message([TOOL_USE])))
    make(server, model="claude-opus-4-6").complete(ask(system=just_above_sonnet))
    make(server).complete(ask(system=just_above_sonnet))
    assert ["cache_control" in b["system"][0] for b in server.bodies] == [False, True]


def test_images_are_base64_blocks_before_the_text() -> None:
    server = Server(ok(message([TOOL_USE])))
    turn = Turn(
        role="user",
        text="Judge the dose plane.",
        images=[ImagePart(data_b64=PNG, caption="Axial, isocentre")],
    )
    make(server).complete(ask(turn))
    assert server.bodies[0]["messages"][0]["content"] == [
        {"type": "text", "text": "Axial, isocentre"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "Judge the dose plane."},
    ]


def test_the_estimate_counts_text_schema_and_images() -> None:
    provider = make(Server(ok(message([TOOL_USE]))))
    plain = provider.estimate_input_tokens(ask())
    assert 300 < plain < 3000  # the adapted PlanEdits schema dominates
    with_image = ask(
        Turn(role="user", text="Propose the next edits.", images=[ImagePart(data_b64=PNG)])
    )
    assert provider.estimate_input_tokens(with_image) >= plain + IMAGE_TOKENS
    longer = ask(Turn(role="user", text="Propose the next edits." + "x" * 3500))
    assert provider.estimate_input_tokens(longer) == plain + 1000


# -- reply translation ----------------------------------------------------------------------


def test_a_tool_call_reply() -> None:
    usage = {
        "input_tokens": 50,
        "output_tokens": 80,
        "cache_read_input_tokens": 1500,
        "cache_creation_input_tokens": 0,
    }
    reply = make(Server(ok(message([THINKING, TOOL_USE], usage=usage)))).complete(ask())
    assert reply.stop is StopKind.TOOL_USE
    [call] = reply.tool_calls
    assert (call.call_id, call.name) == ("toolu_01", TOOL_NAME)
    assert json.loads(call.arguments_text) == EDITS
    assert PlanEdits.model_validate_json(call.arguments_text).changes[0].dose_gy == 61.0
    assert reply.reasoning == "Coverage is short by 1 Gy."
    assert (
        reply.usage.input_tokens,
        reply.usage.cached_input_tokens,
        reply.usage.output_tokens,
    ) == (1550, 1500, 80)
    assert reply.request_id == "req_01" and reply.model == DEFAULT_ANTHROPIC_MODEL
    assert reply.provider_turn == [THINKING, TOOL_USE]


@pytest.mark.parametrize(
    ("stop_reason", "stop"),
    [
        ("end_turn", StopKind.END_TURN),
        ("max_tokens", StopKind.MAX_TOKENS),
        ("refusal", StopKind.REFUSAL),
        ("pause_turn", StopKind.OTHER),
        ("model_context_window_exceeded", StopKind.MAX_TOKENS),
    ],
)
def test_text_replies_and_stop_reasons(stop_reason: str, stop: StopKind) -> None:
    text = {"type": "text", "text": "I cannot help with that."}
    reply = make(Server(ok(message([text], stop_reason=stop_reason)))).complete(ask())
    assert (
        reply.stop is stop and reply.tool_calls == [] and reply.text == "I cannot help with that."
    )


def test_redacted_thinking_is_noted_and_kept_for_the_next_turn() -> None:
    blocks: list[dict[str, Any]] = [{"type": "redacted_thinking", "data": "EmwKAhgB"}, TOOL_USE]
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 2000}
    reply = make(Server(ok(message(blocks, usage=usage))), thinking="adaptive").complete(ask())
    assert reply.reasoning == "[redacted thinking]"
    assert reply.provider_turn == blocks
    assert (reply.usage.input_tokens, reply.usage.cache_write_tokens) == (2010, 2000)


# -- errors ---------------------------------------------------------------------------------


def test_401_is_an_auth_error_naming_the_variable() -> None:
    with pytest.raises(LlmAuthError, match="ANTHROPIC_API_KEY") as caught:
        make(Server(error(401, "authentication_error", "invalid x-api-key"))).complete(ask())
    assert (
        caught.value.__cause__ is not None
        and type(caught.value.__cause__).__name__ == "AuthenticationError"
    )


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [
        (400, "invalid_request_error", "tools.0.input_schema: unsupported keyword"),
        (404, "not_found_error", "model: claude-nonexistent"),
        (413, "request_too_large", "Request exceeds the maximum size"),
    ],
)
def test_refused_requests(status: int, kind: str, text: str) -> None:
    with pytest.raises(LlmRequestRejected, match=f"HTTP {status}") as caught:
        make(Server(error(status, kind, text))).complete(ask())
    assert text in str(caught.value) and "req_err" in str(caught.value)


def test_429_with_retry_after_then_success() -> None:
    server = Server(
        error(429, "rate_limit_error", "slow down", **{"retry-after-ms": "1"}),
        ok(message([TOOL_USE])),
    )
    reply = make(server, max_retries=2).complete(ask())
    assert reply.tool_calls and len(server.requests) == 2
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"


def test_429_that_persists_names_the_retry_after() -> None:
    server = Server(error(429, "rate_limit_error", "slow down", **{"retry-after": "7"}))
    with pytest.raises(LlmRateLimited, match="retry after 7 s"):
        make(server).complete(ask())


def test_500_until_the_retries_run_out() -> None:
    server = Server(error(500, "api_error", "Internal server error", **{"retry-after-ms": "1"}))
    with pytest.raises(LlmServerError, match="after 2 retries"):
        make(server, max_retries=2).complete(ask())
    assert len(server.requests) == 3


def test_529_overloaded_is_a_server_error() -> None:
    with pytest.raises(LlmServerError, match="HTTP 529"):
        make(Server(error(529, "overloaded_error", "Overloaded"))).complete(ask())


def test_a_timeout() -> None:
    def hang(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    with pytest.raises(LlmTimeout, match="no answer within 2 s") as caught:
        make(Server(hang), timeout_s=2.0).complete(ask())
    assert isinstance(caught.value, LlmConnectionError)


def test_an_unreachable_server() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(LlmConnectionError, match="cannot reach the server"):
        make(Server(refuse), base_url="http://127.0.0.1:9").complete(ask())


@pytest.mark.parametrize(
    "response",
    [
        httpx2.Response(200, text="<html>gateway</html>", headers={"content-type": "text/html"}),
        httpx2.Response(200, text="{not json", headers={"content-type": "application/json"}),
        httpx2.Response(200, json={"unexpected": True}),
    ],
)
def test_a_body_that_is_not_a_message(response: httpx2.Response) -> None:
    with pytest.raises(LlmBadResponse, match="anthropic"):
        make(Server(response)).complete(ask())


def test_the_key_never_appears_in_errors_or_logs(
    logs: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    answers = [
        error(401, "authentication_error", f"invalid x-api-key {KEY}"),
        error(400, "invalid_request_error", f"bad request from key {KEY}"),
        error(500, "api_error", f"boom {KEY}"),
        httpx2.Response(200, text=f"key={KEY}", headers={"content-type": "text/plain"}),
    ]
    for answer in answers:
        with pytest.raises(LlmError) as caught:
            make(Server(answer)).complete(ask())
        messages.append(str(caught.value))
    assert len(messages) == 4 and "[redacted]" in messages[1]
    assert all(KEY not in text and "TOPSECRET" not in text for text in messages)
    assert all("TOPSECRET" not in line for line in logs)
    assert "TOPSECRET" not in caplog.text
    assert KEY not in repr(make(Server(ok(message([TOOL_USE])))).description)


# -- settings -------------------------------------------------------------------------------


def test_a_missing_key_names_the_variable() -> None:
    with pytest.raises(LlmConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider(ProviderSettings(allow_cloud=True), env={})
    with pytest.raises(LlmConfigError, match="CLINIC_CLAUDE_KEY"):
        AnthropicProvider(
            ProviderSettings(key_variable="CLINIC_CLAUDE_KEY"), env={"ANTHROPIC_API_KEY": KEY}
        )


def test_description_and_capabilities() -> None:
    provider = make(Server(ok(message([TOOL_USE]))), base_url="http://127.0.0.1:8089")
    described = provider.description
    assert (described.provider, described.model, described.base_url) == (
        "anthropic",
        DEFAULT_ANTHROPIC_MODEL,
        "http://127.0.0.1:8089",
    )
    assert described.locality is Locality.LOCAL
    caps = described.capabilities
    assert (
        caps.forced_tool_choice
        and caps.strict_tools
        and caps.supports_images
        and caps.supports_thinking
    )


def test_the_default_model_is_one_the_sdk_knows() -> None:
    anthropic = require_sdk("anthropic")
    known = typing.get_args(typing.get_args(anthropic.types.Model)[0])
    assert DEFAULT_ANTHROPIC_MODEL in known and "sonnet" in DEFAULT_ANTHROPIC_MODEL


def test_close_leaves_an_injected_client_open() -> None:
    client = httpx2.Client(transport=httpx2.MockTransport(Server(ok(message([TOOL_USE])))))
    provider = AnthropicProvider(
        ProviderSettings(), http_client=client, env={"ANTHROPIC_API_KEY": KEY}
    )
    provider.close()
    assert not client.is_closed
    client.close()


def test_a_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "anthropic", None)
    with pytest.raises(LlmConfigError, match=r"pip install -e '\.\[llm\]'"):
        AnthropicProvider(ProviderSettings(), env={"ANTHROPIC_API_KEY": KEY})


MODEL_INFO = {
    "id": DEFAULT_ANTHROPIC_MODEL,
    "type": "model",
    "display_name": "Claude Sonnet",
    "created_at": "2026-01-01T00:00:00Z",
    "lifecycle": "active",
    "max_input_tokens": 1_000_000,
    "max_tokens": 64_000,
}


def test_the_opt_in_probe_checks_key_and_model_once() -> None:
    server = Server(ok(MODEL_INFO))
    provider = make(server, context_tokens=200_000)
    assert server.requests == []  # construction makes no call
    described = provider.probe()
    provider.probe()
    assert [r.url.path for r in server.requests] == [f"/v1/models/{DEFAULT_ANTHROPIC_MODEL}"]
    assert described.capabilities.context_tokens == 200_000  # the smaller of both
    assert described.capabilities.notes[-1] == f"model {DEFAULT_ANTHROPIC_MODEL}: active"
    assert make(Server(ok(MODEL_INFO))).probe().capabilities.context_tokens == 1_000_000
    with pytest.raises(LlmRequestRejected, match="unknown model"):
        make(Server(error(404, "not_found_error", "model: x")), model="claude-x").probe()
