"""What a journal header records about where a session came from, and how a journal was read.

- :class:`PolicyDescription`: the policy and all its settings (never a key: setting names
  like ``api_key``, ``token``, ``secret`` or ``password`` are refused);
- :func:`check_case_label`: the rule for case labels (see :data:`CASE_LABEL_RULE`);
- :class:`ChainHead`: the head of a journal's HMAC chain, written into ``summary.json``;
- :class:`JournalIntegrity` and :class:`TornTail`: what reading a journal found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, JsonValue, field_validator

from rtplan_common.models import StrictModel

#: A case label is for simulated and public cases only (``prostate-basic/seed0``,
#: ``tg119/tg119-easy``): 1-4 segments separated by ``/``, each of lowercase letters,
#: digits, ``.``, ``_`` and ``-`` starting with a letter or digit, 64 characters at most.
#: Patient data (DICOM, Eclipse) get no label: their header says only kind and content hash.
CASE_LABEL_RULE = (
    "1-4 segments separated by '/', each of lowercase letters, digits, '.', '_' or '-' "
    "(starting with a letter or digit), at most 64 characters"
)
_LABEL = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*){0,3}")
CASE_LABEL_MAX = 64

#: Setting names refused in a policy description (a key never reaches a journal).
_SECRET_NAME = re.compile(
    r"(^|_)(api_?key|apikey|key|secret|secrets|password|passwd|passphrase|credentials?"
    r"|token|auth|authorization|bearer|cookie)$"
)


def check_case_label(label: str) -> str:
    """``label`` if it follows :data:`CASE_LABEL_RULE`, else :class:`ValueError` saying why."""
    if len(label) > CASE_LABEL_MAX or _LABEL.fullmatch(label) is None:
        raise ValueError(f"case label {label[:80]!r} is not allowed: {CASE_LABEL_RULE}")
    return label


CaseLabel = Annotated[str, AfterValidator(check_case_label)]


def _secret_names(value: Any, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key).strip().lower().replace("-", "_")
            if _SECRET_NAME.search(name):
                found.append(f"{where}.{key}")
            found += _secret_names(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found += _secret_names(item, f"{where}[{i}]")
    return found


class _Strict(StrictModel):
    """The shared strict base of boundary models (unknown fields, NaN refused)."""


class PolicyDescription(_Strict):
    """The policy of a session and all its settings, as recorded in the header.

    ``settings`` is plain JSON (for the rule policy its ``RuleSettings``; for LLM policies
    later: provider, model, base URL, look-ahead). A setting named like a credential
    (``api_key``, ``token``, ``secret``, ``password``, ...) is refused: keys never reach a
    journal.
    """

    # settings keep their line feeds (an LLM policy's reference plans are tables that must
    # reach a resumed or replayed prompt unchanged)
    _multiline = frozenset({"settings"})

    name: str
    settings: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("settings")
    @classmethod
    def _no_credentials(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        found = _secret_names(value, "settings")
        if found:
            raise ValueError(
                f"policy settings must not hold credentials: {', '.join(found)} "
                "(pass keys through the environment, never through recorded settings)"
            )
        return value


Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ChainHead(_Strict):
    """The head of a journal's HMAC chain: entries written and the last entry's HMAC.

    Written into ``summary.json`` so that a journal cut short by whole entries is detected.
    """

    entries: Annotated[int, Field(ge=1)]
    last_hmac: Hex


class IntegrityStatus(StrEnum):
    """What verifying a journal's HMAC chain found (tampering raises instead)."""

    VERIFIED = "verified"  # every entry matches; the chain head too, if summary.json had one
    FOREIGN_SECRET = "foreign_secret"  # written with another installation's secret
    UNVERIFIED_V1 = "unverified_v1"  # schema v1: no chain
    NOT_CHECKED = "not_checked"  # read with verify=False


class JournalIntegrity(_Strict):
    """The outcome of verifying a journal; ``message`` says it in a sentence for users."""

    status: IntegrityStatus
    entries: Annotated[int, Field(ge=0)] = 0  # complete entries read
    head_checked: bool = False  # whether summary.json's chain head was compared
    message: str = ""

    @property
    def verified(self) -> bool:
        """Whether the chain was checked and matched."""
        return self.status is IntegrityStatus.VERIFIED


class TornTail(_Strict):
    """An incomplete last journal line (the session was killed or the disk filled mid-write).

    Readers ignore it; ``rtplan resume`` moves its bytes to ``moved_to`` and truncates the
    journal to its last complete line.
    """

    line: Annotated[int, Field(ge=1)]
    size_bytes: Annotated[int, Field(ge=1)]
    moved_to: str | None = None
