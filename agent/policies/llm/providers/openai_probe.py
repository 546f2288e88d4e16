"""What an OpenAI-compatible server is and supports, probed once per provider.

``GET models`` checks that the configured model is served (an unknown model is a clear
:class:`LlmConfigError` listing some that are). The kind of server is read defensively: the
models' ``owned_by`` (``vllm``, ``llamacpp``), Ollama's ``GET /api/version`` and llama.cpp's
``GET /props`` on the server root; a probe endpoint that fails only leaves the kind
``unknown``. What each kind means for the request is in :data:`KIND_NOTES`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Literal
from urllib.parse import urlsplit

from loguru import logger

from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.providers.base import ProviderCapabilities, ProviderSettings
from rtplan_common.models import FrozenModel

ServerKind = Literal["openai", "vllm", "ollama", "llama.cpp", "unknown"]
PROBE_TIMEOUT_S = 10.0
MODELS_SHOWN = 8

KIND_NOTES: dict[str, str] = {
    "vllm": "vLLM: a named tool_choice gives schema-constrained decoding",
    "llama.cpp": "llama.cpp server: tool_choice 'required' (a named choice is not read)",
    "ollama": (
        "Ollama ignores tool_choice: the answer is requested as JSON content "
        "(response_format json_schema) and accepted as the tool call"
    ),
    "unknown": "server kind unknown: a named tool_choice is sent; not verified to be honoured",
}
OLLAMA_CONTEXT_NOTE = (
    "Ollama's OpenAI endpoint cannot set the context length per request and silently "
    "truncates longer prompts: context_tokens must match the server's num_ctx"
)


class ServerProbe(FrozenModel):
    """The probe's result: server kind, the resolved model id, its context and notes."""

    kind: ServerKind
    model: str
    context_tokens: int | None = None
    notes: list[str]


def _int_or_none(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok and isinstance(value, int) else None


def _get_json(client: Any, url: str, timeout_s: float) -> dict[str, Any] | None:
    """``GET url`` through the SDK client as JSON, or ``None`` on any failure."""
    options: Any = {"max_retries": 0, "timeout": min(timeout_s, PROBE_TIMEOUT_S)}
    try:
        data = client.get(url, cast_to=object, options=options)
    except Exception as exc:  # an optional probe endpoint that fails means "unknown"
        logger.debug("probe {} failed: {}", url, type(exc).__name__)
        return None
    return data if isinstance(data, dict) else None


def resolve_model(wanted: str | None, ids: list[str], base_url: str) -> str:
    """The served model id for ``wanted`` (``None``: the only model served; Ollama's
    ``name`` also matches ``name:latest``).

    Raises
    ------
    LlmConfigError
        The model is not served, or none was named and the server serves several.
    """
    shown = ", ".join(ids[:MODELS_SHOWN]) + (", ..." if len(ids) > MODELS_SHOWN else "")
    shown = shown or "none"
    if wanted is None:
        if len(ids) == 1:
            return ids[0]
        raise LlmConfigError(
            f"no model named and the server at {base_url} serves {len(ids)}: {shown}; "
            "set the model (--model NAME)"
        )
    for candidate in (wanted, f"{wanted}:latest"):
        if candidate in ids:
            return candidate
    raise LlmConfigError(
        f"model {wanted!r} is not served at {base_url}; available: {shown}. "
        "Set --model to one of them"
    )


def probe_server(
    client: Any,
    base_url: str,
    settings: ProviderSettings,
    *,
    is_openai: bool,
    errors: AbstractContextManager[None],
) -> ServerProbe:
    """Probe the server behind the SDK ``client`` (an ``openai.OpenAI``).

    Parameters
    ----------
    errors
        The provider's error mapping, wrapped around ``models.list()`` (unreachable
        server, bad key, wrong base URL are errors; the kind probes are not).
    """
    with errors:
        page = client.models.list()
    models = [m for m in (getattr(page, "data", None) or []) if getattr(m, "id", None)]
    model = resolve_model(settings.model, [str(m.id) for m in models], base_url)
    owners = {str(getattr(m, "owned_by", "") or "").lower() for m in models}
    entry = next((m for m in models if m.id == model), None)
    context = _int_or_none((getattr(entry, "model_extra", None) or {}).get("max_model_len"))
    root = "{0.scheme}://{0.netloc}".format(urlsplit(base_url))
    kind: ServerKind = "openai" if is_openai else "unknown"
    if not is_openai:
        if "vllm" in owners:
            kind = "vllm"
        elif owners & {"llamacpp", "llama.cpp"}:
            kind = "llama.cpp"
        elif (_get_json(client, f"{root}/api/version", settings.timeout_s) or {}).get("version"):
            kind = "ollama"
    if kind in ("unknown", "llama.cpp"):
        props = _get_json(client, f"{root}/props", settings.timeout_s)
        if props is not None and ("default_generation_settings" in props or "n_ctx" in props):
            kind = "llama.cpp"
            generation = props.get("default_generation_settings")
            generation = generation if isinstance(generation, dict) else {}
            context = _int_or_none(generation.get("n_ctx", props.get("n_ctx")))
    notes = [f"server: {kind}"] + ([KIND_NOTES[kind]] if kind in KIND_NOTES else [])
    if kind == "ollama":
        notes.append(OLLAMA_CONTEXT_NOTE)
        if settings.context_tokens is None:
            notes.append("context_tokens is not configured")
            logger.warning(
                "Ollama at {}: set context_tokens to the server's num_ctx; its OpenAI "
                "endpoint silently truncates prompts longer than that",
                base_url,
            )
    if settings.context_tokens is not None:
        context = min(settings.context_tokens, context or settings.context_tokens)
    logger.info("LLM server at {}: {} serving {}", base_url, kind, model)
    return ServerProbe(kind=kind, model=model, context_tokens=context, notes=notes)


def capabilities_for(probe: ServerProbe, *, supports_images: bool) -> ProviderCapabilities:
    """The capabilities that follow from a probe (see :data:`KIND_NOTES`)."""
    kind = probe.kind
    return ProviderCapabilities(
        forced_tool_choice=kind in ("openai", "vllm", "llama.cpp"),
        json_schema_response_format=kind != "unknown",
        strict_tools=kind in ("openai", "vllm"),
        supports_images=supports_images,
        supports_thinking=False,
        context_tokens=probe.context_tokens,
        notes=list(probe.notes),
    )


__all__ = [
    "KIND_NOTES",
    "OLLAMA_CONTEXT_NOTE",
    "ServerKind",
    "ServerProbe",
    "capabilities_for",
    "probe_server",
    "resolve_model",
]
