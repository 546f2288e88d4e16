"""Record and replay every LLM HTTP exchange, content-addressed beside the journal.

:class:`RecordingTransport` wraps an SDK client's transport: each HTTP attempt, retries
included, becomes a :class:`RecordedExchange` in ``<session>/llm/<sha256>.json``
(:class:`ExchangeStore`). :class:`ReplayTransport` serves them in order and requires each
request to equal the recorded one byte for byte. Recorded: method, path and query (no scheme,
host), the exact body, allowlisted headers (never ``x-api-key``, ``authorization``, cookies or
any other); a transport failure as its exception class, replayed as the same ``httpx2`` error.

The errors here also derive from the installed SDKs' base errors: the Anthropic SDK turns any
other exception raised in its transport into a retryable ``APIConnectionError`` (a mismatch
would vanish into retries); both SDKs pass their own errors through unchanged. A provider's
error mapping must let :class:`LlmError` through before it maps SDK errors.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import httpx2
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from agent.policies.llm.errors import LlmError
from rtplan_common.atomic_io import atomic_writer, describe_os_error
from rtplan_common.models import FrozenModel

#: The folder of recorded exchanges inside a session directory.
LLM_DIRNAME = "llm"
#: The only request headers recorded (none carries a credential).
REQUEST_HEADERS = ("content-type", "anthropic-version", "anthropic-beta", "openai-beta")
#: The only response headers recorded: those the SDKs read to parse, retry and identify.
_RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
RESPONSE_HEADERS = ("content-type", *_RETRY_HEADERS, "request-id", "x-request-id")
_ATTEMPT_HEADER = "x-stainless-retry-count"  # the SDKs' retry counter (not recorded as header)
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTEXT_CHARS = 60


def _sdk_error_bases() -> tuple[type[Exception], ...]:
    """The installed SDKs' base errors, which their retry loops pass through unchanged."""
    found: list[type[Exception]] = []
    for module, name in (("anthropic", "AnthropicError"), ("openai", "OpenAIError")):
        with suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


class RecordingError(LlmError, *_sdk_error_bases()):  # type: ignore[misc]  # dynamic SDK bases
    """An exchange could not be recorded or read back (see the module docstring for the bases)."""


class ExchangeCorrupted(RecordingError):
    """A stored exchange file does not match its hash or is not a recorded exchange."""


class ReplayMismatch(RecordingError):
    """A request differs from the recorded one (method, path, a recorded header or the body)."""

    def __init__(self, message: str, *, index: int, offset: int | None = None) -> None:
        super().__init__(message)
        self.index = index  # 0-based position of the exchange in the replay
        self.offset = offset  # first differing character of the body, if the body differs


class ReplayExhausted(RecordingError):
    """A request arrived after every recorded exchange had been served."""


def canonical_json_bytes(obj: Any) -> bytes:
    """The canonical UTF-8 JSON of ``obj`` (sorted keys, no blanks, no NaN): what is hashed."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


class _Verbatim(FrozenModel):
    """A message: ``body_text`` kept exactly (not cleaned, not cut), headers in an allowlist."""

    _allowlist: ClassVar[tuple[str, ...]] = ()
    headers: dict[str, str] = Field(default_factory=dict)
    body_text: str

    @field_validator("*", mode="after")
    @classmethod
    def _clean_strings(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name == "body_text":
            return value
        return super()._clean_strings(value, info)

    @model_validator(mode="after")
    def _allowed_headers(self) -> _Verbatim:
        extra = sorted(set(self.headers) - set(self._allowlist))
        if extra:
            raise ValueError(f"headers outside the allowlist: {', '.join(extra)}")
        return self


class RecordedRequest(_Verbatim):
    """A request as sent: no scheme, host or credential; ``body_text`` is the exact body."""

    _allowlist = REQUEST_HEADERS
    method: Annotated[str, Field(pattern=r"^[A-Z]{1,16}$")]
    path: Annotated[str, Field(min_length=1, max_length=4096)]  # path and query
    body_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="after")
    def _body_hash(self) -> RecordedRequest:
        if sha256_hex(self.body_text.encode("utf-8")) != self.body_sha256:
            raise ValueError("body_sha256 is not the hash of body_text")
        return self


class RecordedResponse(_Verbatim):
    """A response as received (body decoded as the client sees it: content encoding undone)."""

    _allowlist = RESPONSE_HEADERS
    status: Annotated[int, Field(ge=100, le=599)]


class RecordedExchange(FrozenModel):
    """One HTTP attempt: the request and either the response or the transport error's class."""

    schema_version: Literal[1] = 1
    attempt: Annotated[int, Field(ge=0)] = 0  # the SDK's retry count of this attempt
    request: RecordedRequest
    response: RecordedResponse | None = None
    error: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")] | None = None
    elapsed_s: Annotated[float, Field(ge=0)] = 0.0  # not compared by the replay

    @model_validator(mode="after")
    def _one_outcome(self) -> RecordedExchange:
        if (self.response is None) == (self.error is None):
            raise ValueError("an exchange has either a response or an error, not both or neither")
        return self


