"""Strict pydantic bases and safe string types for every model that crosses a boundary.

Every model read from or written to outside the process (TPS DTOs, site templates, journal
records, evaluation results, report snapshots, JSON outputs) derives from :class:`StrictModel`
or :class:`FrozenModel`:

- unknown fields are refused (``extra="forbid"``);
- NaN and infinity are refused in every float field, also inside lists, tuples and dicts
  (``allow_inf_nan=False``): a journal or a report never holds a number it cannot read back;
- defaults and assignments are validated like inputs;
- every plain ``str`` value (also inside containers and as a dict key) is cleaned: control
  characters (C0, DEL, C1, so ESC sequences too) are removed, whitespace controls become a
  blank, and the text is cut to :data:`MAX_TEXT_CHARS`.

Fields that name things use :data:`Identifier` (or :data:`Key`): an identifier with a control
character is refused rather than cleaned, since a changed id would name something else.
:func:`validation_problems` turns a :class:`pydantic.ValidationError` into ``(field, reason)``
pairs for users: the field as written in the input (``goals[3].limit``), the reason and the
offending value, never pydantic's documentation links.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

#: Longest identifier (structure, plan, goal id; Eclipse allows 16, TG-263 names fit in 64).
MAX_ID_CHARS = 64
#: Longest key built from an identifier (``Rectum:point:upper:20``, ``structure:metric``).
MAX_KEY_CHARS = 128
#: Longest free text (descriptions, notes, rationales, messages); longer text is cut.
MAX_TEXT_CHARS = 16_384
#: What a cut text ends with.
TRUNCATION_MARK = " [...]"

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_WHITESPACE_CONTROL_RE = re.compile(r"[\t\n\r\v\f\x85]")


def control_characters(text: str) -> list[str]:
    """The control characters (C0, DEL, C1) of ``text``, each once, in order of appearance."""
    return list(dict.fromkeys(_CONTROL_RE.findall(text)))


def _char_name(char: str) -> str:
    names = {"\x1b": "ESC", "\x7f": "DEL", "\t": "TAB", "\n": "LF", "\r": "CR", "\x00": "NUL"}
    return f"U+{ord(char):04X}" + (f" ({names[char]})" if char in names else "")


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``text`` without control characters (whitespace controls become a blank), at most
    ``max_chars`` long (cut text ends with :data:`TRUNCATION_MARK`)."""
    if _CONTROL_RE.search(text):
        text = _CONTROL_RE.sub("", _WHITESPACE_CONTROL_RE.sub(" ", text))
    if len(text) > max_chars:
        text = text[: max_chars - len(TRUNCATION_MARK)] + TRUNCATION_MARK
    return text


_NOT_NEWLINE_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_BLANK_CONTROL_RE = re.compile(r"[\t\r\v\f\x85]")


def clean_multiline(text: str) -> str:
    """``text`` with its line feeds kept and every other control character removed (tab,
    CR, VT, FF and NEL become a blank); never cut. For prompt text, whose layout matters."""
    if _NOT_NEWLINE_CONTROL_RE.search(text):
        text = _NOT_NEWLINE_CONTROL_RE.sub("", _BLANK_CONTROL_RE.sub(" ", text))
    return text


def check_identifier(text: str) -> str:
    """``text`` unchanged if it holds no control character; raises ``ValueError`` naming them."""
    found = control_characters(text)
    if found:
        shown = ", ".join(_char_name(c) for c in found)
        raise ValueError(
            f"control character {shown} not allowed in a name; use printable characters only"
        )
    return text


#: A name (structure, plan, goal, scenario id): 1-64 characters, no control characters.
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_CHARS), AfterValidator(check_identifier)
]
#: A key made from identifiers: 1-128 characters, no control characters.
Key = Annotated[
    str, Field(min_length=1, max_length=MAX_KEY_CHARS), AfterValidator(check_identifier)
]
#: Free text: control characters removed, at most :data:`MAX_TEXT_CHARS` (cut beyond).
SafeText = Annotated[str, AfterValidator(clean_text)]


