"""Site templates: a treatment site's protocol as data (schema, loader, metrics, matching)."""

from agent.templates.errors import StructureMatchError, TemplateError
from agent.templates.loader import list_templates, load_template, parse_template
from agent.templates.matching import candidates_for, match_structures
from agent.templates.metric import (
    Metric,
    MetricError,
    MetricKind,
    Quantity,
    parse_metric,
    parse_quantity,
)
from agent.templates.objectives import ObjectiveSpec, TppRange, TppRangeSpec
from agent.templates.schema import (
    CriterionSpec,
    DeriveSpec,
    GoalSpec,
    NormalizationSpec,
    PrescriptionSpec,
    ScoreSpec,
    SiteTemplate,
    StructureSpec,
    TechniqueSpec,
)

__all__ = [
    "CriterionSpec",
    "DeriveSpec",
    "GoalSpec",
    "Metric",
    "MetricError",
    "MetricKind",
    "NormalizationSpec",
    "ObjectiveSpec",
    "PrescriptionSpec",
    "Quantity",
    "ScoreSpec",
    "SiteTemplate",
    "StructureMatchError",
    "StructureSpec",
    "TechniqueSpec",
    "TemplateError",
    "TppRange",
    "TppRangeSpec",
    "candidates_for",
    "list_templates",
    "load_template",
    "match_structures",
    "parse_metric",
    "parse_quantity",
    "parse_template",
]
