"""The tool schema per provider flavour (agent/policies/llm/providers/schema.py).

Each strict flavour is checked for its structural rules, recursively, and against the
installed SDK's own strict transform (already-strict input must come back unchanged); a
valid PlanEdits answer must still fit the adapted schema's shape (a small structural
checker below, no new dependency).
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from agent.policies.llm.edits import NewObjective, ObjectiveChange, PlanEdits
from agent.policies.llm.providers.schema import (
    BOUND_KEYWORDS,
    FLAVOURS,
    adapt_schema,
    tool_schema,
)

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "null": (type(None),),
    "number": (int, float),
    "integer": (int,),
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def violations(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """What of ``value`` does not fit ``schema`` (type, enum, const, anyOf, properties,
    required, additionalProperties false, items; bounds where the schema keeps them)."""
    out: list[str] = []
    if "anyOf" in schema:
        if all(violations(value, variant, path) for variant in schema["anyOf"]):
            out.append(f"{path}: matches no anyOf variant")
        return out
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_type_ok(value, k) for k in kinds):
            return [f"{path}: {value!r} is not {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: {value!r} != {schema['const']!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [
            f"{path}: missing {name}" for name in schema.get("required", []) if name not in value
        ]
        for key, item in value.items():
            if key in props:
                out += violations(item, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected {key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += violations(item, schema["items"], f"{path}[{i}]")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{path}: more than {schema['maxItems']} items")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: above {schema['maximum']}")
    return out


def nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema node, recursively."""
    if isinstance(schema, dict):
        yield schema
        for key, value in schema.items():
            if key in ("properties", "$defs"):
                for child in value.values():
                    yield from nodes(child)
            elif key in ("items",):
                yield from nodes(value)
            elif key in ("anyOf", "oneOf", "allOf"):
                for child in value:
                    yield from nodes(child)


def objects(schema: Any) -> list[dict[str, Any]]:
    return [n for n in nodes(schema) if n.get("type") == "object" or "properties" in n]


FULL = PlanEdits(
    assessment="PTV D95 fails by 1.2 Gy; rectum V60 has margin.",
    changes=[
        ObjectiveChange(objective_id="O1", dose_gy=60.5, priority=120.0),
        ObjectiveChange(objective_id="O3", volume_pct=15.0),
    ],
    additions=[
        NewObjective(kind="point", structure_id="Bladder", dose_gy=50, volume_pct=20, priority=60),
        NewObjective(kind="mean", structure_id="Rectum", dose_gy=30, priority=40),
    ],
    removals=["O7"],
    rationale="Raise target coverage; keep the rectum under its limit.",
)
FULL_JSON = FULL.model_dump(mode="json")
MINIMAL_JSON = PlanEdits(assessment="all goals met", done=True).model_dump(
    mode="json", exclude_defaults=True
)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_every_flavour_inlines_refs_strips_titles_and_closes_objects(flavour: str) -> None:
    schema = tool_schema(PlanEdits, flavour)  # type: ignore[arg-type]
    every = list(nodes(schema))
    assert all("title" not in n and "$ref" not in n and "$defs" not in n for n in every)
    assert len(objects(schema)) == 3  # PlanEdits, ObjectiveChange, NewObjective
    assert all(o["additionalProperties"] is False for o in objects(schema))
    assert violations(FULL_JSON, schema) == []


def test_anthropic_strict_moves_every_bound_and_default_into_descriptions() -> None:
    schema = tool_schema(PlanEdits, "anthropic-strict")
    every = list(nodes(schema))
    assert [k for n in every for k in n if k in BOUND_KEYWORDS or k == "default"] == []
    props = schema["properties"]
    assert "maxLength 4000" in props["assessment"]["description"]
    assert props["assessment"]["description"].startswith("One or two sentences")
    assert "maxItems 40" in props["changes"]["description"]
    change = props["changes"]["items"]["properties"]
    assert "minimum 0" in change["dose_gy"]["description"]  # lifted out of the anyOf variant
    assert "maximum 100" in change["volume_pct"]["description"]
    assert "pattern ^O([1-9][0-9]{0,2})$" in change["objective_id"]["description"]
    assert "default false" in props["done"]["description"]
    kind = props["additions"]["items"]["properties"]["kind"]
    assert kind == {"enum": ["point", "mean"]}  # an enum stands without type, as the SDK emits
    # optional fields stay optional: a minimal answer fits
    assert schema["required"] == ["assessment"]
    assert violations(MINIMAL_JSON, schema) == []


