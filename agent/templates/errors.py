"""Errors of site templates and structure matching."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class TemplateProblems(ValueError):
    """Problems found by the cross-reference checks of a template: ``(field, reason)`` pairs.

    Raised inside pydantic validation; :func:`agent.templates.load_template` turns it into a
    :class:`TemplateError` that also names the file.
    """

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{f}: {r}" for f, r in self.problems))


class TemplateError(ValueError):
    """A site template is missing, unreadable or invalid.

    ``problems`` lists ``(field, reason)`` pairs; the message names the file, each field
    (e.g. ``goals[3].limit``) and the reason.
    """

    def __init__(self, file: str, problems: Sequence[tuple[str, str]]) -> None:
        self.file = file
        self.problems = list(problems) or [("<template>", "invalid")]
        self.field, self.reason = self.problems[0]
        lines = [f"{file}: {f}: {r}" for f, r in self.problems]
        super().__init__(lines[0] if len(lines) == 1 else "\n".join(lines))


class StructureMatchError(ValueError):
    """The plan's structures cannot be mapped to the template's without guessing.

    ``missing`` maps each unmatched required structure to the plan's candidate ids;
    ``ambiguous`` maps each structure with several equally good matches to those plan ids.
    """

    def __init__(
        self,
        message: str,
        missing: Mapping[str, Sequence[str]] | None = None,
        ambiguous: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.missing = {k: list(v) for k, v in (missing or {}).items()}
        self.ambiguous = {k: list(v) for k, v in (ambiguous or {}).items()}
        super().__init__(message)
