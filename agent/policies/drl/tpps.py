"""Treatment planning parameters (TPPs) of a site template: what the DRL planner moves.

A :class:`Tpp` is one numeric parameter (``dose_gy``, ``volume_pct``, ``priority`` or an NTO
parameter) of one template objective, with its range from the template (``range:`` in
``site_templates/*.yaml``, doses resolved in Gy) and the factors of its two actions (up, down).

Names are stable and readable: ``<structure>.<operator>[<rank>].<parameter>`` on the
template's canonical structure ids, e.g. ``PTV.upper.dose_gy``, ``Bladder.upper[0].volume_pct``,
``Rectum.upper[1].priority``, ``Liver-PTV.mean.dose_gy``, ``NTO.priority``. The rank ``[k]`` is
written only when the template has several objectives of that structure, kind and operator (the
k-th in template order); a mean or gEUD objective writes its kind instead of the operator.

Which TPPs: for ``prostate-basic`` the nine of the published virtual planner (PTV, bladder and
rectum: dose threshold, weight, volume fraction) mapped onto our objectives (:data:`SELECTIONS`):
the PTV's hot-spot objective (dose, priority) and the coverage objective's priority (our PTV
objectives have no movable volume; coverage is set by normalization), and the first (high-dose)
DVH objective of bladder and rectum (dose, volume, priority). Other templates: every ranged
dose, volume and priority of their objectives, plus the NTO priority.

Step factors are the published ones (PTV dose x1.01 / x0.91; OAR doses x1.25 / x0.6; priorities
x1.65 / x0.6; volumes x1.25 / x0.8), bounded so that one step from anywhere in the range never
exceeds the guardrails' per-iteration step (:class:`agent.session.guardrails.GuardLimits`): a move
learnt in training is never clipped in use. A value at a range bound of 0 would stay 0 under a
factor, so values are kept at or above :data:`FLOOR_FRACTION` of the range's upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from agent.session.guardrails import GuardLimits
from agent.templates import SiteTemplate
from agent.templates.objectives import ObjectiveSpec
from esapi_bridge.dto import NormalTissueObjective, Objective, objective_key
from rtplan_common.models import FrozenModel

Parameter = Literal[
    "dose_gy", "volume_pct", "priority", "end_dose_pct", "fall_off", "start_dose_pct"
]
Direction = Literal["up", "down"]

#: Published step factors (up, down) by kind of TPP.
PUBLISHED_FACTORS: dict[str, tuple[float, float]] = {
    "target_dose": (1.01, 0.91),
    "oar_dose": (1.25, 0.6),
    "priority": (1.65, 0.6),
    "target_volume": (1.25, 0.8),
    "oar_volume": (1.25, 0.8),
    "nto": (1.25, 0.8),
}
#: The published nine TPPs mapped onto a template's objectives (other templates: all ranged).
SELECTIONS: dict[str, tuple[str, ...]] = {
    "prostate-basic": (
        "PTV.upper.dose_gy",
        "PTV.upper.priority",
        "PTV.lower.priority",
        "Bladder.upper[0].dose_gy",
        "Bladder.upper[0].volume_pct",
        "Bladder.upper[0].priority",
        "Rectum.upper[0].dose_gy",
        "Rectum.upper[0].volume_pct",
        "Rectum.upper[0].priority",
    ),
}
#: Lowest value a TPP takes, as a fraction of its range's upper bound (when the range starts at 0).
FLOOR_FRACTION = 0.02
#: Values are rounded to this many decimals (stable objective keys and journals).
DECIMALS = 4
_DEFAULT_PARAMETERS: tuple[Parameter, ...] = ("dose_gy", "volume_pct", "priority")


class Tpp(FrozenModel):
    """One movable parameter of one template objective.

    Attributes
    ----------
    name : the stable name (module docstring).
    objective_index : index of the objective in ``template.objectives``.
    objective_key : :func:`esapi_bridge.dto.objective_key` of the template's objective on
        canonical structure ids at the template's values.
    family, rank : the objective's structure, kind and operator (``NTO`` for the NTO) and
        its rank among the template objectives of that family.
    parameter : the objective field the TPP is.
    lo, hi : the range (Gy for doses; the template's Rx unless resolved otherwise).
    initial : the template's value.
    up_factor, down_factor : the factors of the two actions (guardrail-bounded).
    """

    name: str
    objective_index: int
    objective_key: str
    family: str
    rank: int
    parameter: Parameter
    lo: float
    hi: float
    initial: float
    up_factor: float
    down_factor: float

    @property
    def floor(self) -> float:
        """The smallest value a step may leave (``lo``, or a small positive value if ``lo`` is 0)."""
        return self.lo if self.lo > 0 else min(self.hi, FLOOR_FRACTION * self.hi)

    def clip(self, value: float) -> float:
        """``value`` within ``[floor, hi]``, rounded to :data:`DECIMALS`."""
        return round(min(self.hi, max(self.floor, value)), DECIMALS)

    def stepped(self, value: float, direction: Direction) -> float:
        """The value after one ``direction`` step from ``value`` (clipped to the range)."""
        factor = self.up_factor if direction == "up" else self.down_factor
        return self.clip(max(value, self.floor) * factor)

    def normalized(self, value: float) -> float:
        """``value`` mapped to 0..1 over the range."""
        span = self.hi - self.lo
        return 0.0 if span <= 0 else min(1.0, max(0.0, (value - self.lo) / span))


def _family_of(spec: ObjectiveSpec) -> str:
    if spec.kind == "nto":
        return "NTO"
    label = spec.operator.value if spec.kind == "point" and spec.operator else spec.kind
    return f"{spec.structure}.{label}"


def _family_of_objective(obj: Objective, canonical: Mapping[str, str]) -> str:
    if isinstance(obj, NormalTissueObjective):
        return "NTO"
    label = obj.operator.value if obj.kind == "point" else obj.kind
    return f"{canonical.get(obj.structure_id, obj.structure_id)}.{label}"


def _kind(spec: ObjectiveSpec, parameter: str, template: SiteTemplate) -> str:
    if spec.kind == "nto":
        return "nto"
    if parameter == "priority":
        return "priority"
    target = spec.structure is not None and template.structure(spec.structure).is_target
    return f"{'target' if target else 'oar'}_{'dose' if parameter == 'dose_gy' else 'volume'}"


def _bounded(factors: tuple[float, float], hi: float, step: float | None) -> tuple[float, float]:
    """Factors such that ``|v * f - v| <= step`` for every ``v <= hi``."""
    up, down = factors
    if step is None or hi <= 0:
        return up, down
    return min(up, 1.0 + step / hi), max(down, 1.0 - step / hi)


def tpps_of(
    template: SiteTemplate,
    prescription_gy: float | None = None,
    limits: GuardLimits | None = None,
    selection: Sequence[str] | None = None,
) -> list[Tpp]:
    """The TPPs of ``template`` (doses resolved at ``prescription_gy``, default the template's).

    ``selection`` (names) overrides :data:`SELECTIONS`; unknown names raise ``ValueError``.
    """
    lim = limits or GuardLimits()
    rx = template.prescription.dose_gy if prescription_gy is None else prescription_gy
    identity = {s.id: s.id for s in template.structures}
    counts: dict[str, int] = {}
    for spec in template.objectives:
        counts[_family_of(spec)] = counts.get(_family_of(spec), 0) + 1
    seen: dict[str, int] = {}
    out: list[Tpp] = []
    for index, spec in enumerate(template.objectives):
        family = _family_of(spec)
        rank = seen.get(family, 0)
        seen[family] = rank + 1
        prefix = f"{family}[{rank}]" if counts[family] > 1 else family
        obj = spec.to_objective(spec.structure and identity[spec.structure], rx)
        rng = spec.resolved_range(rx)
        parameters: tuple[Parameter, ...] = (
            ("priority",) if spec.kind == "nto" else _DEFAULT_PARAMETERS
        )
        for parameter in parameters:
            bounds = getattr(rng, parameter, None)
            if bounds is None or not bounds[1] > bounds[0]:
                continue
            step = {
                "dose_gy": lim.max_dose_step_rx * rx,
                "volume_pct": lim.max_volume_step_pct,
                "priority": None,  # max(abs, factor x old) >= old: the published factors fit
            }.get(parameter)
            up, down = _bounded(
                PUBLISHED_FACTORS[_kind(spec, parameter, template)], bounds[1], step
            )
            out.append(
                Tpp(
                    name=f"{prefix}.{parameter}",
                    objective_index=index,
                    objective_key=objective_key(obj),
                    family=family,
                    rank=rank,
                    parameter=parameter,
                    lo=float(bounds[0]),
                    hi=float(bounds[1]),
                    initial=float(getattr(obj, parameter)),
                    up_factor=up,
                    down_factor=down,
                )
            )
    chosen = selection if selection is not None else SELECTIONS.get(template.name)
    if chosen is None:
        return out
    by_name = {t.name: t for t in out}
    unknown = [n for n in chosen if n not in by_name]
    if unknown:
        raise ValueError(
            f"template {template.name!r} has no TPP {', '.join(unknown)}; "
            f"its TPPs: {', '.join(by_name)}"
        )
    return [by_name[n] for n in chosen]


def _positions(
    tpps: Sequence[Tpp], objectives: Sequence[Objective], structure_map: Mapping[str, str]
) -> dict[str, int]:
    """TPP name -> index in ``objectives`` (the ``rank``-th objective of the TPP's family)."""
    canonical = {pid: cid for cid, pid in structure_map.items()}
    families: dict[str, list[int]] = {}
    for i, obj in enumerate(objectives):
        families.setdefault(_family_of_objective(obj, canonical), []).append(i)
    out: dict[str, int] = {}
    for t in tpps:
        found = families.get(t.family, [])
        if t.rank >= len(found):
            raise ValueError(
                f"TPP {t.name}: the objectives hold {len(found)} objective(s) of {t.family}; "
                "plan from the template's objectives (same structures, kinds and operators)"
            )
        out[t.name] = found[t.rank]
    return out


def read_values(
    tpps: Sequence[Tpp], objectives: Sequence[Objective], structure_map: Mapping[str, str]
) -> dict[str, float]:
    """The current value of every TPP in ``objectives`` (plan structure ids; canonical -> plan
    ``structure_map``), by TPP name."""
    pos = _positions(tpps, objectives, structure_map)
    return {t.name: float(getattr(objectives[pos[t.name]], t.parameter)) for t in tpps}


def write_values(
    tpps: Sequence[Tpp],
    objectives: Sequence[Objective],
    values: Mapping[str, float],
    structure_map: Mapping[str, str],
) -> list[Objective]:
    """``objectives`` with the TPPs named in ``values`` set (each clipped to its range).

    A volume that would give an objective the key of another objective (two DVH objectives
    at the same volume: the guardrails refuse repeats) is moved 0.5 % further away from it.
    """
    pos = _positions(tpps, objectives, structure_map)
    by_name = {t.name: t for t in tpps}
    out = list(objectives)
    for name, value in values.items():
        if name not in by_name:
            raise ValueError(f"unknown TPP {name!r}; known: {', '.join(by_name)}")
        t = by_name[name]
        i = pos[name]
        new = t.clip(float(value))
        if not math.isclose(new, float(getattr(out[i], t.parameter)), abs_tol=1e-9):
            out[i] = out[i].model_copy(update={t.parameter: new})
            if t.parameter == "volume_pct":
                out[i] = _distinct_key(out, i, t)
    return out


def _distinct_key(objectives: list[Objective], i: int, tpp: Tpp) -> Objective:
    obj = objectives[i]
    others = {objective_key(o) for k, o in enumerate(objectives) if k != i}
    for shift in (0.5, -0.5, 1.0, -1.0):
        if objective_key(obj) not in others:
            return obj
        obj = objectives[i].model_copy(update={"volume_pct": tpp.clip(obj.volume_pct + shift)})  # type: ignore[union-attr]
    return obj


def random_values(tpps: Sequence[Tpp], rng_uniform: Sequence[float]) -> dict[str, float]:
    """Values from uniforms in [0, 1) (one per TPP): log-uniform for priorities, else uniform,
    over ``[floor, hi]``."""
    out: dict[str, float] = {}
    for t, u in zip(tpps, rng_uniform, strict=True):
        lo = t.floor
        if t.parameter == "priority" and lo > 0:
            out[t.name] = t.clip(math.exp(math.log(lo) + u * (math.log(t.hi) - math.log(lo))))
        else:
            out[t.name] = t.clip(lo + u * (t.hi - lo))
    return out


def decode_action(tpps: Sequence[Tpp], action: int) -> tuple[Tpp, Direction]:
    """The TPP and direction of discrete action ``action``: ``2 i`` raises TPP ``i``,
    ``2 i + 1`` lowers it."""
    if not 0 <= action < 2 * len(tpps):
        raise ValueError(f"action {action} outside 0..{2 * len(tpps) - 1}")
    return tpps[action // 2], ("up" if action % 2 == 0 else "down")


def apply_action(
    tpps: Sequence[Tpp],
    objectives: Sequence[Objective],
    structure_map: Mapping[str, str],
    action: int,
) -> tuple[list[Objective], bool]:
    """``objectives`` after ``action`` (:func:`decode_action`) and whether anything changed
    (a TPP at its range bound does not move)."""
    tpp, direction = decode_action(tpps, action)
    value = read_values([tpp], objectives, structure_map)[tpp.name]
    new = tpp.stepped(value, direction)
    if math.isclose(new, value, abs_tol=1e-9):
        return list(objectives), False
    return write_values(tpps, objectives, {tpp.name: new}, structure_map), True
