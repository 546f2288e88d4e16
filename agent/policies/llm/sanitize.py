"""Text from outside, made safe for a prompt: quoted as data, identifiers redacted.

Two jobs, both applied before any text reaches a model:

- :func:`quote_data` presents text that comes from outside the program (structure and goal
  ids, template notes, the clinician's feedback, model text, reference plans, guardrail
  reasons) as one JSON string literal on one line: control characters removed
  (:func:`rtplan_common.models.clean_text`), line and paragraph separators turned into
  blanks, invisible format characters (bidi overrides, zero-width characters) removed, the
  length limited. Such text can then never open a heading, a table row or an instruction of
  its own: it reads as a quoted value. :func:`quote_cell` does the same for a pipe-table cell
  (a ``|`` inside is written ``\\u007c``, which JSON reads back as ``|``).
- :class:`Redactor` replaces every occurrence of known identifiers (patient, plan and course
  ids and names) by :data:`REDACTED`. Matching is normalized: Unicode NFKC, case folded,
  accents ignored, and separators (whitespace, ``_``, ``-``, ``.``, ``^``, ``,``) as well as
  control and invisible format characters (``Sm\\u200bith``) ignored, so
  ``Smith^John``, ``SMITH john`` and ``smith_john`` match one another, and so do ``MRN
  123-456`` and ``mrn123456``. Matches are substrings, not words: an identifier inside a
  longer name (``Rectum_MRN123456``) is found; the price is occasional over-redaction of an
  innocent word that contains a name, which is preferred to a leak. Identifiers shorter than
  :data:`MIN_IDENTIFIER_CHARS` (normalized) are ignored; a DICOM person name
  (``Smith^John``) is also matched by each of its components. Homoglyphs from other scripts
  (a Cyrillic ``С`` for a Latin ``C``) are not folded.

  With ``scrub_patterns`` (the default) the redactor also removes what looks like an
  identifier in free text even when nobody listed it: runs of :data:`MIN_DIGIT_RUN` or more
  digits (record numbers), dates (``1961-04-02``, ``02.04.1961``, ``02/04/1961``,
  ``02/04/61``) and e-mail addresses. Use it on free text (the clinician's feedback, model
  text); for a last pass over a whole serialized request (base64 images, hashes) build the
  redactor with ``scrub_patterns=False``: digit runs there are data.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping

from rtplan_common.models import TRUNCATION_MARK, clean_text

#: What a redacted identifier becomes.
REDACTED = "[redacted]"
#: Identifiers shorter than this (after normalization) are not matched.
MIN_IDENTIFIER_CHARS = 3
#: A run of at least this many digits counts as an identifier in free text.
MIN_DIGIT_RUN = 6
#: Default length limit of quoted data.
DEFAULT_MAX_CHARS = 500

_SEPARATORS = frozenset(" \t_-.^,")
_LINE_BREAKS = re.compile(r"[\u2028\u2029]")
_PATTERNS = (
    re.compile(rf"(?<!\d)\d{{{MIN_DIGIT_RUN},}}(?!\d)"),
    re.compile(
        r"(?<![\d.])(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4}|\d{1,2}/\d{1,2}/\d{2})"
        r"(?![\d])"
    ),
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - len(TRUNCATION_MARK))] + TRUNCATION_MARK


def _one_line(text: str) -> str:
    text = _LINE_BREAKS.sub(" ", clean_text(text, max_chars=len(text) + 1))
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def safe_text(text: str, max_chars: int = DEFAULT_MAX_CHARS, *, keep_newlines: bool = False) -> str:
    """``text`` without control, line-separator or invisible format characters, at most
    ``max_chars`` long (cut text ends with ``" [...]"``). With ``keep_newlines`` line feeds
    stay (a quoted string shows them as ``\\n``); otherwise the text is one line."""
    text = str(text)
    if keep_newlines:
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return _cut("\n".join(_one_line(line) for line in lines), max_chars)
    return _cut(_one_line(text), max_chars)


def quote_data(
    text: str, max_chars: int = DEFAULT_MAX_CHARS, *, keep_newlines: bool = False
) -> str:
    """``text`` as a JSON string literal on one line (see the module docstring).

    Parameters
    ----------
    text
        Text from outside the program.
    max_chars
        Longest text kept (before quoting); longer text is cut.
    keep_newlines
        Keep line feeds (written ``\\n`` inside the literal, so it stays one line).
    """
    return json.dumps(safe_text(text, max_chars, keep_newlines=keep_newlines), ensure_ascii=False)


def quote_cell(text: str, max_chars: int = 64) -> str:
    """:func:`quote_data` for a pipe-table cell: ``|`` is written ``\\u007c``."""
    return quote_data(text, max_chars).replace("|", "\\u007c")


def _fold(char: str) -> str:
    """One character normalized: NFKD, combining marks dropped, case folded, NFKC."""
    if char.isascii():
        return char.lower()
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", base.casefold())


def _skipped(char: str) -> bool:
    """Separators, control and invisible format characters: ignored when matching."""
    if char in _SEPARATORS or char.isspace():
        return True
    if char.isascii():
        return not char.isprintable()
    return unicodedata.category(char) in ("Cc", "Cf")


def normalize(text: str) -> str:
    """``text`` as the redactor compares it: folded (NFKC, case, accents), without
    separators, control and format characters."""
    return "".join(_fold(c) for c in text if not _skipped(c))


def _folded_with_index(text: str) -> tuple[str, list[int]]:
    """The normalized text and, for each of its characters, the index it came from."""
    chars: list[str] = []
    where: list[int] = []
    for i, c in enumerate(text):
        if _skipped(c):
            continue
        folded = _fold(c)
        chars.append(folded)
        where.extend([i] * len(folded))
    return "".join(chars), where


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` has no letter or digit right before or after it."""
    before = start == 0 or not text[start - 1].isalnum()
    return before and (end == len(text) or not text[end].isalnum())


