"""The one place where provider SDK exceptions become :mod:`agent.policies.llm.errors`.

Like httpx's ``map_httpcore_exceptions``: every SDK call of a provider runs inside
:func:`map_sdk_errors`, which re-raises the most specific error of our hierarchy and keeps
the SDK's exception as ``__cause__``. Both SDKs (``anthropic``, ``openai``) share the same
exception layout, so one mapping serves both; the SDKs are never imported here (a class is
recognized by its module), so this module imports without them.

Messages name what is wrong and what to do. They never hold the API key: every configured
secret and anything that looks like a key is replaced by ``[redacted]`` before it is used.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

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
from rtplan_common.models import clean_text

#: The extra that installs both SDKs.
INSTALL_HINT = "pip install -e '.[llm]'"
#: Longest server text quoted in a message.
MAX_QUOTED_CHARS = 300
_SDK_MODULES = ("anthropic", "openai")
_KEY_LIKE = re.compile(r"\b(?:sk|key|sess)-[A-Za-z0-9_\-*]{6,}")
_REJECTED = {400, 404, 413, 422}


def require_sdk(name: str) -> ModuleType:
    """The SDK module ``name`` (``"anthropic"`` or ``"openai"``), imported on first use.

    Raises
    ------
    LlmConfigError
        The SDK is not installed; the message names the extra to install.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise LlmConfigError(
            f"the '{name}' package is not installed; install the LLM extra: {INSTALL_HINT}"
        ) from exc


