"""DVH metric strings (``D95%``, ``D0.03cc``, ``V70Gy``, ``V95%Rx``, ``Mean``, ``CI_paddick``...)
and quantities with units (``45 Gy``, ``1.07 Rx``, ``15 %``, ``10 cc``).

Grammar (case-insensitive; blanks are ignored; TG-263 style output units in brackets):

- ``D<x>%`` / ``D<x>cc`` (``cm3``): minimum dose to the hottest x % / x cm3, in Gy (``[Gy]``).
- ``V<x>Gy`` / ``V<x>cGy`` / ``V<x>%Rx``: volume receiving at least the dose level, in %
  (``[%]``, default) or cm3 (``[cc]``).
- ``Mean`` / ``Max`` / ``Min`` (also ``Dmean`` / ``Dmax`` / ``Dmin``): in Gy; ``Max`` is the
  voxel maximum of the DVH (use ``D0.03cc`` for the clinical near-maximum).
- ``CI_paddick``, ``CI_rtog``, ``HI``, ``GI``: unitless indices of a target.

A bare ``D95`` or ``V95%`` is rejected: the volume unit (``%`` or ``cc``) and the dose unit
(``Gy`` or ``%Rx``) must be explicit.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import ValidationError

from rtplan_common.models import FrozenModel, validation_problems

#: Unit of a metric's value.
MetricUnit = Literal["Gy", "%", "cm3", ""]
#: Unit of a quantity as written in a template (``Rx`` = fraction of the prescription dose).
QuantityUnit = Literal["Gy", "Rx", "%", "cm3", ""]

_NUM = r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"


class MetricError(ValueError):
    """A metric string or a quantity cannot be parsed; the message says why."""


class MetricKind(StrEnum):
    """What a metric measures."""

    DOSE_AT_VOLUME = "dose_at_volume"
    VOLUME_AT_DOSE = "volume_at_dose"
    MEAN = "mean"
    MAX = "max"
    MIN = "min"
    CI_PADDICK = "ci_paddick"
    CI_RTOG = "ci_rtog"
    HI = "hi"
    GI = "gi"


class Metric(FrozenModel):
    """A parsed DVH metric.

    Attributes
    ----------
    text : the string as written in the template.
    kind : what is measured.
    volume : for ``D`` metrics, the volume (``volume_unit`` "%" or "cm3").
    dose : for ``V`` metrics, the dose level (``dose_unit`` "Gy", or "Rx" as a fraction).
    unit : unit of the metric's value ("Gy", "%", "cm3" or "" for indices).
    """

    text: str
    kind: MetricKind
    volume: float | None = None
    volume_unit: Literal["%", "cm3"] | None = None
    dose: float | None = None
    dose_unit: Literal["Gy", "Rx"] | None = None
    unit: MetricUnit

    @property
    def is_index(self) -> bool:
        """Whether this is a conformity / homogeneity / gradient index (needs a target)."""
        return self.kind in (
            MetricKind.CI_PADDICK,
            MetricKind.CI_RTOG,
            MetricKind.HI,
            MetricKind.GI,
        )

    @property
    def needs_body(self) -> bool:
        """Whether computing the metric needs the body (external) DVH."""
        return self.kind in (MetricKind.CI_PADDICK, MetricKind.CI_RTOG, MetricKind.GI)

    def dose_level_gy(self, prescription_gy: float) -> float:
        """Dose level of a ``V`` metric in Gy (``%Rx`` levels resolved with ``prescription_gy``)."""
        if self.dose is None:
            raise MetricError(f"metric {self.text!r} has no dose level")
        return self.dose * prescription_gy if self.dose_unit == "Rx" else self.dose

    def __str__(self) -> str:
        return self.text


_SIMPLE = {
    "mean": MetricKind.MEAN,
    "dmean": MetricKind.MEAN,
    "max": MetricKind.MAX,
    "dmax": MetricKind.MAX,
    "min": MetricKind.MIN,
    "dmin": MetricKind.MIN,
}
_INDICES = {
    "ci_paddick": MetricKind.CI_PADDICK,
    "ci_rtog": MetricKind.CI_RTOG,
    "hi": MetricKind.HI,
    "gi": MetricKind.GI,
}
_D_RE = re.compile(rf"^d{_NUM}(?P<vunit>%|cc|cm3)?(?:\[(?P<out>[^\]]*)\])?$")
_V_RE = re.compile(rf"^v{_NUM}(?P<dunit>[a-z%]*)(?:\[(?P<out>[^\]]*)\])?$")
_SIMPLE_RE = re.compile(r"^(?P<name>[a-z_]+)(?:\[(?P<out>[^\]]*)\])?$")


def parse_metric(text: str) -> Metric:
    """Parse a metric string; raises :class:`MetricError` naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise MetricError(f"metric must be a non-empty string, got {text!r}")
    s = re.sub(r"\s+", "", text).lower()
    original = text.strip()

    m = _SIMPLE_RE.match(s)
    if m and m["name"] in _SIMPLE:
        _check_out(original, m["out"], ("gy",))
        return Metric(text=original, kind=_SIMPLE[m["name"]], unit="Gy")
    if m and m["name"] in _INDICES:
        if m["out"] is not None:
            raise MetricError(f"metric {original!r}: an index has no unit, drop '[{m['out']}]'")
        return Metric(text=original, kind=_INDICES[m["name"]], unit="")

    m = _D_RE.match(s)
    if m:
        volume = float(m["num"])
        if m["vunit"] is None:
            raise MetricError(
                f"metric {original!r}: missing volume unit; write D{m['num']}% or D{m['num']}cc"
            )
        _check_out(original, m["out"], ("gy",))
        if m["vunit"] == "%":
            if not 0.0 <= volume <= 100.0:
                raise MetricError(f"metric {original!r}: volume must be within 0..100 %")
            return Metric(
                text=original,
                kind=MetricKind.DOSE_AT_VOLUME,
                volume=volume,
                volume_unit="%",
                unit="Gy",
            )
        if volume < 0.0:
            raise MetricError(f"metric {original!r}: volume must be >= 0 cm3")
        return Metric(
            text=original,
            kind=MetricKind.DOSE_AT_VOLUME,
            volume=volume,
            volume_unit="cm3",
            unit="Gy",
        )

    m = _V_RE.match(s)
    if m:
        level = float(m["num"])
        dunit = m["dunit"]
        if level < 0.0:
            raise MetricError(f"metric {original!r}: dose level must be >= 0")
        if dunit == "gy":
            dose, dose_unit = level, "Gy"
        elif dunit == "cgy":
            dose, dose_unit = level / 100.0, "Gy"
        elif dunit == "%rx":
            if level > 1000.0:
                raise MetricError(f"metric {original!r}: dose level must be within 0..1000 %Rx")
            dose, dose_unit = level / 100.0, "Rx"
        elif dunit in ("", "%"):
            raise MetricError(
                f"metric {original!r}: missing or ambiguous dose unit; "
                f"write V{m['num']}Gy or V{m['num']}%Rx"
            )
        else:
            raise MetricError(
                f"metric {original!r}: unknown dose unit {dunit!r}; use Gy, cGy or %Rx"
            )
        out = _check_out(original, m["out"], ("%", "cc", "cm3"))
        unit: MetricUnit = "cm3" if out in ("cc", "cm3") else "%"
        return Metric(
            text=original,
            kind=MetricKind.VOLUME_AT_DOSE,
            dose=dose,
            dose_unit=dose_unit,
            unit=unit,
        )

    raise MetricError(
        f"unknown metric {original!r}; expected D<x>% , D<x>cc, V<x>Gy, V<x>%Rx (optional "
        "[%] or [cc]), Mean, Max, Min, CI_paddick, CI_rtog, HI or GI"
    )


