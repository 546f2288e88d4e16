"""The search space of the Bayesian-optimization baseline: the template's TPP ranges.

Every parameter of an objective whose template range is a proper interval (``lo < hi``) is one
dimension (dose in Gy, volume in %, priority, the NTO's parameters); a parameter without a
range stays as the template set it. A point of the space is a complete objective list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.templates.objectives import TppRange
from esapi_bridge.dto import Objective, objective_key


@dataclass(frozen=True)
class TppDim:
    """One searched TPP: ``field`` of objective ``index`` (key ``key``), within ``[lo, hi]``."""

    index: int
    key: str
    field: str
    lo: float
    hi: float

    @property
    def name(self) -> str:
        """The parameter name in the study (``Rectum:point:upper:30/dose_gy``)."""
        return f"{self.key}/{self.field}"


@dataclass(frozen=True)
class TppSpace:
    """The base objectives and the dimensions a trial may move."""

    base: tuple[Objective, ...]
    dims: tuple[TppDim, ...]

    @classmethod
    def build(cls, objectives: Sequence[Objective], ranges: Mapping[str, TppRange]) -> TppSpace:
        """The space of ``objectives`` (the template's, as applied) within ``ranges``
        (keyed by :func:`esapi_bridge.dto.objective_key`, as
        :meth:`agent.templates.SiteTemplate.tpp_ranges_for` returns them)."""
        dims: list[TppDim] = []
        for i, obj in enumerate(objectives):
            key = objective_key(obj)
            rng = ranges.get(key)
            if rng is None:
                continue
            for field, bounds in rng.model_dump().items():
                if bounds is not None and float(bounds[1]) > float(bounds[0]):
                    dims.append(TppDim(i, key, field, float(bounds[0]), float(bounds[1])))
        return cls(tuple(objectives), tuple(dims))

    def point(self, objectives: Sequence[Objective]) -> dict[str, float] | None:
        """The parameters of ``objectives`` (same order as the base), or ``None`` when one lies
        outside its range or the list does not match the base."""
        if len(objectives) != len(self.base):
            return None
        out: dict[str, float] = {}
        for d in self.dims:
            value = getattr(objectives[d.index], d.field, None)
            if value is None or not d.lo <= float(value) <= d.hi:
                return None
            out[d.name] = float(value)
        return out

    def objectives(self, params: Mapping[str, float]) -> list[Objective]:
        """The base objectives with the parameters of ``params`` set (validated DTOs)."""
        updates: dict[int, dict[str, float]] = {}
        for d in self.dims:
            updates.setdefault(d.index, {})[d.field] = float(params[d.name])
        out: list[Objective] = []
        for i, obj in enumerate(self.base):
            if i in updates:
                obj = type(obj).model_validate({**obj.model_dump(), **updates[i]})
            out.append(obj)
        return out
