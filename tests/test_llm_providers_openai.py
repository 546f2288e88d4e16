"""OpenAiCompatibleProvider over the real ``openai`` SDK, with the network replaced by an
``httpx2.MockTransport`` that plays a vLLM, Ollama, llama.cpp or OpenAI server (bodies shaped
after ``openai.types.chat.ChatCompletion`` and each server's model list)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from loguru import logger

from agent.policies.llm.edits import TOOL_DESCRIPTION, TOOL_NAME, PlanEdits
from agent.policies.llm.errors import (
    LlmAuthError,
    LlmBadResponse,
    LlmConfigError,
    LlmError,
    LlmRequestRejected,
    LlmServerError,
    LlmTimeout,
)
from agent.policies.llm.providers import Locality, OpenAiCompatibleProvider, ProviderSettings
from agent.policies.llm.providers.openai_wire import JSON_CONTENT_CALL_PREFIX
from agent.policies.llm.wire import (
    ImagePart,
    LlmRequest,
    StopKind,
    SystemPart,
    ToolResult,
    ToolSpec,
    Turn,
)

KEY = "sk-proj-TOPSECRET-0123456789abcdef"
MODEL = "Qwen/Qwen2.5-32B-Instruct"
BASE = "http://127.0.0.1:8000/v1"
TOOL = ToolSpec(
    name=TOOL_NAME, description=TOOL_DESCRIPTION, input_schema=PlanEdits.model_json_schema()
)
RAW_ARGS = '{"assessment":  "PTV D95 fails.", "changes": [ {"objective_id": "O1", "dose_gy": 61} ]}'
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def models(*ids: str, owned_by: str = "vllm", **extra: Any) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": 1, "owned_by": owned_by, **extra} for i in ids
        ],
    }


def completion(
    message: dict[str, Any], finish: str = "tool_calls", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Chat Completions response body."""
    return {
        "id": "chatcmpl-7",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage or {"prompt_tokens": 900, "completion_tokens": 100, "total_tokens": 1000},
    }


TOOL_CALL = {
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": TOOL_NAME, "arguments": RAW_ARGS}}
    ],
}


class Server:
    """Routes: ``GET .../models``, optional ``GET /api/version`` (Ollama) and ``GET /props``
    (llama.cpp), ``POST .../chat/completions`` with scripted answers (the last repeats)."""

    def __init__(
        self,
        listing: dict[str, Any] | httpx2.Response,
        *chat: dict[str, Any] | httpx2.Response,
        version: dict[str, Any] | None = None,
        props: dict[str, Any] | None = None,
    ) -> None:
        self.listing, self.chat, self.version, self.props = listing, list(chat), version, props
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path.endswith("/models"):
            return self._answer(self.listing)
        if path == "/api/version":
            return (
                httpx2.Response(200, json=self.version)
                if self.version
                else httpx2.Response(404, text="404 page not found")
            )
        if path == "/props":
            return (
                httpx2.Response(200, json=self.props)
                if self.props
                else httpx2.Response(404, json={"detail": "Not Found"})
            )
        if request.method == "POST" and path.endswith("/chat/completions"):
            return self._answer(self.chat.pop(0) if len(self.chat) > 1 else self.chat[0])
        return httpx2.Response(404)

    @staticmethod
    def _answer(answer: dict[str, Any] | httpx2.Response) -> httpx2.Response:
        return answer if isinstance(answer, httpx2.Response) else httpx2.Response(200, json=answer)

    def calls(self, suffix: str) -> list[httpx2.Request]:
        return [r for r in self.requests if r.url.path.endswith(suffix)]

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.calls("/chat/completions")]


def vllm(*chat: dict[str, Any] | httpx2.Response) -> Server:
    return Server(models(MODEL, max_model_len=32768), *chat)


def ollama(*chat: dict[str, Any] | httpx2.Response) -> Server:
    return Server(
        models("llama3.1:8b", "qwen2.5:14b", owned_by="library"),
        *chat,
        version={"version": "0.6.2"},
    )


def make(
    server: Server, env: dict[str, str] | None = None, **settings: Any
) -> OpenAiCompatibleProvider:
    values: dict[str, Any] = {
        "provider": "openai-compatible",
        "base_url": BASE,
        "model": MODEL,
        "max_retries": 0,
    }
    values.update(settings)
    client = httpx2.Client(transport=httpx2.MockTransport(server))
    return OpenAiCompatibleProvider(
        ProviderSettings(**values), http_client=client, env=env if env is not None else {}
    )