def find_spans(
    text: str, needles: Iterable[str], *, whole_words: bool = False
) -> list[tuple[int, int, str]]:
    """Every normalized occurrence of each needle in ``text``.

    Returns ``(start, end, needle)`` in original-text positions (``text[start:end]`` is the
    occurrence, separators inside included), sorted by start, longest first; needles
    shorter than :data:`MIN_IDENTIFIER_CHARS` (normalized) are skipped. ``whole_words``:
    only occurrences with no letter or digit right before or after them.
    """
    folded, where = _folded_with_index(text)
    spans: list[tuple[int, int, str]] = []
    for needle in dict.fromkeys(needles):
        key = normalize(needle)
        if len(key) < MIN_IDENTIFIER_CHARS:
            continue
        at = folded.find(key)
        while at >= 0:
            start, end = where[at], where[at + len(key) - 1] + 1
            if not whole_words or _bounded(text, start, end):
                spans.append((start, end, needle))
            at = folded.find(key, at + 1)
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0]), s[2]))
    return spans


def replace_normalized(text: str, replacements: Mapping[str, str]) -> str:
    """``text`` with each normalized whole-word occurrence of a key replaced by its value.

    Overlapping occurrences: the one starting first wins, then the longest. Used to write
    plan structure ids as the template's canonical ids (``PTV_Smith:point`` -> ``PTV:point``;
    a structure ``Ring`` does not touch ``during``). Identifiers are :class:`Redactor`'s job.
    """
    out: list[str] = []
    pos = 0
    for start, end, needle in find_spans(text, replacements, whole_words=True):
        if start < pos:
            continue
        out += [text[pos:start], replacements[needle]]
        pos = end
    return "".join(out) + text[pos:]


def _person_name_parts(identifier: str) -> list[str]:
    """A DICOM person name's components (``Smith^John`` -> ``Smith``, ``John``)."""
    if "^" not in identifier:
        return []
    return [p for p in identifier.split("^") if p.strip()]


class Redactor:
    """Replace known identifiers (and, optionally, identifier-like patterns) in text.

    Parameters
    ----------
    identifiers
        Patient, plan and course ids and names (see the module docstring for the matching).
    scrub_patterns
        Also redact digit runs, dates and e-mail addresses.
    """

    def __init__(self, identifiers: Iterable[str], *, scrub_patterns: bool = True) -> None:
        wanted: list[str] = []
        for ident in identifiers:
            wanted += [ident, *_person_name_parts(ident)]
        self.identifiers: tuple[str, ...] = tuple(
            i for i in dict.fromkeys(wanted) if len(normalize(i)) >= MIN_IDENTIFIER_CHARS
        )
        self.scrub_patterns = scrub_patterns

    def redact(self, text: str) -> str:
        """``text`` with every identifier occurrence (and pattern) replaced by :data:`REDACTED`."""
        merged: list[list[int]] = []
        for start, end, _ in find_spans(text, self.identifiers):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        out: list[str] = []
        pos = 0
        for start, end in merged:
            out += [text[pos:start], REDACTED]
            pos = end
        text = "".join(out) + text[pos:]
        if self.scrub_patterns:
            for pattern in _PATTERNS:
                text = pattern.sub(REDACTED, text)
        return text

    def quote(
        self,
        text: str,
        max_chars: int = DEFAULT_MAX_CHARS,
        *,
        cell: bool = False,
        keep_newlines: bool = False,
    ) -> str:
        """``text`` redacted, then quoted (:func:`quote_data`, or :func:`quote_cell`)."""
        redacted = self.redact(text)
        if cell:
            return quote_cell(redacted, max_chars)
        return quote_data(redacted, max_chars, keep_newlines=keep_newlines)

    def find(self, text: str) -> list[str]:
        """What :meth:`redact` would remove: the identifiers found (as given, in the order
        given), then the pattern matches (as they appear)."""
        found = list(dict.fromkeys(n for _, _, n in find_spans(text, self.identifiers)))
        ordered = [i for i in self.identifiers if i in found]
        if self.scrub_patterns:
            for pattern in _PATTERNS:
                ordered += [m.group(0) for m in pattern.finditer(text)]
        return ordered
