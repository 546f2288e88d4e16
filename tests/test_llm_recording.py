"""Record and replay of LLM HTTP exchanges through the real SDK clients.

The server is an ``httpx2.MockTransport`` answering with valid Messages / Chat Completions
JSON; the SDK clients (``anthropic.Anthropic``, ``openai.OpenAI``) are real, so their request
building, retries and error handling run as in production.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from agent.policies.llm.errors import LlmError
from agent.policies.llm.recording import (
    LLM_DIRNAME,
    REQUEST_HEADERS,
    ExchangeCorrupted,
    ExchangeStore,
    RecordedRequest,
    RecordingError,
    RecordingTransport,
    ReplayExhausted,
    ReplayMismatch,
    ReplayTransport,
    canonical_json_bytes,
)

SECRET = "sk-test-SECRET"
TOOL = "propose_plan_edits"
PROMPT = "Current objectives: PTV_70 lower 69.5 Gy priority 120; Rectum V65 < 17 %."
Handler = Callable[[httpx2.Request], httpx2.Response]


def anthropic_json(request: httpx2.Request) -> dict[str, Any]:
    body = json.loads(request.content)
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [
            {"type": "tool_use", "id": "toolu_01", "name": TOOL, "input": {"edits": []}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 80, "cache_read_input_tokens": 300},
    }


def openai_json(request: httpx2.Request) -> dict[str, Any]:
    body = json.loads(request.content)
    function = {"name": TOOL, "arguments": '{"edits": []}'}
    call: dict[str, Any] = {"id": "call_1", "type": "function", "function": function}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
            }
        ],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280},
    }


class Sdk:
    """One SDK: how to build its client and make one tool call with it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.answer = anthropic_json if name == "anthropic" else openai_json

    def client(self, transport: httpx2.BaseTransport, max_retries: int = 2) -> Any:
        http = httpx2.Client(transport=transport)
        base = "http://127.0.0.1:8765"
        if self.name == "anthropic":
            return anthropic.Anthropic(
                api_key=SECRET, base_url=base, http_client=http, max_retries=max_retries
            )
        return openai.OpenAI(
            api_key=SECRET, base_url=base + "/v1", http_client=http, max_retries=max_retries
        )

    def call(self, client: Any, prompt: str = PROMPT) -> Any:
        if self.name == "anthropic":
            tool = {"name": TOOL, "description": "edits", "input_schema": {"type": "object"}}
            return client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=256,
                system="You are a treatment planner.",
                messages=[{"role": "user", "content": prompt}],
                tools=[tool],
                tool_choice={"type": "tool", "name": TOOL},
            )
        fn = {"name": TOOL, "description": "edits", "parameters": {"type": "object"}}
        return client.chat.completions.create(
            model="qwen3",
            messages=[{"role": "user", "content": prompt}],
            tools=[{"type": "function", "function": fn}],
            tool_choice={"type": "function", "function": {"name": TOOL}},
        )

    def ok(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            json=self.answer(request),
            headers={"request-id": "req_1", "set-cookie": "session=abc", "x-secret": SECRET},
        )


@pytest.fixture(params=["anthropic", "openai"])
def sdk(request: pytest.FixtureRequest) -> Sdk:
    return Sdk(request.param)


@pytest.fixture
def store(tmp_path: Path) -> ExchangeStore:
    return ExchangeStore.for_session(tmp_path)


def scripted(*steps: Handler | Exception) -> tuple[Handler, list[httpx2.Request]]:
    """A handler answering with ``steps`` in order (an exception is raised), and its log."""
    seen: list[httpx2.Request] = []
    queue: Iterator[Handler | Exception] = iter(steps)

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        step = next(queue)
        if isinstance(step, Exception):
            raise step
        return step(request)

    return handle, seen


def record(sdk: Sdk, store: ExchangeStore, *steps: Handler | Exception, **kw: Any) -> Any:
    handler, _ = scripted(*steps)
    recorder = RecordingTransport(httpx2.MockTransport(handler), store)
    result = sdk.call(sdk.client(recorder, **kw))
    return result, recorder.take()


