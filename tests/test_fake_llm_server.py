"""The fake LLM server against the real SDK clients: types, retries, timeouts, errors, probes."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from fake_llm import (
    HOSTILE,
    DelayReply,
    EmptyReply,
    FakeLlmServer,
    FakeRequest,
    Flavour,
    HttpErrorReply,
    RawReply,
    RefusalReply,
    ResponderError,
    Script,
    TextReply,
    ToolCallReply,
    ToolResultSeen,
    TruncatedReply,
    always,
    planner,
)
from fake_llm import scripts as hostile

from agent.policies.llm.edits import TOOL_NAME, PlanEdits

SCHEMA = PlanEdits.model_json_schema()
CLAUDE_TOOL = {"name": TOOL_NAME, "description": "Propose edits.", "input_schema": SCHEMA}
GPT_TOOL = {"type": "function", "function": {"name": TOOL_NAME, "parameters": SCHEMA}}
MODEL = "claude-sonnet-4-6"
OK = always(hostile.valid())  # a responder: always the valid proposal


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    yield
    assert [t.name for t in threading.enumerate() if t.name.startswith("fake-llm")] == []


def claude(server: FakeLlmServer, *, retries: int = 0, timeout: float = 2.0) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="test-key", base_url=server.anthropic_base_url, max_retries=retries, timeout=timeout
    )


def gpt(server: FakeLlmServer, *, retries: int = 0, timeout: float = 2.0) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test-key", base_url=server.openai_base_url, max_retries=retries, timeout=timeout
    )


def ask_claude(client: anthropic.Anthropic, **extra: Any) -> Any:
    args: dict[str, Any] = {"model": MODEL, "max_tokens": 2048, "tools": [CLAUDE_TOOL]}
    args["system"] = "You plan radiotherapy. Objectives: O1 PTV lower 78 Gy."
    args["messages"] = [{"role": "user", "content": "Propose the next edits."}]
    return client.messages.create(**(args | extra))


def ask_gpt(client: openai.OpenAI, **extra: Any) -> Any:
    system = {"role": "system", "content": "You plan radiotherapy. O1 PTV lower 78 Gy."}
    messages = [system, {"role": "user", "content": "Propose the next edits."}]
    args: dict[str, Any] = {"model": "Qwen/Qwen3-32B", "max_tokens": 2048, "tools": [GPT_TOOL]}
    args["messages"] = messages
    return client.chat.completions.create(**(args | extra))


# -- reply kinds through the Anthropic SDK ---------------------------------------------------


def test_anthropic_tool_use_with_thinking_parses_into_sdk_blocks() -> None:
    reply = ToolCallReply(TOOL_NAME, hostile.VALID_EDITS, thinking="O1 is under-dosed.")
    with FakeLlmServer(always(reply)) as server:
        message = ask_claude(claude(server))
    thinking, call = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert thinking.thinking == "O1 is under-dosed." and thinking.signature.startswith("fake-sig-")
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert (call.name, call.id, call.input) == (TOOL_NAME, "toolu_fake000001", hostile.VALID_EDITS)
    assert message.stop_reason == "tool_use" and message.id == "msg_fake000001"
    assert message.model == MODEL and message._request_id == "req_fake000001"
    assert message.usage.input_tokens == math.ceil(len(server.requests[0].body) / 4)
    PlanEdits.model_validate(call.input)


def test_anthropic_refusal_truncation_empty_and_text() -> None:
    script = Script([RefusalReply("No."), hostile.truncated(), EmptyReply(), TextReply("Hm.")])
    with FakeLlmServer(script) as server:
        client = claude(server)
        refused, cut, empty, text = (ask_claude(client) for _ in range(4))
    assert refused.stop_reason == "refusal" and refused.stop_details.type == "refusal"
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 2048
    (partial,) = cut.content  # the partial JSON, parsed as far as it goes (as the SDK does)
    assert partial.type == "tool_use" and partial.input["assessment"].startswith("The rectum")
    assert empty.content == [] and empty.stop_reason == "end_turn"
    assert text.content[0].text == "Hm." and text.stop_reason == "end_turn"


def test_anthropic_raw_arguments_become_an_input_object() -> None:
    script = Script([hostile.malformed_json(), hostile.nan_values()])
    with FakeLlmServer(script) as server:
        client = claude(server)
        malformed, nan = ask_claude(client), ask_claude(client)
    assert malformed.content[0].input == {}  # the service always sends an object
    assert math.isnan(nan.content[0].input["changes"][0]["dose_gy"])


def test_anthropic_checks_thinking_rules_and_prefill() -> None:
    on = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    reply = ToolCallReply(TOOL_NAME, hostile.VALID_EDITS, thinking="O1 first.")
    with FakeLlmServer(always(reply)) as server:
        client = claude(server)
        first = ask_claude(client, **on)
        thought, use = (block.model_dump(exclude_none=True) for block in first.content)
        result = {
            "type": "tool_result",
            "tool_use_id": use["id"],
            "content": "no",
            "is_error": True,
        }

        def continued(*assistant: dict[str, Any]) -> Any:
            turns = [{"role": "assistant", "content": list(assistant)}]
            messages = [
                {"role": "user", "content": "go"},
                *turns,
                {"role": "user", "content": [result]},
            ]
            return ask_claude(client, messages=messages, **on)

        assert continued(thought, use).stop_reason == "tool_use"  # sent back unchanged: fine
        with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
            continued(thought | {"thinking": "edited"}, use)
        with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
            continued(use)
        with pytest.raises(anthropic.BadRequestError, match="tool_choice forces"):
            ask_claude(client, tool_choice={"type": "tool", "name": TOOL_NAME}, **on)
        with pytest.raises(anthropic.BadRequestError, match="prefill"):
            ask_claude(client, messages=[{"role": "assistant", "content": "{"}])
        assert len(server.llm_requests) == 2  # the refused ones never reach the responder


def test_anthropic_cache_control_writes_then_reads() -> None:
    system = [{"type": "text", "text": "x" * 8000, "cache_control": {"type": "ephemeral"}}]
    with FakeLlmServer(OK) as server:
        client = claude(server)
        first, second = ask_claude(client, system=system), ask_claude(client, system=system)
        short = ask_claude(client, system=[system[0] | {"text": "short"}])
    assert first.usage.cache_creation_input_tokens > 1024
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert (short.usage.cache_read_input_tokens, short.usage.cache_creation_input_tokens) == (0, 0)


# -- reply kinds through the OpenAI SDK ------------------------------------------------------


def test_openai_tool_calls_keep_the_raw_arguments_text() -> None:
    script = Script([hostile.malformed_json(), ToolCallReply(TOOL_NAME, {"done": True}, "why")])
    with FakeLlmServer(script, flavour="vllm") as server:
        client = gpt(server)
        loose = ask_gpt(client)
        named = ask_gpt(client, tool_choice={"type": "function", "function": {"name": TOOL_NAME}})
    (call,) = loose.choices[0].message.tool_calls
    assert call.function.arguments == hostile.malformed_json().arguments
    assert (call.id, loose.id) == ("call_fake000001", "chatcmpl-fake000001")
    assert loose.created == 1_700_000_000
    assert loose.choices[0].finish_reason == "tool_calls"
    assert named.choices[0].finish_reason == "stop"  # as with a forced function on OpenAI
    assert named.choices[0].message.model_extra == {"reasoning_content": "why"}
    assert loose.usage.prompt_tokens_details.cached_tokens == 0


def test_openai_refusal_length_and_empty() -> None:
    script = Script(
        [RefusalReply("No.", "content_filter"), TruncatedReply('{"assessment": "cu'), EmptyReply()]
    )
    with FakeLlmServer(script, flavour="openai") as server:
        client = gpt(server)
        refused, cut, empty = (ask_gpt(client) for _ in range(3))
    assert refused.choices[0].message.refusal == "No."
    assert refused.choices[0].finish_reason == "content_filter"
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 2048
    assert cut.choices[0].message.tool_calls[0].function.arguments == '{"assessment": "cu'
    assert empty.choices[0].message.content == "" and empty.choices[0].message.tool_calls is None


def test_ollama_ignores_tools_and_answers_in_content() -> None:
    reply = ToolCallReply(TOOL_NAME, hostile.VALID_EDITS, thinking="think")
    schema_format = {"type": "json_schema", "json_schema": {"name": TOOL_NAME, "schema": SCHEMA}}
    with FakeLlmServer(always(reply), flavour="ollama") as server:
        client = gpt(server)
        as_json = ask_gpt(client, response_format=schema_format, tool_choice="required")
        as_prose = ask_gpt(client)
    message = as_json.choices[0].message
    assert message.tool_calls is None and json.loads(message.content) == hostile.VALID_EDITS
    assert as_json.choices[0].finish_reason == "stop"
    assert message.model_extra == {"reasoning": "think"}
    assert "```json" in as_prose.choices[0].message.content
    assert as_json.usage.prompt_tokens_details is None  # Ollama reports no details
    assert "x-request-id" not in server.requests[0].headers


def test_openai_prefix_cache_counts_shared_tokens_in_steps_of_128() -> None:
    system = {"role": "system", "content": "s" * 9000}
    later = [system, {"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with FakeLlmServer(OK, flavour="vllm") as server:
        client = gpt(server)
        first, second = ask_gpt(client, messages=[system]), ask_gpt(client, messages=later)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 2176  # 9000 bytes / 4, floored


def test_context_window_refused_or_silently_truncated() -> None:
    long_prompt = [{"role": "user", "content": "y" * 20_000}]
    with FakeLlmServer(OK, context_tokens=2000) as server:
        client = claude(server)
        with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
            ask_claude(client, messages=long_prompt)
    with FakeLlmServer(OK, flavour="vllm", context_tokens=2000) as server:
        other = gpt(server)
        with pytest.raises(openai.BadRequestError, match="maximum context length"):
            ask_gpt(other, messages=long_prompt)
    with FakeLlmServer(OK, flavour="ollama", context_tokens=2000) as server:
        assert ask_gpt(gpt(server), messages=long_prompt).usage.prompt_tokens == 2000


# -- retries, timeouts, errors ---------------------------------------------------------------


def test_rate_limits_are_retried_then_succeed() -> None:
    script = hostile.rate_limited(OK, retry_after_ms=None)  # retry-after: 0
    with FakeLlmServer(script) as server:
        assert ask_claude(claude(server, retries=2)).stop_reason == "tool_use"
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1"]
    with FakeLlmServer(hostile.rate_limited(OK, times=2), flavour="vllm") as s:
        assert ask_gpt(gpt(s, retries=2)).choices[0].message.tool_calls and len(s.requests) == 3


def test_server_errors_until_the_retries_run_out() -> None:
    with FakeLlmServer(hostile.server_errors()) as server:
        client = claude(server, retries=2)
        with pytest.raises(anthropic.InternalServerError) as caught:
            ask_claude(client)
    assert caught.value.type == "api_error" and len(server.requests) == 3
    with FakeLlmServer(hostile.server_errors(503), flavour="llamacpp") as server:
        other = gpt(server, retries=1)
        with pytest.raises(openai.InternalServerError):
            ask_gpt(other)
    assert len(server.requests) == 2


def test_a_delay_beyond_the_client_timeout_is_an_sdk_timeout() -> None:
    with FakeLlmServer(hostile.slow(1.0)) as server:
        with pytest.raises(anthropic.APITimeoutError):
            ask_claude(claude(server, timeout=0.2))
        started = time.monotonic()
    assert time.monotonic() - started < 0.5  # the pending delay did not hold the shutdown
    script = Script([DelayReply(1.0, hostile.valid()), DelayReply(0.05, hostile.valid())])
    with FakeLlmServer(script, flavour="vllm") as server:
        client = gpt(server, timeout=0.2)
        with pytest.raises(openai.APITimeoutError):
            ask_gpt(client)
        assert ask_gpt(client).choices[0].finish_reason == "tool_calls"  # a short delay answers


def test_raw_bodies_that_are_not_a_message() -> None:
    cut, html = RawReply(b'{"id": "msg_1", "type": "mess'), RawReply(b"<html>", 200, "text/html")
    with FakeLlmServer(Script([cut, html])) as server:
        client = claude(server)
        with pytest.raises(json.JSONDecodeError):  # not an SDK error class: the SDK lets it out
            ask_claude(client)
        assert ask_claude(client) == "<html>"  # a str, not a Message
    with (
        FakeLlmServer(always(HttpErrorReply(418, body=b"teapot")), flavour="openai") as server,
        pytest.raises(openai.APIStatusError) as caught,
    ):
        ask_gpt(gpt(server))
    assert caught.value.status_code == 418 and caught.value.body == "teapot"


def test_a_responder_error_is_not_retried_and_reraised_on_exit() -> None:
    with (
        pytest.raises(ResponderError, match="ScriptExhausted"),
        FakeLlmServer(Script([])) as server,
    ):
        with pytest.raises(anthropic.InternalServerError):
            ask_claude(claude(server, retries=2))
        assert len(server.requests) == 1


def test_models_and_probes_per_flavour() -> None:
    with FakeLlmServer(always(EmptyReply()), models=[MODEL]) as server:
        assert [m.id for m in claude(server).models.list()] == [MODEL]
        with pytest.raises(anthropic.NotFoundError):
            claude(server).models.retrieve("claude-unknown")
    probes: dict[Flavour, dict[str, int]] = {
        "vllm": {"/api/version": 404, "/props": 404},
        "ollama": {"/api/version": 200, "/props": 404},
        "llamacpp": {"/api/version": 404, "/props": 200},
    }
    for flavour, statuses in probes.items():
        with FakeLlmServer(always(EmptyReply()), flavour=flavour, context_tokens=8192) as s:
            (model,) = gpt(s).models.list()
            answers = {p: httpx2.get(s.url + p, timeout=2.0) for p in statuses}
        assert (
            model.owned_by == flavour and {p: r.status_code for p, r in answers.items()} == statuses
        )
        assert all("error" in r.json() for r in answers.values() if r.status_code == 404)
        if flavour == "vllm":
            assert (model.model_extra or {})["max_model_len"] == 8192
        if flavour == "llamacpp":
            assert answers["/props"].json()["default_generation_settings"]["n_ctx"] == 8192


def test_recorded_requests_hold_the_exact_bytes_sent() -> None:
    sent: list[bytes] = []
    hooks = {"request": [lambda request: sent.append(request.read())]}
    with FakeLlmServer(OK) as server:
        client = anthropic.Anthropic(
            api_key="secret-key",
            base_url=server.anthropic_base_url,
            http_client=httpx2.Client(event_hooks=hooks),
            max_retries=0,
        )
        ask_claude(client)
    (record,) = server.requests
    assert record.body == sent[0] and record.json == json.loads(sent[0])
    assert record.headers["authorization"] == "[redacted]"
    assert "secret-key" not in repr(server.requests)


def test_fake_request_reads_prompt_tools_and_last_tool_result() -> None:
    seen: list[FakeRequest] = []

    def record(request: FakeRequest) -> ToolCallReply:
        seen.append(request)
        return hostile.valid()

    use = {"type": "tool_use", "id": "t1", "name": TOOL_NAME, "input": {}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": "bad O9", "is_error": True}
    messages = [
        {"role": "user", "content": "Objectives: O1 PTV."},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
    ]
    with FakeLlmServer(record) as server:
        ask_claude(claude(server), messages=messages)
    (request,) = seen
    assert request.prompt_text.split("\n\n") == [
        "You plan radiotherapy. Objectives: O1 PTV lower 78 Gy.",
        "Objectives: O1 PTV.",
        "bad O9",
    ]
    assert request.tool_names == [TOOL_NAME] and request.index == 0
    assert request.last_tool_result == ToolResultSeen("bad O9", True, "t1")


def test_planner_wiring_for_both_apis() -> None:
    def decide(prompt_text: str) -> dict[str, Any]:
        return {"assessment": f"read {prompt_text.count('O1')} mention(s) of O1", "done": True}

    with FakeLlmServer(planner(decide)) as server:
        block = ask_claude(claude(server)).content[0]
    with FakeLlmServer(planner(decide), flavour="vllm") as server:
        call = ask_gpt(gpt(server)).choices[0].message.tool_calls[0]
    assert block.input == json.loads(call.function.arguments) == decide("O1")


def test_hostile_replies_are_realistic_plan_edits_variants() -> None:
    schema_fails = {"malformed_json", "wrong_types", "stringified_nested", "schema_out_of_range"}
    schema_fails |= {"nan_values"}
    for name, make in HOSTILE.items():
        reply = make()
        if not isinstance(reply, ToolCallReply) or reply.name != TOOL_NAME:
            continue
        text = reply.arguments if isinstance(reply.arguments, str) else json.dumps(reply.arguments)
        if name in schema_fails:
            with pytest.raises(pydantic.ValidationError):
                PlanEdits.model_validate_json(text)
        else:
            PlanEdits.model_validate_json(text)  # the guardrails', not the schema's, business
    with FakeLlmServer(Script([m() for m in HOSTILE.values()])) as server:
        client = claude(server)
        stops = [ask_claude(client).stop_reason for _ in HOSTILE]
    assert {"tool_use", "end_turn", "refusal", "max_tokens"} == set(stops)