def ask(*turns: Turn) -> LlmRequest:
    return LlmRequest(
        system=[
            SystemPart(text="You plan radiotherapy.", cacheable=True),
            SystemPart(text="Goals: ..."),
        ],
        turns=list(turns) or [Turn(role="user", text="Propose the next edits.")],
        tool=TOOL,
    )


@pytest.fixture
def logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG")
    yield lines
    logger.remove(sink)


# -- probe paths ----------------------------------------------------------------------------


def test_vllm_gets_a_named_tool_choice_and_strict_tools() -> None:
    server = vllm(completion(TOOL_CALL))
    provider = make(server)
    reply = provider.complete(ask())
    provider.complete(ask())
    assert len(server.calls("/models")) == 1  # probed once
    assert server.calls("/api/version") == []  # owned_by said vLLM
    body = server.chat_bodies[0]
    assert body["tool_choice"] == {"type": "function", "function": {"name": TOOL_NAME}}
    function = body["tools"][0]["function"]
    assert body["tools"][0]["type"] == "function" and function["strict"] is True
    assert function["parameters"]["required"] == list(function["parameters"]["properties"])
    assert body["max_tokens"] == 4096 and "max_completion_tokens" not in body
    assert body["parallel_tool_calls"] is False
    assert not {"temperature", "top_p"} & set(body)
    assert body["messages"][0] == {
        "role": "system",
        "content": "You plan radiotherapy.\n\nGoals: ...",
    }
    assert body["messages"][1:] == [{"role": "user", "content": "Propose the next edits."}]
    [call] = reply.tool_calls
    assert (call.call_id, call.name, call.arguments_text) == (
        "call_1",
        TOOL_NAME,
        RAW_ARGS,
    )  # raw text kept
    assert reply.stop is StopKind.TOOL_USE
    caps = provider.description.capabilities
    assert (
        provider.server_kind == "vllm" and caps.forced_tool_choice and caps.context_tokens == 32768
    )
    assert any("vLLM" in note for note in caps.notes)
    assert server.calls("/models")[0].headers["authorization"] == "Bearer not-needed"


def test_ollama_falls_back_to_a_json_schema_response_format(logs: list[str]) -> None:
    content = json.dumps({"assessment": "ok", "done": True})
    server = ollama(completion({"content": content}, finish="stop"))
    provider = make(server, model="llama3.1:8b", base_url="http://localhost:11434/v1")
    reply = provider.complete(ask())
    body = server.chat_bodies[0]
    assert "tools" not in body and "tool_choice" not in body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == TOOL_NAME
    assert (
        fmt["json_schema"]["strict"] is True
        and fmt["json_schema"]["schema"]["additionalProperties"] is False
    )
    assert TOOL_NAME in body["messages"][0]["content"]  # the JSON-answer line in the system message
    [call] = reply.tool_calls
    assert call.name == TOOL_NAME and call.arguments_text == content
    assert call.call_id == f"{JSON_CONTENT_CALL_PREFIX}chatcmpl-7"
    assert reply.stop is StopKind.TOOL_USE and reply.text == ""
    caps = provider.description.capabilities
    assert (
        provider.server_kind == "ollama"
        and not caps.forced_tool_choice
        and caps.json_schema_response_format
    )
    assert any("ignores tool_choice" in n for n in caps.notes)
    assert any("silently truncates" in n for n in caps.notes)
    assert "context_tokens is not configured" in caps.notes
    assert any("WARNING" in line and "num_ctx" in line for line in logs)
    # the repair goes back as user text: there is no tool call id to answer
    provider.complete(
        ask(
            Turn(role="user", text="Propose the next edits."),
            Turn(role="assistant", provider_turn=reply.provider_turn),
            Turn(
                role="user",
                tool_result=ToolResult(call_id=call.call_id, content="bad O9", is_error=True),
            ),
        )
    )
    sent = server.chat_bodies[1]["messages"]
    assert sent[2] == {"role": "assistant", "content": content}
    assert sent[3] == {"role": "user", "content": "ERROR: bad O9"}


def test_ollama_with_context_tokens_needs_no_warning(logs: list[str]) -> None:
    server = ollama(completion({"content": "{}"}, finish="stop"))
    provider = make(
        server, model="qwen2.5:14b", base_url="http://[::1]:11434/v1", context_tokens=16384
    )
    assert provider.probe().capabilities.context_tokens == 16384
    assert not any("WARNING" in line for line in logs)


def test_llama_cpp_gets_tool_choice_required() -> None:
    server = Server(
        models("qwen.gguf", owned_by="llamacpp"),
        completion(TOOL_CALL),
        props={"default_generation_settings": {"n_ctx": 8192}, "total_slots": 1},
    )
    provider = make(server, model="qwen.gguf")
    provider.complete(ask())
    assert server.chat_bodies[0]["tool_choice"] == "required"
    assert (
        provider.server_kind == "llama.cpp"
        and provider.description.capabilities.context_tokens == 8192
    )


