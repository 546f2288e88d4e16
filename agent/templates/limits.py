"""What values a metric can take, so that a template's limits no plan can meet are refused.

A dose is never negative, a volume in % lies within 0..100, an absolute volume is never
negative, the Paddick CI lies within 0..1 and the other indices are never negative. A goal
whose limit lies outside that range (``D95% <= -5 Gy``, ``V20Gy >= 120 %``), or that asks for a
value beyond its end (``Mean < 0 Gy``, ``CI_paddick > 1``), can never be met, or can never be
missed, and is a typing error.
"""

from __future__ import annotations

import math

from agent.templates.metric import Metric, MetricKind, Quantity

_WHAT = {"Gy": "a dose", "%": "a volume in %", "cm3": "a volume in cm3"}


def metric_range(metric: Metric) -> tuple[float, float]:
    """The interval ``metric``'s values lie in (metric unit; ``inf`` = no upper end)."""
    if metric.kind is MetricKind.CI_PADDICK:
        return (0.0, 1.0)
    if metric.unit == "%":
        return (0.0, 100.0)
    return (0.0, math.inf)


def _written(q: Quantity, value: float, unit: str) -> str:
    """``q`` as written, with its value in the metric's unit where that differs (Rx)."""
    resolved = f"{value:g}" + (f" {unit}" if unit else "")
    return resolved if q.unit in ("", unit) else f"{q} (= {resolved})"


def range_problem(metric: Metric, q: Quantity, value: float) -> str | None:
    """Why ``value`` (``q`` resolved to the metric's unit) is no possible value of ``metric``."""
    lo, hi = metric_range(metric)
    if lo <= value <= hi:
        return None
    unit = metric.unit
    what = _WHAT.get(unit, metric.text)
    if hi == math.inf:
        return f"{what} cannot be negative; got {_written(q, value, unit)}"
    return f"{what} lies within {lo:g}..{hi:g}; got {_written(q, value, unit)}"


def limit_problem(metric: Metric, comparator: str, q: Quantity, value: float) -> str | None:
    """Why the goal ``metric comparator q`` (``q`` resolved: ``value``) is impossible, or
    ``None`` if a plan can meet it."""
    problem = range_problem(metric, q, value)
    if problem is not None:
        return f"no plan can meet this limit: {problem}"
    lo, hi = metric_range(metric)
    if (comparator == "<" and value <= lo) or (comparator == ">" and value >= hi):
        return (
            f"no plan can meet this limit: {metric.text} {comparator} "
            f"{_written(q, value, metric.unit)} is impossible ({metric.text} lies within "
            f"{lo:g}..{hi:g})"
        )
    return None


def dose_problem(q: Quantity, value_gy: float) -> str | None:
    """Why a dose (``q``, resolved to ``value_gy``) is impossible: it is negative."""
    if value_gy >= 0.0:
        return None
    return f"a dose cannot be negative; got {_written(q, value_gy, 'Gy')}"