def test_store_round_trip_is_content_addressed(store: ExchangeStore) -> None:
    obj = {"b": [1, 2.5, None], "a": "Gy ≥ 70 — ü", "c": {"z": True}}
    digest = store.put(obj)
    assert digest == hashlib.sha256(canonical_json_bytes(obj)).hexdigest()
    assert store.path_of(digest) == store.directory / f"{digest}.json"
    assert store.directory.name == LLM_DIRNAME
    assert store.get(digest) == obj
    assert store.put(dict(reversed(obj.items()))) == digest  # key order does not matter
    assert [p.name for p in store.directory.iterdir()] == [f"{digest}.json"]


def test_a_changed_file_is_refused_by_name(store: ExchangeStore) -> None:
    digest = store.put({"prompt": "PTV 70 Gy"})
    path = store.path_of(digest)
    path.write_text(path.read_text(encoding="utf-8").replace("70", "60"), encoding="utf-8")
    with pytest.raises(ExchangeCorrupted, match=str(path)) as err:
        store.get(digest)
    assert isinstance(err.value, LlmError)
    with pytest.raises(RecordingError, match="cannot read"):
        store.get("0" * 64)
    with pytest.raises(RecordingError, match="not an exchange hash"):
        store.get("../../etc/passwd")


def test_request_body_is_kept_exactly_and_headers_are_allowlisted() -> None:
    body = "x" * 40_000 + "\x01\t\n"  # longer than free text may be, with control characters
    sha = hashlib.sha256(body.encode()).hexdigest()
    req = RecordedRequest(method="POST", path="/v1/messages", body_text=body, body_sha256=sha)
    assert req.body_text == body
    with pytest.raises(ValueError, match="x-api-key"):
        RecordedRequest(
            method="POST", path="/", headers={"x-api-key": SECRET}, body_text="", body_sha256=sha
        )


def test_record_then_replay_gives_the_same_parsed_response(sdk: Sdk, store: ExchangeStore) -> None:
    recorded, hashes = record(sdk, store, sdk.ok)
    assert len(hashes) == 1
    exchange = store.get_exchange(hashes[0])
    assert exchange.request.method == "POST"
    assert exchange.request.path in ("/v1/messages", "/v1/chat/completions")
    assert set(exchange.request.headers) <= set(REQUEST_HEADERS)
    assert PROMPT in exchange.request.body_text
    assert exchange.response is not None and exchange.response.status == 200
    assert exchange.response.headers["request-id"] == "req_1"
    assert "set-cookie" not in exchange.response.headers

    replay = ReplayTransport(store, hashes)
    replayed = sdk.call(sdk.client(replay))
    assert replayed.model_dump() == recorded.model_dump()
    assert replay.remaining == 0


def test_a_changed_prompt_is_a_mismatch_with_offset_and_context(
    sdk: Sdk, store: ExchangeStore
) -> None:
    _, hashes = record(sdk, store, sdk.ok)
    recorded_body = store.get_exchange(hashes[0]).request.body_text
    changed = PROMPT.replace("Rectum", "Bladder")
    expected = recorded_body.index(PROMPT) + PROMPT.index("Rectum")
    replay = ReplayTransport(store, hashes)
    with pytest.raises(ReplayMismatch) as err:  # surfaces unwrapped, not retried
        sdk.call(sdk.client(replay), prompt=changed)
    assert err.value.index == 0 and err.value.offset == expected
    message = str(err.value)
    assert f"character {expected}" in message and "exchange 1 of 1" in message
    assert "Rectum V65" in message and "Bladder V65" in message
    assert replay.remaining == 1  # nothing consumed by retries


def test_running_past_the_end_is_exhausted(sdk: Sdk, store: ExchangeStore) -> None:
    _, hashes = record(sdk, store, sdk.ok)
    replay = ReplayTransport(store, hashes)
    client = sdk.client(replay)
    sdk.call(client)
    with pytest.raises(ReplayExhausted, match="1 recorded LLM exchanges were served"):
        sdk.call(client)