def test_an_unknown_server_is_not_an_error() -> None:
    server = Server(models(MODEL, owned_by="someone"), completion(TOOL_CALL))
    provider = make(server)
    provider.complete(ask())
    assert len(server.calls("/api/version")) == 1 and len(server.calls("/props")) == 1
    assert provider.server_kind == "unknown"
    assert server.chat_bodies[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": TOOL_NAME},
    }
    assert provider.description.capabilities.forced_tool_choice is False


def test_an_unknown_model_lists_the_served_ones() -> None:
    provider = make(
        ollama(completion(TOOL_CALL)), model="mistral", base_url="http://localhost:11434/v1"
    )
    with pytest.raises(LlmConfigError, match="'mistral' is not served") as caught:
        provider.complete(ask())
    assert "llama3.1:8b, qwen2.5:14b" in str(caught.value)


def test_the_model_resolves_when_the_server_serves_one() -> None:
    provider = make(
        Server(models("llama3.1:latest", owned_by="library"), version={"version": "0.6"}),
        model=None,
    )
    assert provider.probe().model == "llama3.1:latest"
    named = make(Server(models("llama3.1:latest", owned_by="library")), model="llama3.1")
    assert named.probe().model == "llama3.1:latest"  # Ollama's implicit tag
    several = make(ollama(), model=None)
    with pytest.raises(LlmConfigError, match="serves 2"):
        several.probe()


def test_openai_itself_is_cloud_and_uses_max_completion_tokens() -> None:
    server = Server(models("gpt-5.2", owned_by="system"), completion(TOOL_CALL))
    provider = make(
        server, env={"OPENAI_API_KEY": KEY}, base_url=None, model="gpt-5.2", allow_cloud=True
    )
    assert provider.description.locality is Locality.CLOUD
    provider.complete(ask())
    body = server.chat_bodies[0]
    assert body["max_completion_tokens"] == 4096 and "max_tokens" not in body
    assert server.requests[0].url.host == "api.openai.com"
    assert server.calls("/api/version") == [] and provider.server_kind == "openai"
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_cloud_needs_a_key_and_a_model() -> None:
    with pytest.raises(LlmConfigError, match="OPENAI_API_KEY"):
        make(Server(models(MODEL)), base_url=None, allow_cloud=True)
    with pytest.raises(LlmConfigError, match="LAB_KEY"):
        make(Server(models(MODEL)), base_url="https://llm.example.com/v1", key_variable="LAB_KEY")
    with pytest.raises(LlmConfigError, match="--model"):
        make(Server(models(MODEL)), env={"OPENAI_API_KEY": KEY}, base_url=None, model=None)


# -- translation ----------------------------------------------------------------------------


def test_a_continued_exchange_sends_the_assistant_message_back_unchanged() -> None:
    server = vllm(completion(TOOL_CALL), completion(TOOL_CALL))
    provider = make(server)
    reply = provider.complete(ask())
    assert reply.provider_turn == {
        "role": "assistant",
        "content": "",
        "tool_calls": TOOL_CALL["tool_calls"],
    }
    provider.complete(
        ask(
            Turn(role="user", text="Propose the next edits."),
            Turn(role="assistant", provider_turn=reply.provider_turn),
            Turn(
                role="user",
                tool_result=ToolResult(call_id="call_1", content="accepted"),
                text="Next iteration.",
            ),
        )
    )
    sent = server.chat_bodies[1]["messages"]
    assert sent[2] == reply.provider_turn
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "accepted"}
    assert sent[4] == {"role": "user", "content": "Next iteration."}


def test_images_are_data_url_parts() -> None:
    server = vllm(completion(TOOL_CALL))
    make(server).complete(
        ask(Turn(role="user", text="Judge it.", images=[ImagePart(data_b64=PNG)]))
    )
    assert server.chat_bodies[0]["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "text", "text": "Judge it."},
    ]