def _has_text(annotation: Any) -> bool:
    """Whether values of ``annotation`` may hold a plain ``str`` (unknown types: yes)."""
    if annotation is str:
        return True
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel | Enum):
            return False  # nested models clean themselves; enum values are fixed
        if issubclass(annotation, int | float | bool | bytes):
            return False
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return False
    if origin is Annotated:
        return _has_text(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType) or origin in (list, tuple, dict, set, frozenset):
        return any(_has_text(a) for a in typing.get_args(annotation) if a is not Ellipsis)
    if annotation is None or annotation is type(None):
        return False
    return not (isinstance(annotation, type) and origin is None)


@functools.cache
def _text_field(model: type[BaseModel], name: str) -> bool:
    info = model.model_fields.get(name)
    return info is None or _has_text(info.annotation)


def _clean(value: Any) -> Any:
    if type(value) is str:  # not a StrEnum member
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_clean(v) for v in value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return type(value)(_clean(v) for v in value)
    return value


def _clean_lines(value: Any) -> Any:
    """:func:`_clean` that keeps line feeds and never cuts (:func:`clean_multiline`)."""
    if type(value) is str:
        return clean_multiline(value)
    if isinstance(value, list):
        return [_clean_lines(v) for v in value]
    if isinstance(value, dict):
        return {_clean_lines(k): _clean_lines(v) for k, v in value.items()}
    return value


class StrictModel(BaseModel):
    """Base of every boundary model (see the module docstring).

    Fields named in ``_multiline`` (a class variable) are text whose layout matters (prompt
    text, tables): their strings, nested in lists and dicts too, keep line feeds and are never
    cut; every other control character is still removed.
    """

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        validate_default=True,
        validate_assignment=True,
    )
    _multiline: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _clean_strings(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or not _text_field(cls, info.field_name):
            return value
        if info.field_name in cls._multiline:
            return _clean_lines(value)
        return _clean(value)


class FrozenModel(StrictModel):
    """A :class:`StrictModel` whose instances cannot be changed (DTOs, specs, results)."""

    model_config = ConfigDict(frozen=True)


def _loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part.startswith("function-") or part == "tagged-union":
            continue  # pydantic's internal validator tags
        else:
            out += f".{part}" if out else part
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: Turns an exception raised inside a validator into ``(field, reason)`` pairs, or ``None``.
Expander = Callable[[BaseException], Sequence[tuple[str, str]] | None]


def _join(prefix: str, field: str) -> str:
    if not prefix:
        return field
    if not field:
        return prefix
    return prefix + field if field.startswith("[") else f"{prefix}.{field}"


def validation_problems(
    exc: ValidationError, prefix: str = "", expand: Expander | None = None
) -> list[tuple[str, str]]:
    """``(field, reason)`` pairs of ``exc``, for users.

    ``field`` is the location as written in the input (aliases, ``[i]`` for list items,
    ``prefix`` in front); ``reason`` is pydantic's message without its ``Value error,`` prefix
    and links, with the offending value (``got nan``). A ``ValidationError`` raised inside a
    validator is expanded into its own problems under the field; ``expand`` may turn other
    exceptions raised inside validators into problems (their fields relative to the error's).
    """
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        field = _join(prefix, _loc_text(tuple(err["loc"])))
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ValidationError):
            problems.extend(validation_problems(inner, field, expand))
            continue
        expanded = expand(inner) if expand is not None and inner is not None else None
        if expanded is not None:
            problems.extend((_join(field, f), r) for f, r in expanded)
            continue
        kind = err["type"]
        if kind == "missing":
            problems.append((field or "<root>", "missing required field"))
            continue
        if kind == "extra_forbidden":
            problems.append((field or "<root>", "unknown field"))
            continue
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        value = err.get("input")
        if not isinstance(value, dict | list | BaseModel) and "got " not in msg:
            msg += f", got {_shown(value)}"
        problems.append((field or "<root>", msg))
    return problems


def format_problems(problems: list[tuple[str, str]]) -> str:
    """One ``field: reason`` line per problem."""
    return "\n".join(f"{f}: {r}" for f, r in problems)