def test_openai_strict_requires_every_property_and_drops_defaults() -> None:
    schema = tool_schema(PlanEdits, "openai-strict")
    for obj in objects(schema):
        assert obj["required"] == list(obj["properties"])
    assert [n for n in nodes(schema) if "default" in n] == []
    assert [k for n in nodes(schema) for k in n if k in BOUND_KEYWORDS] == []
    change = schema["properties"]["changes"]["items"]
    # fields pydantic declares nullable stay nullable; defaulted fields stay non-null
    assert {"type": "null"} in change["properties"]["dose_gy"]["anyOf"]
    assert (
        violations(
            {"objective_id": "O1", "dose_gy": None, "volume_pct": None, "priority": 5}, change
        )
        == []
    )
    assert schema["properties"]["done"]["type"] == "boolean"
    assert violations({**FULL_JSON, "done": None}, schema) != []
    # every property is required: the minimal answer does not fit, the full one does
    assert violations(MINIMAL_JSON, schema) != []
    assert violations(FULL_JSON, schema) == []
    assert PlanEdits.model_validate(FULL_JSON) == FULL


def test_plain_keeps_bounds_and_defaults() -> None:
    schema = tool_schema(PlanEdits, "plain")
    volume = schema["properties"]["additions"]["items"]["properties"]["volume_pct"]
    assert volume["anyOf"][0] == {"maximum": 100, "minimum": 0, "type": "number"}
    assert schema["properties"]["done"]["default"] is False
    too_high = copy.deepcopy(FULL_JSON)
    too_high["additions"][0]["volume_pct"] = 150
    assert violations(too_high, schema) == ["$.additions[0].volume_pct: matches no anyOf variant"]


def test_the_checker_finds_what_does_not_fit() -> None:
    schema = tool_schema(PlanEdits, "anthropic-strict")
    assert violations({**FULL_JSON, "extra": 1}, schema) == ["$: unexpected extra"]
    assert violations({**FULL_JSON, "done": "yes"}, schema) == ["$.done: 'yes' is not ['boolean']"]
    assert violations({"done": True}, schema) == ["$: missing assessment"]
    wrong_kind = copy.deepcopy(FULL_JSON)
    wrong_kind["additions"][0]["kind"] = "gEUD"
    assert violations(wrong_kind, schema) == [
        "$.additions[0].kind: 'gEUD' not in ['point', 'mean']"
    ]


def test_the_sdks_own_strict_transforms_leave_the_adapted_schemas_unchanged() -> None:
    # the SDKs are dev dependencies: a moved private module must fail here, not skip
    anthropic_transform = importlib.import_module("anthropic.lib._parse._transform")
    openai_pydantic = importlib.import_module("openai.lib._pydantic")
    ours = tool_schema(PlanEdits, "anthropic-strict")
    assert anthropic_transform.transform_schema(copy.deepcopy(ours)) == ours
    ours = tool_schema(PlanEdits, "openai-strict")
    again = copy.deepcopy(ours)
    assert openai_pydantic._ensure_strict_json_schema(again, path=(), root=again) == ours


class _Node(BaseModel):
    child: _Node | None = None


def test_refusals_and_unions() -> None:
    with pytest.raises(ValueError, match="recursive"):
        tool_schema(_Node, "plain")
    with pytest.raises(ValueError, match="unknown schema flavour"):
        adapt_schema({"type": "object"}, "gemini")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot resolve"):
        adapt_schema({"$ref": "#/definitions/X"}, "plain")
    one_of = {
        "type": "object",
        "properties": {"a": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}},
    }
    adapted = adapt_schema(one_of, "anthropic-strict")
    assert adapted["properties"]["a"] == {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "description": "minimum 1",
    }
    merged = adapt_schema(
        {
            "$defs": {"X": {"type": "string", "maxLength": 3}},
            "type": "object",
            "properties": {"x": {"$ref": "#/$defs/X", "description": "an x"}},
        },
        "openai-strict",
    )
    assert merged["properties"]["x"] == {"type": "string", "description": "an x (maxLength 3)"}