class ExchangeStore:
    """Content-addressed JSON files ``<directory>/<sha256>.json``, verified when read.

    Parameters
    ----------
    directory : the folder of the files (normally ``<session_dir>/llm``, see
        :meth:`for_session`); created on the first write.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def for_session(cls, session_dir: str | Path) -> ExchangeStore:
        """The store of a session: ``<session_dir>/llm``."""
        return cls(Path(session_dir) / LLM_DIRNAME)

    def path_of(self, digest: str) -> Path:
        """The file of ``digest`` (refuses anything but a lowercase hex SHA-256)."""
        if not isinstance(digest, str) or not _HASH_RE.match(digest):
            raise RecordingError(f"not an exchange hash (64 lowercase hex digits): {digest!r}")
        return self.directory / f"{digest}.json"

    def put(self, obj: Any) -> str:
        """Store ``obj`` (JSON data) as its canonical JSON; returns its SHA-256 hex digest."""
        data = canonical_json_bytes(obj)
        digest = sha256_hex(data)
        path = self.path_of(digest)
        try:
            if path.is_file() and path.read_bytes() == data:
                return digest
            with atomic_writer(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise RecordingError(f"cannot record LLM exchange {path}: {exc}") from exc
        return digest

    def get(self, digest: str) -> dict[str, Any]:
        """The object stored under ``digest``; :class:`ExchangeCorrupted` if the file changed."""
        path = self.path_of(digest)
        try:
            data = path.read_bytes()
        except OSError as exc:  # missing, unreadable
            raise RecordingError(
                f"cannot read recorded LLM exchange {path}: {describe_os_error(exc)}"
            ) from exc
        if sha256_hex(data) != digest:
            raise ExchangeCorrupted(
                f"recorded LLM exchange {path} was changed: its content no longer has its hash"
            )
        try:  # a file with its hash was written by put(), unless it was made to match
            obj = json.loads(data.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError
            raise ExchangeCorrupted(f"recorded LLM exchange {path} is not JSON: {exc}") from exc
        return obj

    def get_exchange(self, digest: str) -> RecordedExchange:
        """The exchange stored under ``digest``, validated."""
        obj = self.get(digest)
        try:
            return RecordedExchange.model_validate(obj)
        except ValidationError as exc:
            path = self.path_of(digest)
            raise ExchangeCorrupted(f"{path} is not a recorded LLM exchange: {exc}") from exc


def _allowed(headers: httpx2.Headers, names: Sequence[str]) -> dict[str, str]:
    return {name: headers[name] for name in names if name in headers}


def _record_request(request: httpx2.Request) -> RecordedRequest:
    body = request.read()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"cannot record a request body that is not UTF-8: {exc}") from exc
    return RecordedRequest(
        method=request.method,
        path=request.url.raw_path.decode("ascii"),
        headers=_allowed(request.headers, REQUEST_HEADERS),
        body_text=text,
        body_sha256=sha256_hex(body),
    )


def _decoded(headers: httpx2.Headers, raw: bytes) -> str:
    """The body as the client will see it (content encoding undone), as text."""
    try:
        body = httpx2.Response(200, headers=headers, content=raw).content
    except httpx2.DecodingError:
        body = raw
    return body.decode("utf-8", errors="replace")


class RecordingTransport(httpx2.BaseTransport):
    """An ``httpx2`` transport that records every attempt passing through it.

    Parameters
    ----------
    inner : the transport that talks to the server (``None``: ``httpx2.HTTPTransport()``).
    store : where the exchanges go.

    Responses are read in full (non-streaming use) and handed on with their original headers.
    Thread-safe: :attr:`recorded` grows under a lock.
    """

    def __init__(self, inner: httpx2.BaseTransport | None, store: ExchangeStore) -> None:
        self.inner = inner if inner is not None else httpx2.HTTPTransport()
        self.store = store
        self.recorded: list[str] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        sent = _record_request(request)
        start = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
            try:  # the raw (still encoded) body; a mock's stream may have been read already
                assert isinstance(response.stream, httpx2.SyncByteStream)
                raw = b"".join(response.stream)
            finally:
                response.close()
        except Exception as exc:
            self._store(request, sent, start, error=type(exc).__name__)
            raise
        received = RecordedResponse(
            status=response.status_code,
            headers=_allowed(response.headers, RESPONSE_HEADERS),
            body_text=_decoded(response.headers, raw),
        )
        self._store(request, sent, start, response=received)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(raw),
            extensions=response.extensions,
            request=request,
        )

    def _store(
        self, request: httpx2.Request, sent: RecordedRequest, start: float, **outcome: Any
    ) -> None:
        elapsed_s = time.perf_counter() - start
        attempt = request.headers.get(_ATTEMPT_HEADER, "0")
        attempt_index = int(attempt) if attempt.isdigit() else 0
        exchange = RecordedExchange(
            attempt=attempt_index, request=sent, elapsed_s=elapsed_s, **outcome
        )
        digest = self.store.put(exchange.model_dump(mode="json"))
        with self._lock:
            self.recorded.append(digest)

    def take(self) -> list[str]:
        """The hashes recorded since the last call (in order), and forget them."""
        with self._lock:
            taken, self.recorded = self.recorded, []
        return taken

    def close(self) -> None:
        self.inner.close()


def _snippet(text: str, offset: int) -> str:
    start = max(0, offset - _CONTEXT_CHARS)
    piece = json.dumps(text[start : offset + _CONTEXT_CHARS], ensure_ascii=False)
    return ("..." if start else "") + piece + ("..." if offset + _CONTEXT_CHARS < len(text) else "")


def first_difference(a: str, b: str) -> int:
    """The first character offset where ``a`` and ``b`` differ (``min`` length if none)."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class ReplayTransport(httpx2.BaseTransport):
    """Serves recorded exchanges in order, refusing any request that differs from its record.

    Parameters
    ----------
    store : the session's exchanges.
    hashes : the exchanges to serve, in the order they were recorded (all are read and verified
        here, before any request).
    """

    def __init__(self, store: ExchangeStore, hashes: Sequence[str]) -> None:
        self.hashes = list(hashes)
        self._exchanges = [store.get_exchange(h) for h in self.hashes]
        self._next = 0
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Exchanges not yet served."""
        return len(self._exchanges) - self._next

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        with self._lock:
            index = self._next
            if index >= len(self._exchanges):
                raise ReplayExhausted(
                    f"the replay ran past its end: all {index} recorded LLM exchanges were "
                    f"served, and one more request came ({request.method} {request.url.path})"
                )
            exchange = self._exchanges[index]
            self._compare(index, exchange.request, request, body)
            self._next += 1
        if exchange.error is not None:
            error = getattr(httpx2, exchange.error, None)
            if not (isinstance(error, type) and issubclass(error, httpx2.RequestError)):
                error = httpx2.TransportError
            raise error(f"replayed {exchange.error} (recorded exchange {index})", request=request)
        assert exchange.response is not None  # one outcome, checked by the model
        return httpx2.Response(
            exchange.response.status,
            headers=exchange.response.headers,
            content=exchange.response.body_text.encode("utf-8"),
            request=request,
        )

    def _compare(
        self, index: int, recorded: RecordedRequest, request: httpx2.Request, body: bytes
    ) -> None:
        where = f"LLM exchange {index + 1} of {len(self.hashes)} ({self.hashes[index][:12]})"
        path = request.url.raw_path.decode("ascii")
        headers = _allowed(request.headers, REQUEST_HEADERS)
        if (request.method, path, headers) != (recorded.method, recorded.path, recorded.headers):
            raise ReplayMismatch(
                f"{where}: the request differs from the recorded one: sent {request.method} "
                f"{path} with headers {headers}, recorded {recorded.method} {recorded.path} "
                f"with headers {recorded.headers}",
                index=index,
            )
        if body == recorded.body_text.encode("utf-8"):
            return
        sent = body.decode("utf-8", errors="replace")
        offset = first_difference(recorded.body_text, sent)
        raise ReplayMismatch(
            f"{where}: the request body differs from the recorded one at character {offset} "
            f"(recorded {len(recorded.body_text)} characters, sent {len(sent)})\n"
            f"  recorded: {_snippet(recorded.body_text, offset)}\n"
            f"  sent:     {_snippet(sent, offset)}",
            index=index,
            offset=offset,
        )
