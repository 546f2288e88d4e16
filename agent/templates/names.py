"""Normalized forms of structure names, for matching a plan's ids to template structures.

Two levels of leniency:

- :func:`simple_key`: case and punctuation insensitive (``Femur_Head_L`` == ``femur head l``).
- :func:`tg263_forms`: TG-263 style token normalization: CamelCase and digits split into tokens,
  common abbreviations and synonyms unified (``femoral`` -> ``femur``, ``nrv`` -> ``nerve``,
  ``left``/``lt`` -> ``l``), laterality moved to the end, and the tokens taken both in their
  order and sorted, so that ``FemoralHead_L``, ``femoral head left`` and ``L Femur Head`` agree,
  and so do ``Bowel_Small`` and ``small bowel``.
"""

from __future__ import annotations

import re

_SYNONYMS: dict[str, str] = {
    "left": "l",
    "lt": "l",
    "lft": "l",
    "right": "r",
    "rt": "r",
    "rgt": "r",
    "femoral": "femur",
    "fem": "femur",
    "heads": "head",
    "hd": "head",
    "nrv": "nerve",
    "nerves": "nerve",
    "glnd": "gland",
    "musc": "muscle",
    "intestine": "bowel",
    "intestines": "bowel",
    "cav": "cavity",
    "cochlear": "cochlea",
    "ext": "external",
}
_JOINED: dict[tuple[str, ...], str] = {
    ("spinal", "cord"): "spinalcord",
    ("brain", "stem"): "brainstem",
    ("bone", "marrow"): "bonemarrow",
}
_LATERALITY = ("l", "r")
_TOKEN_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+(?:\.\d+)?")


def simple_key(name: str) -> str:
    """Lower-case ``name`` without blanks and punctuation."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def tokens(name: str) -> list[str]:
    """TG-263 style tokens of a structure name (synonyms unified, laterality last)."""
    raw = [t.lower() for t in _TOKEN_RE.findall(name)]
    mapped = [_SYNONYMS.get(t, t) for t in raw]
    joined: list[str] = []
    i = 0
    while i < len(mapped):
        pair = tuple(mapped[i : i + 2])
        if pair in _JOINED:
            joined.append(_JOINED[pair])
            i += 2
        else:
            joined.append(mapped[i])
            i += 1
    body = [t for t in joined if t not in _LATERALITY]
    side = [t for t in joined if t in _LATERALITY]
    return body + side


def tg263_forms(name: str) -> frozenset[str]:
    """Normalized forms of ``name``: tokens in order and sorted (laterality last), concatenated."""
    toks = tokens(name)
    body = [t for t in toks if t not in _LATERALITY]
    side = [t for t in toks if t in _LATERALITY]
    forms = {"".join(toks), "".join(sorted(body) + side)}
    return frozenset(f for f in forms if f)
