"""Evaluate a plan's DVHs against a site template: clinical goals and the score.

Metric values come from :class:`esapi_bridge.dto.DvhCurve`'s point queries and from
:mod:`esapi_bridge.dvh_metrics` (CI, HI, GI); this module holds no metric math of its own.
Doses relative to the prescription (``V95%Rx``, ``1.07 Rx``) are resolved with the template's
prescription, or with ``prescription_gy`` when given (then they scale with it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum

from pydantic import Field

from agent.templates.metric import Metric, MetricKind, MetricUnit
from agent.templates.schema import Comparator, SiteTemplate
from esapi_bridge import dvh_metrics
from esapi_bridge.dto import DvhCurve
from esapi_bridge.port import TpsSession
from rtplan_common.models import FrozenModel

#: A value within this distance of a goal's limit counts as meeting it (the DVH resolution:
#: doses are binned at 0.01 Gy, so a normalized D95 can land a fraction of a bin off the limit).
STATUS_TOLERANCE: dict[str, float] = {"Gy": 0.01, "%": 0.01, "cm3": 0.001, "": 1e-4}


class EvaluationError(ValueError):
    """The DVHs given do not allow the evaluation (a DVH is missing, a metric undefined)."""


class GoalStatus(StrEnum):
    """Status of a clinical goal."""

    MET = "met"
    WITHIN_VARIATION = "within_variation"
    FAILED = "failed"


class _Result(FrozenModel):
    """Base of evaluation results: frozen, NaN and infinity refused (they go into journals)."""


class GoalResult(_Result):
    """One clinical goal evaluated: ``margin`` > 0 means met by that much (metric unit)."""

    goal_id: str
    structure_id: str
    plan_structure_id: str
    metric: str
    comparator: Comparator
    limit: float
    variation: float
    unit: MetricUnit
    value: float
    status: GoalStatus
    margin: float
    priority: int


class CriterionResult(_Result):
    """One score criterion evaluated: ``points`` out of ``max_points``."""

    criterion_id: str
    structure_id: str
    plan_structure_id: str
    metric: str
    comparator: str
    unit: MetricUnit
    value: float
    full: float
    zero: float
    points: float
    max_points: float


class Evaluation(_Result):
    """The evaluation of a plan against a template (``model_dump(mode="json")`` for journals).

    ``all_priority1_met``: every priority-1 goal is met; ``all_priority1_acceptable``: every
    priority-1 goal is met or within its acceptable variation. ``skipped_goals`` lists goals
    of optional structures the plan does not have.
    """

    template: str
    prescription_gy: float
    goals: list[GoalResult]
    criteria: list[CriterionResult]
    score: float | None
    max_score: float | None
    all_priority1_met: bool
    all_priority1_acceptable: bool
    skipped_goals: list[str] = Field(default_factory=list)

    def goal(self, goal_id: str) -> GoalResult:
        """The result of goal ``goal_id``."""
        for g in self.goals:
            if g.goal_id == goal_id:
                return g
        raise KeyError(f"no goal {goal_id!r}; goals: {', '.join(g.goal_id for g in self.goals)}")

    def failed_goals(self, max_priority: int = 3) -> list[GoalResult]:
        """Goals not met (failed or only within variation) with priority <= ``max_priority``."""
        return [
            g for g in self.goals if g.status is not GoalStatus.MET and g.priority <= max_priority
        ]


def metric_value(
    metric: Metric,
    dvh: DvhCurve,
    *,
    prescription_gy: float,
    level_gy: float,
    body: DvhCurve | None = None,
) -> float:
    """Value of ``metric`` on ``dvh`` (unit ``metric.unit``).

    ``level_gy`` is the structure's dose level (used by CI and GI); ``%Rx`` dose levels of
    ``V`` metrics are relative to ``prescription_gy``. CI and GI need the ``body`` DVH.
    """
    kind = metric.kind
    if kind is MetricKind.DOSE_AT_VOLUME:
        assert metric.volume is not None
        if metric.volume_unit == "%":
            return dvh.dose_at_volume_pct(metric.volume)
        return dvh.dose_at_volume_cm3(metric.volume)
    if kind is MetricKind.VOLUME_AT_DOSE:
        level = metric.dose_level_gy(prescription_gy)
        if metric.unit == "cm3":
            return dvh.volume_cm3_at_dose(level)
        return dvh.volume_pct_at_dose(level)
    if kind is MetricKind.MEAN:
        return dvh.mean_dose_gy
    if kind is MetricKind.MAX:
        return dvh.max_dose_gy
    if kind is MetricKind.MIN:
        return dvh.min_dose_gy
    if kind is MetricKind.HI:
        return dvh_metrics.homogeneity_index(dvh)
    if body is None:
        raise EvaluationError(f"metric {metric.text!r} of {dvh.structure_id!r} needs the body DVH")
    if kind is MetricKind.CI_PADDICK:
        return dvh_metrics.paddick_ci(dvh, body, level_gy)
    if kind is MetricKind.CI_RTOG:
        return dvh_metrics.rtog_ci(dvh, body, level_gy)
    gi = dvh_metrics.gradient_index(body, level_gy)
    if not math.isfinite(gi):
        raise EvaluationError(
            f"metric {metric.text!r} of {dvh.structure_id!r} is undefined: no voxel of "
            f"{body.structure_id!r} receives {level_gy:.2f} Gy (is the plan's dose empty?)"
        )
    return gi


def goal_status(
    value: float, comparator: str, limit: float, variation: float, unit: str
) -> tuple[GoalStatus, float]:
    """Status and signed margin (> 0: met by that much) of ``value comparator limit``.

    Met when the margin is >= -``STATUS_TOLERANCE[unit]`` (strict ``<``/``>`` are read as
    clinical notation: equality within the DVH resolution counts as met); within variation
    when the limit is missed by at most ``variation``; failed otherwise.
    """
    margin = limit - value if comparator in ("<=", "<") else value - limit
    tol = STATUS_TOLERANCE.get(unit, 0.0)
    if margin >= -tol:
        return GoalStatus.MET, margin
    if margin >= -variation - tol:
        return GoalStatus.WITHIN_VARIATION, margin
    return GoalStatus.FAILED, margin


def criterion_points(
    value: float, comparator: str, full: float, zero: float, weight: float
) -> float:
    """``weight`` at or better than ``full``, 0 at or worse than ``zero``, linear in between."""
    if comparator == "<=":
        if value <= full:
            return weight
        if value >= zero:
            return 0.0
        return weight * (zero - value) / (zero - full)
    if value >= full:
        return weight
    if value <= zero:
        return 0.0
    return weight * (value - zero) / (full - zero)


def needed_structures(template: SiteTemplate, structure_map: Mapping[str, str]) -> list[str]:
    """Plan ids whose DVHs :func:`evaluate` needs (goal and criterion structures, the body if
    a CI or GI is asked for), in template order."""
    canon: list[str] = []
    items = [(g.structure, g.metric, g.isodose_region) for g in template.goals]
    if template.score is not None:
        items += [(c.structure, c.metric, None) for c in template.score.criteria]
    for sid, metric, region in items:
        if sid not in structure_map:
            continue
        if sid not in canon:
            canon.append(sid)
        isodose = region or template.body_id
        if metric.needs_body and isodose not in canon:
            canon.append(isodose)
    return [structure_map[c] for c in canon if c in structure_map]


def evaluate(
    dvhs: Mapping[str, DvhCurve],
    template: SiteTemplate,
    structure_map: Mapping[str, str],
    prescription_gy: float | None = None,
) -> Evaluation:
    """Evaluate DVHs (keyed by plan structure id) against the template's goals and score.

    Parameters
    ----------
    dvhs : DVH per plan structure id (canonical ids are accepted too).
    template : the site template.
    structure_map : canonical id -> plan id, from :func:`agent.templates.match_structures`.
    prescription_gy : the plan's prescription; default the template's. Rx-relative levels
        and thresholds scale with it.

    Raises
    ------
    EvaluationError
        A needed DVH is missing, or a required structure is not in ``structure_map``.
    """
    rx = template.prescription.dose_gy if prescription_gy is None else float(prescription_gy)
    if not rx > 0.0:
        raise EvaluationError(f"prescription_gy must be > 0, got {prescription_gy}")

    def dvh_of(canonical: str) -> DvhCurve | None:
        if canonical not in structure_map:
            if template.structure(canonical).required:
                raise EvaluationError(
                    f"required structure {canonical!r} is missing from the structure map"
                )
            return None
        pid = structure_map[canonical]
        curve = dvhs.get(pid, dvhs.get(canonical))
        if curve is None:
            raise EvaluationError(
                f"no DVH for {canonical!r} (plan id {pid!r}); DVHs given: {', '.join(dvhs)}"
            )
        return curve

    def value_of(
        canonical: str, metric: Metric, curve: DvhCurve, region: str | None = None
    ) -> float:
        body = dvh_of(region or template.body_id) if metric.needs_body else None
        try:
            return metric_value(
                metric,
                curve,
                prescription_gy=rx,
                level_gy=template.prescription.level_gy(canonical, rx),
                body=body,
            )
        except ValueError as exc:
            raise EvaluationError(f"{canonical} {metric.text}: {exc}") from exc

    goals: list[GoalResult] = []
    skipped: list[str] = []
    for g in template.goals:
        curve = dvh_of(g.structure)
        region = g.isodose_region if g.metric.needs_body else None
        if curve is None or (region is not None and dvh_of(region) is None):
            skipped.append(g.id)  # an optional structure (or its isodose region) is absent
            continue
        unit = g.metric.unit
        value = value_of(g.structure, g.metric, curve, region)
        limit = g.limit.resolve(unit, rx)
        variation = g.variation.resolve(unit, rx)
        status, margin = goal_status(value, g.comparator, limit, variation, unit)
        goals.append(
            GoalResult(
                goal_id=g.id,
                structure_id=g.structure,
                plan_structure_id=structure_map[g.structure],
                metric=g.metric.text,
                comparator=g.comparator,
                limit=limit,
                variation=variation,
                unit=unit,
                value=value,
                status=status,
                margin=margin,
                priority=g.priority,
            )
        )

    criteria: list[CriterionResult] = []
    score: float | None = None
    max_score: float | None = None
    if template.score is not None:
        for c in template.score.criteria:
            curve = dvh_of(c.structure)
            assert curve is not None  # criteria are on required structures (checked on load)
            unit = c.metric.unit
            value = value_of(c.structure, c.metric, curve)
            full, zero = c.full.resolve(unit, rx), c.zero.resolve(unit, rx)
            criteria.append(
                CriterionResult(
                    criterion_id=c.id,
                    structure_id=c.structure,
                    plan_structure_id=structure_map[c.structure],
                    metric=c.metric.text,
                    comparator=c.comparator,
                    unit=unit,
                    value=value,
                    full=full,
                    zero=zero,
                    points=criterion_points(value, c.comparator, full, zero, c.weight),
                    max_points=c.weight,
                )
            )
        score = float(sum(c.points for c in criteria))
        max_score = template.score.total_weight

    p1 = [g for g in goals if g.priority == 1]
    return Evaluation(
        template=template.name,
        prescription_gy=rx,
        goals=goals,
        criteria=criteria,
        score=score,
        max_score=max_score,
        all_priority1_met=all(g.status is GoalStatus.MET for g in p1),
        all_priority1_acceptable=all(g.status is not GoalStatus.FAILED for g in p1),
        skipped_goals=skipped,
    )


def evaluate_session(
    session: TpsSession,
    template: SiteTemplate,
    structure_map: Mapping[str, str],
    prescription_gy: float | None = None,
) -> Evaluation:
    """Fetch exactly the DVHs the evaluation needs through the port, then :func:`evaluate`."""
    dvhs = {pid: session.get_dvh(pid) for pid in needed_structures(template, structure_map)}
    return evaluate(dvhs, template, structure_map, prescription_gy)