def test_retries_are_separate_attempts_and_replay_alike(sdk: Sdk, store: ExchangeStore) -> None:
    def limited(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            429, json={"error": {"type": "rate_limit_error"}}, headers={"retry-after-ms": "1"}
        )

    recorded, hashes = record(sdk, store, limited, sdk.ok)
    exchanges = [store.get_exchange(h) for h in hashes]
    assert [e.attempt for e in exchanges] == [0, 1]
    assert [e.response.status for e in exchanges if e.response] == [429, 200]
    assert exchanges[0].request.body_text == exchanges[1].request.body_text
    replay = ReplayTransport(store, hashes)
    assert sdk.call(sdk.client(replay)).model_dump() == recorded.model_dump()
    assert replay.remaining == 0


def test_a_transport_timeout_is_recorded_and_replayed(sdk: Sdk, store: ExchangeStore) -> None:
    recorded, hashes = record(sdk, store, httpx2.ReadTimeout("timed out"), sdk.ok, max_retries=1)
    first = store.get_exchange(hashes[0])
    assert first.error == "ReadTimeout" and first.response is None
    replay = ReplayTransport(store, hashes)
    assert sdk.call(sdk.client(replay, max_retries=1)).model_dump() == recorded.model_dump()
    assert replay.remaining == 0


def test_a_persistent_timeout_replays_as_the_sdks_timeout_error(store: ExchangeStore) -> None:
    sdk = Sdk("anthropic")
    with pytest.raises(anthropic.APITimeoutError):
        record(sdk, store, httpx2.ConnectTimeout("slow"), max_retries=0)
    hashes = sorted(p.stem for p in store.directory.iterdir())
    replay = ReplayTransport(store, hashes)
    with pytest.raises(anthropic.APITimeoutError) as err:
        sdk.call(sdk.client(replay, max_retries=0))
    assert isinstance(err.value.__cause__, httpx2.ConnectTimeout)


def test_the_api_key_is_never_recorded(sdk: Sdk, store: ExchangeStore) -> None:
    def limited(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(429, json={}, headers={"retry-after-ms": "1"})

    record(sdk, store, limited, sdk.ok)
    files = list(store.directory.iterdir())
    assert len(files) == 2
    for path in files:
        text = path.read_text(encoding="utf-8").lower()
        assert SECRET.lower() not in text
        assert "x-api-key" not in text and "authorization" not in text and "cookie" not in text


def test_a_compressed_response_is_recorded_decoded(store: ExchangeStore) -> None:
    sdk = Sdk("anthropic")

    def gzipped(request: httpx2.Request) -> httpx2.Response:
        raw = gzip.compress(json.dumps(anthropic_json(request)).encode())
        headers = {"content-encoding": "gzip", "content-type": "application/json"}
        return httpx2.Response(200, content=raw, headers=headers)

    recorded, hashes = record(sdk, store, gzipped)
    exchange = store.get_exchange(hashes[0])
    assert exchange.response is not None and '"toolu_01"' in exchange.response.body_text
    replayed = sdk.call(sdk.client(ReplayTransport(store, hashes)))
    assert replayed.model_dump() == recorded.model_dump()


def test_a_tampered_exchange_is_refused_before_any_request(store: ExchangeStore) -> None:
    _, hashes = record(Sdk("openai"), store, Sdk("openai").ok)
    path = store.path_of(hashes[0])
    path.write_bytes(path.read_bytes().replace(b"call_1", b"call_2"))
    with pytest.raises(ExchangeCorrupted, match=hashes[0]):
        ReplayTransport(store, hashes)


def test_concurrent_attempts_are_all_recorded_once(store: ExchangeStore) -> None:
    recorder = RecordingTransport(httpx2.MockTransport(lambda r: httpx2.Response(204)), store)

    def send(worker: int) -> None:
        for i in range(10):
            recorder.handle_request(httpx2.Request("POST", "http://h/x", content=f"{worker}:{i}"))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = recorder.take()
    assert len(taken) == len(set(taken)) == 60
    assert recorder.take() == []
