"""Loading and validating site templates (YAML files in the ``site_templates`` package)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.templates.errors import TemplateError, TemplateProblems
from agent.templates.schema import SiteTemplate
from rtplan_common.models import validation_problems

TEMPLATE_PACKAGE = "site_templates"
_SUFFIXES = (".yaml", ".yml")


def list_templates() -> list[str]:
    """Names of the shipped templates (the YAML files of the ``site_templates`` package)."""
    root = resources.files(TEMPLATE_PACKAGE)
    names = [
        entry.name.rsplit(".", 1)[0]
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIXES)
    ]
    return sorted(names)


def _is_path(name_or_path: str | Path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    return name_or_path.endswith(_SUFFIXES) or "/" in name_or_path or "\\" in name_or_path


def load_template(name_or_path: str | Path) -> SiteTemplate:
    """Load a shipped template by name (``"prostate-basic"``) or any template file by path.

    Raises
    ------
    TemplateError
        If the template does not exist, is not valid YAML, or fails validation; the message
        names the file, the field and the reason.
    """
    if _is_path(name_or_path):
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TemplateError(str(path), [("<file>", f"cannot read: {exc.strerror}")]) from None
        return parse_template(text, source=str(path))
    name = str(name_or_path)
    available = list_templates()
    if name not in available:
        raise TemplateError(
            name, [("name", f"no template named {name!r}; available: {', '.join(available)}")]
        )
    resource = resources.files(TEMPLATE_PACKAGE).joinpath(f"{name}.yaml")
    source = f"{TEMPLATE_PACKAGE}/{name}.yaml"
    template = parse_template(resource.read_text(encoding="utf-8"), source=source)
    if template.name != name:
        raise TemplateError(
            source, [("name", f"{template.name!r} differs from the file name {name!r}")]
        )
    return template


def parse_template(text_or_data: str | Mapping[str, Any], source: str = "<string>") -> SiteTemplate:
    """Validate a template given as YAML text or as already-parsed data.

    ``source`` names the file in error messages.
    """
    if isinstance(text_or_data, str):
        try:
            data = yaml.safe_load(text_or_data)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "<yaml>"
            reason = getattr(exc, "problem", None) or str(exc)
            raise TemplateError(source, [(where, f"invalid YAML: {reason}")]) from None
    else:
        data = text_or_data
    if not isinstance(data, Mapping):
        raise TemplateError(source, [("<root>", "a template must be a YAML mapping")])
    try:
        return SiteTemplate.model_validate(dict(data))
    except ValidationError as exc:
        raise TemplateError(source, _problems(exc)) from None


def _template_problems(exc: BaseException) -> list[tuple[str, str]] | None:
    return exc.problems if isinstance(exc, TemplateProblems) else None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """The problems of ``exc``, each naming the field as the YAML writes it, and the value."""
    return validation_problems(exc, expand=_template_problems)
