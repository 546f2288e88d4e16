"""A fake LLM server on loopback that the real Anthropic and OpenAI SDK clients talk to.

``FakeLlmServer(responder, flavour=...)`` binds 127.0.0.1 on a free port and serves, in a
daemon thread, the Messages API (flavour "anthropic") or the Chat Completions API (flavours
"vllm", "ollama", "llamacpp", "openai") plus ``GET /v1/models`` and each flavour's probe
endpoint. Every request is recorded with its exact body bytes; every LLM call goes to the
responder, whose :data:`~fake_llm.replies.Reply` becomes the API's JSON. Ids, timestamps
and token counts are deterministic. Leaving the ``with`` block stops the server, ends any
pending :class:`~fake_llm.replies.DelayReply`, closes every connection and joins every
thread; an exception raised by the responder is re-raised there.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

from .images import prompt_tokens as count_prompt_tokens
from .loopback import LoopbackHttpServer, Outcome, json_outcome
from .replies import (
    DelayReply,
    HttpErrorReply,
    RawReply,
    Reply,
    ReplyContext,
    anthropic_error,
    anthropic_message,
    openai_completion,
    openai_error,
)
from .request import (
    Api,
    FakeRequest,
    RecordedRequest,
    Responder,
    anthropic_problem,
    openai_problem,
)
from .usage import PromptCache, tokens

Flavour = Literal["anthropic", "vllm", "ollama", "llamacpp", "openai"]
CREATED = 1_700_000_000
DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "anthropic": ("claude-sonnet-4-6", "claude-haiku-4-5"),
    "vllm": ("Qwen/Qwen3-32B",),
    "ollama": ("qwen3:32b",),
    "llamacpp": ("qwen3-32b-q4_k_m.gguf",),
    "openai": ("gpt-4.1",),
}
REASONING_FIELDS: dict[str, str | None] = {
    "anthropic": None,
    "vllm": "reasoning_content",
    "ollama": "reasoning",
    "llamacpp": "reasoning_content",
    "openai": None,
}
CREDENTIAL_HEADERS = ("x-api-key", "authorization", "api-key")
MODEL_CONTEXT_TOKENS = 32_768  # what the probes report when no context_tokens is set


class ResponderError(AssertionError):
    """The responder raised while serving (the SDK saw a 500 that it does not retry)."""


class FakeLlmServer:
    """A loopback fake of one LLM server flavour, driven by ``responder``.

    Parameters
    ----------
    responder
        Called once per LLM call with a :class:`FakeRequest`; returns a ``Reply``.
    flavour
        "anthropic" (Messages API) or an OpenAI-compatible server: "vllm" (honours a named
        ``tool_choice``), "ollama" (ignores ``tool_choice``; tools too unless
        ``honour_tools``), "llamacpp" (a named ``tool_choice`` acts as "required"), "openai".
    models
        The model ids ``GET /v1/models`` lists (default: one or two per flavour).
    context_tokens
        The context window: a longer prompt (about 4 bytes a token) is refused with the
        API's 400, except on Ollama, which silently truncates (usage shows the cut).
    honour_tools
        Whether tools are honoured (default: all flavours but Ollama). When not, a tool
        call is answered as message content: JSON when the request asked for a JSON
        ``response_format``, prose with a JSON code block otherwise.
    reasoning_field
        The message field that carries thinking on OpenAI-compatible flavours (default
        per flavour: vLLM and llama.cpp "reasoning_content", Ollama "reasoning", OpenAI none).
    owned_by
        ``owned_by`` in the OpenAI model list (default: the flavour's name).
    cache_min_tokens
        The shortest cacheable prefix (Anthropic ``cache_control``; OpenAI's automatic
        prefix cache counts in steps of 128 above it).
    record_credentials
        Keep ``x-api-key`` / ``authorization`` values in :attr:`requests` (default redacted).
    socket_timeout_s
        The timeout of every server-side socket operation.
    """

    def __init__(
        self,
        responder: Responder,
        *,
        flavour: Flavour = "anthropic",
        models: Sequence[str] | None = None,
        context_tokens: int | None = None,
        honour_tools: bool | None = None,
        reasoning_field: str | Literal["default"] | None = "default",
        owned_by: str | None = None,
        cache_min_tokens: int = 1024,
        record_credentials: bool = False,
        socket_timeout_s: float = 5.0,
        token_factor: float = 1.0,
    ) -> None:
        self.responder = responder
        self.flavour: Flavour = flavour
        self.api: Api = "anthropic" if flavour == "anthropic" else "openai"
        self.models = tuple(models) if models is not None else DEFAULT_MODELS[flavour]
        self.context_tokens = context_tokens
        self.honour_tools = flavour != "ollama" if honour_tools is None else honour_tools
        self.reasoning_field = (
            REASONING_FIELDS[flavour] if reasoning_field == "default" else reasoning_field
        )
        self.owned_by = owned_by or flavour
        self.cache_min_tokens = cache_min_tokens
        self.record_credentials = record_credentials
        self.socket_timeout_s = socket_timeout_s
        self.token_factor = token_factor  # > 1: a tokenizer that counts more than 4 bytes/token
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._llm_requests: list[FakeRequest] = []
        self._http_count = 0
        self._cache = PromptCache(cache_min_tokens)
        self._httpd: LoopbackHttpServer | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> FakeLlmServer:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the fake LLM server is already running")
        self._stopping.clear()
        self._httpd = LoopbackHttpServer(self.handle, socket_timeout_s=self.socket_timeout_s)
        self._httpd.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        """End pending delays, stop serving, close every connection and join the threads."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.stop(timeout_s)
        self._httpd = None

    def __enter__(self) -> FakeLlmServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None and self.errors:
            raise ResponderError(f"the responder raised: {self.errors[0]!r}") from self.errors[0]

    # -- addresses and records --------------------------------------------------------------

    @property
    def url(self) -> str:
        """The root URL, ``http://127.0.0.1:PORT``."""
        if self._httpd is None:
            raise RuntimeError("the fake LLM server is not running")
        return f"http://127.0.0.1:{self._httpd.port}"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic`` (the root: the SDK adds ``/v1/...``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def llm_requests(self) -> list[FakeRequest]:
        """The LLM calls that reached the responder, in order (a copy)."""
        with self._lock:
            return list(self._llm_requests)

    # -- serving -----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Outcome | None:
        """Record one request and answer it (None: drop the connection)."""
        try:
            parsed: Any | None = json.loads(body) if body else None
        except ValueError:
            parsed = None
        shown = {
            k: (v if self.record_credentials or k not in CREDENTIAL_HEADERS else "[redacted]")
            for k, v in headers.items()
        }
        with self._lock:
            self._http_count += 1
            request_id = f"req_fake{self._http_count:06d}"
            record = RecordedRequest(method, path, query, shown, body, parsed)
            self._requests.append(record)
        base = {"request-id": request_id} if self.api == "anthropic" else {}
        base |= {"x-request-id": request_id} if self.flavour != "ollama" else {}
        llm_path = "/v1/messages" if self.api == "anthropic" else "/v1/chat/completions"
        if method == "POST" and path == llm_path:
            return self._llm_call(record, request_id, base)
        found = self._static(method, path)
        if found is not None:
            return json_outcome(200, found, base)
        return self._error(404, f"Not found: {method} {path}", request_id, base)

    def _error(
        self, status: int, message: str, request_id: str, headers: dict[str, str]
    ) -> Outcome:
        payload = (
            anthropic_error(status, message, request_id)
            if self.api == "anthropic"
            else openai_error(status, message)
        )
        return json_outcome(status, payload, headers)

    def _static(self, method: str, path: str) -> Any | None:
        context = self.context_tokens or MODEL_CONTEXT_TOKENS
        if method == "GET" and path == "/v1/models":
            entries = [self._model_entry(m) for m in self.models]
            if self.api == "anthropic":
                first, last = (self.models[0], self.models[-1]) if self.models else (None, None)
                return {"data": entries, "has_more": False, "first_id": first, "last_id": last}
            return {"object": "list", "data": entries}
        if method == "GET" and path.startswith("/v1/models/"):
            model = path.removeprefix("/v1/models/")
            return self._model_entry(model) if model in self.models else None
        if self.flavour == "ollama" and method == "GET" and path == "/api/version":
            return {"version": "0.9.0"}
        if self.flavour == "ollama" and method == "POST" and path == "/api/show":
            return {
                "model_info": {"general.architecture": "qwen3", "qwen3.context_length": context},
                "capabilities": ["completion", "tools"] if self.honour_tools else ["completion"],
            }
        if self.flavour == "llamacpp" and method == "GET" and path == "/props":
            return {
                "default_generation_settings": {"n_ctx": context},
                "total_slots": 1,
                "model_path": f"models/{self.models[0] if self.models else 'model.gguf'}",
                "modalities": {"vision": False, "audio": False},
                "build_info": "b6000-fake",
            }
        return None

    def _model_entry(self, model: str) -> dict[str, Any]:
        if self.api == "anthropic":
            entry: dict[str, Any] = {
                "type": "model",
                "id": model,
                "display_name": model,
                "created_at": "2025-01-01T00:00:00Z",
                "lifecycle": "active",
            }
            if self.context_tokens is not None:
                entry["max_input_tokens"] = self.context_tokens
            return entry
        entry = {"id": model, "object": "model", "created": CREATED, "owned_by": self.owned_by}
        if self.flavour == "vllm":
            entry |= {"root": model, "parent": None}
            entry["max_model_len"] = self.context_tokens or MODEL_CONTEXT_TOKENS
        return entry

    def _llm_call(
        self, record: RecordedRequest, request_id: str, headers: dict[str, str]
    ) -> Outcome | None:
        body, parsed = record.body, record.json
        if not isinstance(parsed, dict):
            return self._error(400, "The request body is not valid JSON.", request_id, headers)
        problem = anthropic_problem(parsed) if self.api == "anthropic" else openai_problem(parsed)
        if problem is not None:
            return self._error(400, problem, request_id, headers)
        try:
            prompt_tokens = math.ceil(self.token_factor * count_prompt_tokens(body, parsed, tokens))
        except ValueError as exc:
            return self._error(400, f"Could not process image: {exc}", request_id, headers)
        if self.context_tokens is not None and prompt_tokens > self.context_tokens:
            if self.flavour != "ollama":
                return self._error(400, self._too_long(prompt_tokens), request_id, headers)
            prompt_tokens = self.context_tokens  # Ollama truncates without a word
        with self._lock:
            index = len(self._llm_requests)
            request = FakeRequest(self.api, self.flavour, index, parsed, record)
            self._llm_requests.append(request)
        try:
            reply: Reply = self.responder(request)
            while isinstance(reply, DelayReply):
                if self._stopping.wait(reply.seconds):
                    return None
                reply = reply.then
        except Exception as exc:  # reported when the server stops
            with self._lock:
                self.errors.append(exc)
            outcome = self._error(500, f"responder error: {exc!r}", request_id, headers)
            outcome.headers["x-should-retry"] = "false"
            return outcome
        if isinstance(reply, HttpErrorReply):
            outcome = (
                self._error(reply.status, reply.message, request_id, headers)
                if reply.body is None
                else Outcome(
                    reply.status,
                    reply.body
                    if isinstance(reply.body, bytes)
                    else json.dumps(reply.body).encode(),
                    headers=dict(headers),
                )
            )
            outcome.headers |= dict(reply.headers)
            return outcome
        if isinstance(reply, RawReply):
            return Outcome(
                reply.status, reply.body, reply.content_type, headers | dict(reply.headers)
            )
        context = self._reply_context(request, index, prompt_tokens)
        payload = (
            anthropic_message(reply, context)
            if self.api == "anthropic"
            else openai_completion(reply, context)
        )
        return json_outcome(200, payload, headers)

    def _too_long(self, prompt_tokens: int) -> str:
        if self.api == "anthropic":
            return f"prompt is too long: {prompt_tokens} tokens > {self.context_tokens} maximum"
        return (
            f"This model's maximum context length is {self.context_tokens} tokens. However, "
            f"you requested {prompt_tokens} tokens in the messages. Please reduce the length."
        )

    def _reply_context(self, request: FakeRequest, index: int, prompt_tokens: int) -> ReplyContext:
        n = index + 1
        if self.api == "anthropic":
            read, write = self._cache.anthropic(request.body)
            return ReplyContext(
                message_id=f"msg_fake{n:06d}",
                call_id=f"toolu_fake{n:06d}",
                model=request.model,
                input_tokens=max(1, prompt_tokens - read - write),
                created=CREATED,
                cache_read_tokens=read,
                cache_write_tokens=write,
                max_tokens=request.max_output_tokens,
            )
        forced = request.forced_tool_name is not None and self.flavour in ("vllm", "openai")
        return ReplyContext(
            message_id=f"chatcmpl-fake{n:06d}",
            call_id=f"call_fake{n:06d}",
            model=request.model,
            input_tokens=prompt_tokens,
            created=CREATED,
            openai_cached_tokens=None
            if self.flavour == "ollama"
            else self._cache.openai(request.body),
            max_tokens=request.max_output_tokens,
            forced_tool=forced and self.honour_tools,
            tools_as_text=not self.honour_tools,
            json_response_format=request.wants_json_schema,
            reasoning_field=self.reasoning_field,
        )