@pytest.mark.parametrize(
    ("message", "finish", "stop"),
    [
        ({"content": "Done thinking."}, "stop", StopKind.END_TURN),
        ({"content": "cut he"}, "length", StopKind.MAX_TOKENS),
        ({"content": ""}, "content_filter", StopKind.REFUSAL),
        ({"content": None, "refusal": "I can't assist with that."}, "stop", StopKind.REFUSAL),
    ],
)
def test_text_replies_and_finish_reasons(
    message: dict[str, Any], finish: str, stop: StopKind
) -> None:
    reply = make(vllm(completion(message, finish=finish))).complete(ask())
    assert reply.stop is stop and reply.tool_calls == []
    assert reply.text == (message.get("content") or message.get("refusal") or "")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_from_non_standard_fields(field: str) -> None:
    message = {**TOOL_CALL, field: "D95 is short; raise the PTV lower objective."}
    reply = make(vllm(completion(message))).complete(ask())
    assert reply.reasoning == "D95 is short; raise the PTV lower objective."
    assert field not in json.dumps(reply.provider_turn)


def test_reasoning_from_a_think_block() -> None:
    reply = make(
        vllm(completion({"content": "<think>check rectum</think>\nAll goals met."}, finish="stop"))
    ).complete(ask())
    assert (reply.reasoning, reply.text) == ("check rectum", "All goals met.")


def test_usage_with_cached_tokens() -> None:
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 150,
        "total_tokens": 2150,
        "prompt_tokens_details": {"cached_tokens": 1536},
    }
    reply = make(vllm(completion(TOOL_CALL, usage=usage))).complete(ask())
    assert (
        reply.usage.input_tokens,
        reply.usage.output_tokens,
        reply.usage.cached_input_tokens,
    ) == (2000, 150, 1536)
    assert reply.model == MODEL


def test_the_estimate_needs_no_network() -> None:
    server = vllm(completion(TOOL_CALL))
    tokens = make(server).estimate_input_tokens(ask())
    assert 300 < tokens < 3000 and server.requests == []


# -- errors ---------------------------------------------------------------------------------


def _status(status: int, text: str, **headers: str) -> httpx2.Response:
    return httpx2.Response(
        status, json={"error": {"message": text, "type": "error", "code": None}}, headers=headers
    )


def test_401_in_the_probe_is_an_auth_error() -> None:
    server = Server(_status(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(LlmAuthError, match="OPENAI_API_KEY") as caught:
        make(server, env={"OPENAI_API_KEY": KEY}).probe()
    assert "TOPSECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "text"), [(400, "tool_choice not supported"), (404, "The model `x` does not exist.")]
)
def test_refused_requests(status: int, text: str) -> None:
    with pytest.raises(LlmRequestRejected, match=f"HTTP {status}") as caught:
        make(vllm(_status(status, text))).complete(ask())
    assert text in str(caught.value)


def test_429_with_retry_after_then_success() -> None:
    server = vllm(_status(429, "rate limited", **{"retry-after-ms": "1"}), completion(TOOL_CALL))
    reply = make(server, max_retries=2).complete(ask())
    posts = server.calls("/chat/completions")
    assert (
        reply.tool_calls and len(posts) == 2 and posts[1].headers["x-stainless-retry-count"] == "1"
    )


def test_500_until_the_retries_run_out() -> None:
    server = vllm(_status(500, "CUDA out of memory", **{"retry-after-ms": "1"}))
    with pytest.raises(LlmServerError, match="CUDA out of memory"):
        make(server, max_retries=2).complete(ask())
    assert len(server.calls("/chat/completions")) == 3


def test_a_timeout() -> None:
    def hang(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/models"):
            return httpx2.Response(200, json=models(MODEL))
        raise httpx2.ReadTimeout("timed out", request=request)

    client = httpx2.Client(transport=httpx2.MockTransport(hang))
    settings = ProviderSettings(
        provider="openai-compatible", base_url=BASE, model=MODEL, max_retries=0, timeout_s=3
    )
    with pytest.raises(LlmTimeout, match="within 3 s"):
        OpenAiCompatibleProvider(settings, http_client=client, env={}).complete(ask())


@pytest.mark.parametrize(
    "response",
    [
        httpx2.Response(
            200, text="<html>proxy login</html>", headers={"content-type": "text/html"}
        ),
        httpx2.Response(200, text="{oops", headers={"content-type": "application/json"}),
        httpx2.Response(200, json={"choices": []}),
    ],
)
def test_a_body_that_is_not_a_completion(response: httpx2.Response) -> None:
    with pytest.raises(LlmBadResponse):
        make(vllm(response)).complete(ask())


def test_the_key_never_appears_in_errors_or_logs(logs: list[str]) -> None:
    texts = []
    for answer in (_status(401, f"bad key {KEY}"), _status(400, f"echo {KEY}"), _status(503, KEY)):
        with pytest.raises(LlmError) as caught:
            make(vllm(answer), env={"OPENAI_API_KEY": KEY}).complete(ask())
        texts.append(str(caught.value))
    assert "[redacted]" in texts[1]
    assert all("TOPSECRET" not in text for text in texts + logs)
