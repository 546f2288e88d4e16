"""The tool's JSON schema, adapted to what each provider's strict mode accepts.

Strict tool modes decode against a grammar compiled from the schema and accept only a subset
of JSON Schema. The subsets, as the installed SDKs implement them
(``anthropic.lib._parse._transform.transform_schema``,
``openai.lib._pydantic.to_strict_json_schema``) and the providers document them:

``anthropic-strict``
    every object ``additionalProperties: false``; no numeric, length, size or pattern bounds
    (``minimum``, ``maximum``, ``minLength``, ``maxLength``, ``minItems``, ``maxItems``,
    ``pattern``, ...) and no ``default``: they move into the description text, where the model
    still reads them; ``oneOf`` becomes ``anyOf``; an ``enum`` stands without ``type``.
    Optional properties stay optional.
``openai-strict``
    every object ``additionalProperties: false`` and every property listed in ``required``.
    An optional field keeps its type: one that pydantic declares nullable (``X | None = None``)
    already reads ``anyOf [X, null]``; one with a non-null default (``done: bool = False``,
    ``changes: list = []``) stays non-null, so the model writes the value (the default is
    noted in the description). No type is widened with ``null``, so that every answer valid
    for the strict schema is valid for the pydantic model too. No ``default`` (OpenAI refuses
    it); bounds move into descriptions as above, so that one schema compiles on OpenAI, vLLM
    (xgrammar/outlines), Ollama and llama.cpp grammars alike.
``plain``
    the pydantic schema with ``title`` removed, bounds and defaults kept.

In every flavour ``$ref`` is inlined (``$defs`` removed; recursive models are refused), since
not every OpenAI-compatible server resolves references, and ``title`` is stripped (noise in
the prompt). Numeric ranges are enforced by pydantic validation and the guardrails, not by
the schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

Flavour = Literal["anthropic-strict", "openai-strict", "plain"]
FLAVOURS: tuple[Flavour, ...] = ("anthropic-strict", "openai-strict", "plain")

#: Keywords a strict mode does not take; they move into the description text.
BOUND_KEYWORDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "format",
)
#: Keywords dropped in every flavour.
DROPPED_KEYWORDS = ("title", "$schema", "examples")
_UNIONS = ("anyOf", "oneOf", "allOf")


def tool_schema(model_cls: type[BaseModel], flavour: Flavour) -> dict[str, Any]:
    """The JSON schema of ``model_cls`` adapted to ``flavour`` (see the module docstring)."""
    return adapt_schema(model_cls.model_json_schema(), flavour)


def adapt_schema(schema: Mapping[str, Any], flavour: Flavour) -> dict[str, Any]:
    """``schema`` (a plain JSON schema, e.g. ``ToolSpec.input_schema``) adapted to ``flavour``.

    Raises
    ------
    ValueError
        An unknown flavour, a ``$ref`` that does not resolve, or a recursive schema.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown schema flavour {flavour!r}; use one of {', '.join(FLAVOURS)}")
    root = copy.deepcopy(dict(schema))
    inlined = _inline(root, root.get("$defs", {}), ())
    node, notes = _adapt(inlined, flavour)
    return _with_notes(node, notes)


def _inline(node: Any, defs: Mapping[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        prefix = "#/$defs/"
        name = ref[len(prefix) :] if ref.startswith(prefix) else None
        if name is None or name not in defs:
            raise ValueError(f"cannot resolve $ref {ref!r}: only local #/$defs/ references")
        if name in stack:
            raise ValueError(f"recursive schema through {name!r}: cannot inline it")
        target = _inline(copy.deepcopy(defs[name]), defs, (*stack, name))
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_inline(siblings, defs, stack)}
    return {k: _inline(v, defs, stack) for k, v in node.items() if k != "$defs"}


def _note(keyword: str, value: Any) -> str:
    shown = value if isinstance(value, str) and keyword != "default" else json.dumps(value)
    return f"{keyword} {shown}"


def _with_notes(node: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    if not notes:
        return node
    text = ", ".join(notes)
    description = node.get("description")
    node["description"] = f"{description} ({text})" if description else text
    return node


def _adapt(node: dict[str, Any], flavour: Flavour) -> tuple[dict[str, Any], list[str]]:
    """The adapted node and the notes (moved keywords) its owner puts into a description."""
    strict = flavour != "plain"
    out: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in node.items():
        if key in DROPPED_KEYWORDS:
            continue
        if strict and key in BOUND_KEYWORDS:
            notes.append(_note(key, value))
        elif strict and key == "default":
            if value is not None:
                notes.append(_note("default", value))
        else:
            out[key] = value
    if strict and "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    for union in _UNIONS:
        if union in out:
            variants = []
            for variant in out[union]:
                adapted, variant_notes = _adapt(variant, flavour)
                variants.append(adapted)
                notes.extend(n for n in variant_notes if n not in notes)
            out[union] = variants
    if strict and len(out.get("allOf", [])) == 1:
        out.update(out.pop("allOf")[0])
    if flavour == "anthropic-strict" and "enum" in out:
        out.pop("type", None)
    if "items" in out and isinstance(out["items"], dict):
        items, item_notes = _adapt(out["items"], flavour)
        out["items"] = _with_notes(items, item_notes)
    if isinstance(out.get("properties"), dict) or out.get("type") == "object":
        _adapt_object(out, flavour)
    return out, notes


def _adapt_object(out: dict[str, Any], flavour: Flavour) -> None:
    properties: dict[str, Any] = out.get("properties", {})
    required = list(out.get("required", []))
    adapted: dict[str, Any] = {}
    for name, prop in properties.items():
        node, notes = _adapt(prop, flavour)
        adapted[name] = _with_notes(node, notes)
    if flavour != "plain":
        out["properties"] = adapted
        out["additionalProperties"] = False
        if flavour == "openai-strict":
            out["required"] = list(adapted)
        elif required:
            out["required"] = required
    elif properties:
        out["properties"] = adapted


__all__ = ["BOUND_KEYWORDS", "FLAVOURS", "Flavour", "adapt_schema", "tool_schema"]