def _check_out(original: str, out: str | None, allowed: tuple[str, ...]) -> str | None:
    if out is not None and out not in allowed:
        raise MetricError(
            f"metric {original!r}: output unit [{out}] not allowed here; "
            f"allowed: {', '.join('[' + a + ']' for a in allowed)}"
        )
    return out


class Quantity(FrozenModel):
    """A number with a unit as written in a template; ``Rx`` values are fractions of Rx.

    ``"1.07 Rx"`` and ``"107 %Rx"`` are both ``Quantity(value=1.07, unit="Rx")``;
    ``"4500 cGy"`` is ``Quantity(value=45.0, unit="Gy")``; a bare number has unit "".
    NaN and infinity are refused.
    """

    value: float
    unit: QuantityUnit = ""

    def resolve(self, unit: MetricUnit, prescription_gy: float) -> float:
        """The value in ``unit`` (a bare number is taken to be in ``unit`` already)."""
        if self.unit == "":
            return self.value
        if self.unit == "Rx" and unit == "Gy":
            return round(self.value * prescription_gy, 9)
        if self.unit == unit:
            return self.value
        raise MetricError(f"unit mismatch: {self} cannot be expressed in {unit or 'no unit'}")

    def compatible_with(self, unit: MetricUnit) -> bool:
        """Whether :meth:`resolve` can express this quantity in ``unit``."""
        return self.unit in ("", unit) or (self.unit == "Rx" and unit == "Gy")

    def __str__(self) -> str:
        return f"{self.value:g}" + (f" {self.unit}" if self.unit else "")


_Q_RE = re.compile(rf"^{_NUM}(?:e(?P<exp>[+-]?\d+))?(?P<unit>[a-z0-9%]*)$")
_Q_UNITS: dict[str, tuple[QuantityUnit, float]] = {
    "": ("", 1.0),
    "gy": ("Gy", 1.0),
    "cgy": ("Gy", 0.01),
    "rx": ("Rx", 1.0),
    "%rx": ("Rx", 0.01),
    "%": ("%", 1.0),
    "cc": ("cm3", 1.0),
    "cm3": ("cm3", 1.0),
}


def parse_quantity(value: Any) -> Quantity:
    """Parse ``45``, ``"45 Gy"``, ``"4500cGy"``, ``"1.07 Rx"``, ``"107%Rx"``, ``"15 %"``, ``"10 cc"``."""
    if isinstance(value, Quantity):
        return value
    if isinstance(value, bool):
        raise MetricError(f"expected a number or a number with a unit, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise MetricError(f"expected a finite number, got {value!r}")
        return Quantity(value=float(value))
    if isinstance(value, dict):
        try:
            return Quantity.model_validate(value)
        except ValidationError as exc:
            raise MetricError("; ".join(f"{f}: {r}" for f, r in validation_problems(exc))) from None
    if not isinstance(value, str):
        raise MetricError(f"expected a number or a number with a unit, got {value!r}")
    m = _Q_RE.match(re.sub(r"\s+", "", value).lower())
    if not m:
        raise MetricError(f"cannot read {value!r} as a number with a unit")
    if m["unit"] not in _Q_UNITS:
        raise MetricError(
            f"unknown unit {m['unit']!r} in {value!r}; use Gy, cGy, Rx, %Rx, %, cc or cm3"
        )
    unit, factor = _Q_UNITS[m["unit"]]
    number = float(f"{m['num']}e{m['exp'] or 0}") * factor
    if not math.isfinite(number):
        raise MetricError(f"expected a finite number, got {value!r}")
    return Quantity(value=number, unit=unit)
