"""Every boundary model refuses NaN and infinity, and cleans or refuses control characters.

The walk imports every module of the packages, collects every pydantic model defined there
and feeds each float slot of each field (also inside lists, tuples and dicts) NaN, +inf and
-inf; the value must be refused at that field. Other fields are left out on purpose: pydantic
reports every field's errors, so no valid instance is needed to see whether one is refused.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import types
import typing
from typing import Annotated, Any, Literal, Union

import pytest
from pydantic import BaseModel, Field, ValidationError

from rtplan_common.models import (
    MAX_TEXT_CHARS,
    TRUNCATION_MARK,
    FrozenModel,
    Identifier,
    SafeText,
    StrictModel,
    clean_text,
    validation_problems,
)

PACKAGES = ("agent", "esapi_bridge", "mock_tps", "rtplan_common")
NON_FINITE = (math.nan, math.inf, -math.inf)


def _modules() -> list[str]:
    names: list[str] = []
    for pkg in PACKAGES:
        root = importlib.import_module(pkg)
        names.append(pkg)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{pkg}."):
            names.append(info.name)
    return names


def _models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # optional backends (pythonnet, ...) only
            if exc.name is not None and exc.name.split(".")[0] in PACKAGES:
                raise
            continue
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseModel)
                and obj.__module__ == name
                and obj.__module__.split(".")[0] in PACKAGES
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


MODELS = _models()


def _bad(annotation: Any, value: float) -> tuple[bool, Any]:
    """``(True, data)`` with ``value`` in every float slot of ``annotation``, else ``(False, None)``."""
    if annotation is float:
        return True, value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _bad(args[0], value)
    if origin is Literal or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return False, None  # nested models are walked themselves
    if origin in (Union, types.UnionType):
        for arg in args:
            ok, data = _bad(arg, value)
            if ok:
                return True, data
        return False, None
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is ...):
        ok, data = _bad(args[0], value)
        return (True, [data]) if ok else (False, None)
    if origin is tuple:
        items = [_bad(a, value) for a in args]
        if not any(ok for ok, _ in items):
            return False, None
        return True, [data if ok else None for ok, data in items]
    if origin is dict:
        ok, data = _bad(args[1], value)
        return (True, {"k": data}) if ok else (False, None)
    return False, None


def _float_fields(model: type[BaseModel]) -> list[tuple[str, str]]:
    out = []
    for name, info in model.model_fields.items():
        if _bad(info.annotation, 1.0)[0]:
            out.append((name, info.alias or name))
    return out


def _accepted(model: type[BaseModel], field: str, alias: str, value: float) -> bool:
    ok, data = _bad(model.model_fields[field].annotation, value)
    assert ok
    try:
        model.model_validate({alias: data})
    except ValidationError as exc:
        return not any(err["loc"] and err["loc"][0] == alias for err in exc.errors())
    return True


def _permissive(model: type[BaseModel]) -> list[str]:
    return [
        f"{model.__qualname__}.{field}={value}"
        for field, alias in _float_fields(model)
        for value in NON_FINITE
        if _accepted(model, field, alias, value)
    ]


def test_the_walk_finds_the_boundary_models() -> None:
    names = {m.__qualname__ for m in MODELS}
    for expected in ("PointObjective", "DvhCurve", "GoalSpec", "GoalResult", "DvhSnapshot"):
        assert expected in names
    assert any(m.__qualname__ == "IterationRecord" for m in MODELS)
    assert sum(len(_float_fields(m)) for m in MODELS) > 60


def test_the_walk_would_see_a_permissive_model() -> None:
    class Loose(BaseModel):
        dose_gy: float
        curve: list[float]
        levels: dict[str, float | None]
        pair: tuple[float, float] | None = None

    assert len(_permissive(Loose)) == 4 * len(NON_FINITE)

    class Tight(StrictModel):
        dose_gy: float
        curve: list[float]
        levels: dict[str, float | None]
        pair: tuple[float, float] | None = None

    assert _permissive(Tight) == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__qualname__}")
def test_every_float_field_refuses_nan_and_infinity(model: type[BaseModel]) -> None:
    permissive = _permissive(model)
    assert permissive == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__qualname__}")
def test_every_model_derives_from_the_shared_base(model: type[BaseModel]) -> None:
    assert issubclass(model, StrictModel), f"{model.__qualname__} is not a StrictModel"


# ----- the base and the string types -------------------------------------------------------


class _Sample(FrozenModel):
    structure_id: Identifier
    aliases: list[Identifier] = Field(default_factory=list)
    note: SafeText = ""
    message: str = ""
    values: dict[str, float] = Field(default_factory=dict)


def test_free_text_loses_its_control_characters_and_is_cut() -> None:
    s = _Sample(
        structure_id="PTV",
        note="a\x1b[2Jb\tc\nd\x7fe\x9bf",
        message="line\r\nnext\x07",
        values={"Rect\x1bum": 1.0},
    )
    assert s.note == "a[2Jb c def"  # ESC, DEL and CSI (C1) gone; tab and newline blank
    assert s.message == "line  next"  # plain str fields of the base are cleaned too
    assert list(s.values) == ["Rectum"]
    long = clean_text("x" * (MAX_TEXT_CHARS + 10))
    assert len(long) == MAX_TEXT_CHARS and long.endswith(TRUNCATION_MARK)


def test_identifiers_with_control_characters_or_too_long_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        _Sample(structure_id="\x1b[2JPTV")
    [(field, reason)] = validation_problems(info.value)
    assert field == "structure_id"
    assert "U+001B (ESC)" in reason and "'\\x1b[2JPTV'" in reason  # the value, escaped
    with pytest.raises(ValidationError) as info:
        _Sample(structure_id="PTV", aliases=["ok", "bad\x00"])
    assert validation_problems(info.value)[0][0] == "aliases[1]"
    with pytest.raises(ValidationError, match="at most 64 characters"):
        _Sample(structure_id="P" * 65)
    with pytest.raises(ValidationError):
        _Sample(structure_id="")


def test_problems_name_the_field_and_value_without_links() -> None:
    with pytest.raises(ValidationError) as info:
        _Sample.model_validate({"structure_id": "PTV", "values": {"a": math.nan}, "colour": 1})
    problems = validation_problems(info.value, prefix="plan")
    assert problems == [
        ("plan.values.a", "Input should be a finite number, got nan"),
        ("plan.colour", "unknown field"),
    ]
    assert "pydantic.dev" not in str(problems) and "pydantic.dev" in str(info.value)