def sdk_available(name: str) -> bool:
    """Whether the SDK ``name`` can be imported (no exception, no side effect but the import)."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with every secret and every key-like token replaced by ``[redacted]``,
    control characters removed and cut to :data:`MAX_QUOTED_CHARS`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", text)
    return clean_text(text, MAX_QUOTED_CHARS)


def _sdk_of(exc: BaseException) -> str | None:
    root = type(exc).__module__.split(".", 1)[0]
    return root if root in _SDK_MODULES else None


def _is(exc: BaseException, sdk: str, class_name: str) -> bool:
    """Whether ``exc`` is an instance of the SDK's class ``class_name`` (the SDK is imported
    already, since it raised ``exc``)."""
    cls = getattr(importlib.import_module(sdk), class_name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def _server_text(exc: BaseException, secrets: Sequence[str]) -> str:
    """The server's own explanation, if the body has one (Anthropic and OpenAI put it in
    ``error.message``; vLLM in ``message``; FastAPI servers in ``detail``)."""
    body = getattr(exc, "body", None)
    text: object = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            text = error.get("message")
        elif isinstance(error, str):
            text = error
        text = text or body.get("message") or body.get("detail")
    elif isinstance(body, str):
        text = body
    if not text:
        return ""
    return f": {redact(str(text), secrets)!r}"


def _retry_after_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return ""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return f"; the server asks to retry after {float(value) / 1000:g} s"
        except ValueError:
            return ""
    value = headers.get("retry-after")
    return f"; the server asks to retry after {redact(value)} s" if value else ""


def _request_id_text(exc: BaseException) -> str:
    request_id = getattr(exc, "request_id", None)
    if request_id is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        if headers is not None:
            request_id = headers.get("request-id") or headers.get("x-request-id")
    return f" (request id {redact(str(request_id))})" if request_id else ""


def map_exception(
    exc: BaseException,
    provider_name: str,
    *,
    key_variable: str | None = None,
    timeout_s: float | None = None,
    max_retries: int | None = None,
    secrets: Sequence[str] = (),
) -> LlmError | None:
    """Our error for an SDK exception (``None``: not an SDK exception, re-raise it as is).

    Parameters
    ----------
    exc
        The exception raised inside an SDK call.
    provider_name
        Shown first in the message (``anthropic``, ``openai-compatible``).
    key_variable
        The environment variable holding the key (named in an authentication error).
    timeout_s, max_retries
        The settings in force, named in timeout and retry messages.
    secrets
        Strings that must never appear in a message (the API key).
    """
    if isinstance(exc, json.JSONDecodeError):
        return LlmBadResponse(
            f"{provider_name}: the server's answer is not valid JSON at position {exc.pos}; "
            "check that the base URL points at the API itself (not a proxy or web page)"
        )
    sdk = _sdk_of(exc)
    if sdk is None:
        return None
    retries = f" after {max_retries} retries" if max_retries else ""
    if _is(exc, sdk, "APITimeoutError"):
        limit = f"{timeout_s:g} s" if timeout_s is not None else "the configured timeout"
        return LlmTimeout(
            f"{provider_name}: no answer within {limit}{retries}; check that the server is "
            "running and not overloaded, or raise timeout_s"
        )
    if _is(exc, sdk, "APIConnectionError"):
        return LlmConnectionError(
            f"{provider_name}: cannot reach the server{retries}; check the base URL, that "
            "the server is running and that this machine may connect to it"
        )
    if _is(exc, sdk, "APIResponseValidationError"):
        return LlmBadResponse(
            f"{provider_name}: the server's answer is not a response of its API; check that "
            "the base URL points at a compatible server"
        )
    if _is(exc, sdk, "APIStatusError"):
        return _map_status(exc, provider_name, key_variable, retries, secrets)
    return LlmConfigError(
        f"{provider_name}: the SDK refused the call ({type(exc).__name__}): "
        f"{redact(str(exc), secrets)}"
    )


def _map_status(
    exc: BaseException,
    provider_name: str,
    key_variable: str | None,
    retries: str,
    secrets: Sequence[str],
) -> LlmError:
    status = int(getattr(exc, "status_code", 0) or 0)
    where = f"{provider_name}: HTTP {status}{_request_id_text(exc)}"
    error_type = getattr(exc, "type", None)
    if status in (401, 402, 403):
        variable = key_variable or "the key's environment variable"
        what = {401: "refused the API key", 402: "refused: billing", 403: "denied permission"}
        return LlmAuthError(
            f"{where}: the server {what[status]}; check the key in {variable}, its "
            "permissions and the account (the key itself is never shown)"
        )
    if status == 429:
        return LlmRateLimited(
            f"{where}: rate limited{retries}{_retry_after_text(exc)}; wait and resume, or "
            "lower the session's call rate"
        )
    if status >= 500 or error_type == "overloaded_error":
        return LlmServerError(
            f"{where}: server error{retries}{_server_text(exc, secrets)}; the server is "
            "failing or overloaded, try again later"
        )
    if status == 408:
        return LlmTimeout(f"{where}: the server timed out the request{retries}; try again")
    hint = {
        400: "the request is invalid for this server (unsupported parameter or schema)",
        404: "unknown model or endpoint; check the model name and the base URL",
        413: "the request is too large; shorten the prompt or send fewer images",
        422: "the server could not process the request; check the model's parameters",
    }.get(status, "the server refused the request")
    return LlmRequestRejected(f"{where}{_server_text(exc, secrets)}; {hint}")


@contextmanager
def map_sdk_errors(
    provider_name: str,
    *,
    key_variable: str | None = None,
    timeout_s: float | None = None,
    max_retries: int | None = None,
    secrets: Sequence[str] = (),
) -> Iterator[None]:
    """Wrap one SDK call: SDK exceptions leave as :class:`LlmError` subclasses (the SDK's
    exception as ``__cause__``); anything else passes unchanged. Arguments as in
    :func:`map_exception`."""
    try:
        yield
    except LlmError:
        raise
    except Exception as exc:
        mapped = map_exception(
            exc,
            provider_name,
            key_variable=key_variable,
            timeout_s=timeout_s,
            max_retries=max_retries,
            secrets=secrets,
        )
        if mapped is None:
            raise
        raise mapped from exc


__all__ = [
    "INSTALL_HINT",
    "map_exception",
    "map_sdk_errors",
    "redact",
    "require_sdk",
    "sdk_available",
]
