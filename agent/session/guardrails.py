"""Guardrails between every policy and the TPS.

A proposal is *rejected* (never sent to the TPS; the reasons go back to the policy)
when it names an unknown or empty structure, holds a non-finite number, puts a volume
outside 0-100 % or a priority outside 0-1000 (or outside the template's TPP range),
puts a target dose outside the template's bounds around the prescription or an OAR
dose above the ceiling, repeats an objective, or leaves no target objective.
A proposal whose changes exceed the per-iteration step bounds is *clipped* to them
(the adjustments are recorded).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from agent.session.records import GuardVerdict, Proposal, VerdictStatus
from agent.templates import SiteTemplate, TppRange
from agent.templates.schema import TARGET_TYPES
from esapi_bridge.dto import (
    EudObjective,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    PointObjective,
    StructureInfo,
    objective_key,
)
from rtplan_common.models import validation_problems

_FLOAT_FIELDS = (
    "dose_gy",
    "volume_pct",
    "priority",
    "parameter_a",
    "distance_from_target_border_mm",
    "start_dose_pct",
    "end_dose_pct",
    "fall_off",
)
_EPS = 1e-6


@dataclass(frozen=True)
class GuardLimits:
    """Numeric limits of the guardrails (fractions of the structure's prescribed level).

    Attributes
    ----------
    target_dose_rx : target objective doses must lie within these fractions of the
        target's dose level when the template gives no range for the objective.
    oar_ceiling_rx : no OAR objective dose above this fraction of the prescription.
    max_dose_step_rx : largest dose change of one objective per iteration (fraction of Rx).
    max_priority_step : largest priority change per iteration: ``max(abs, factor * old)``.
    max_volume_step_pct : largest volume change (percentage points) per iteration.
    """

    target_dose_rx: tuple[float, float] = (0.90, 1.15)
    oar_ceiling_rx: float = 1.10
    max_dose_step_rx: float = 0.15
    max_priority_step_abs: float = 150.0
    max_priority_step_factor: float = 1.0
    max_volume_step_pct: float = 20.0

    def without_step_bounds(self) -> GuardLimits:
        """These limits with no per-iteration step bounds (``SessionConfig.step_bounds``
        False: each proposal is an independent point, e.g. a Bayesian-optimization trial);
        the range, ceiling and finiteness checks stay."""
        inf = math.inf
        return dataclasses.replace(
            self,
            max_dose_step_rx=inf,
            max_priority_step_abs=inf,
            max_priority_step_factor=inf,
            max_volume_step_pct=inf,
        )


def _family(obj: Objective) -> str:
    if isinstance(obj, NormalTissueObjective):
        return "NTO"
    return f"{obj.structure_id}:{obj.kind}:{obj.operator.value}"


def _match_previous(
    proposed: Sequence[Objective], current: Sequence[Objective]
) -> dict[str, Objective]:
    """Each proposed objective's predecessor: same key, else the one unmatched objective of
    the same structure, kind and operator (a point objective whose volume was moved)."""
    old = {objective_key(o): o for o in current}
    new_keys = {objective_key(o) for o in proposed}
    spare: dict[str, list[Objective]] = {}
    for key, obj in old.items():
        if key not in new_keys:
            spare.setdefault(_family(obj), []).append(obj)
    out: dict[str, Objective] = {}
    for obj in proposed:
        key = objective_key(obj)
        if key in old:
            out[key] = old[key]
        elif len(spare.get(_family(obj), [])) == 1:
            out[key] = spare[_family(obj)][0]
    return out


def _in(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - _EPS <= value <= bounds[1] + _EPS


_OBJECTIVE_LIST: TypeAdapter[list[Objective]] = TypeAdapter(list[Objective])


def objective_problems(objectives: Sequence[Objective]) -> list[str]:
    """Why ``objectives`` are not valid objectives (a policy may have built them without
    validation, e.g. with ``model_copy``); empty when they are."""
    try:
        _OBJECTIVE_LIST.validate_python([o.model_dump() for o in objectives])
    except ValidationError as exc:
        return [f"objectives{field}: {reason}" for field, reason in validation_problems(exc)]
    return []


def recordable(proposal: Proposal) -> Proposal:
    """``proposal`` as the journal may keep it: invalid objectives are left out (the
    verdict's reasons name them), so that every journal line can be read back."""
    if not objective_problems(proposal.objectives):
        return proposal
    return proposal.model_copy(update={"objectives": []})


class Guardrails:
    """Validate and bound proposals for one plan.

    Parameters
    ----------
    template, structure_map
        The site template and its canonical -> plan structure id map.
    structures
        The plan's structures (ids, types, emptiness).
    prescription_gy
        The plan's prescribed dose (Rx-relative bounds are resolved with it).
    limits
        The numeric limits.
    """

    def __init__(
        self,
        template: SiteTemplate,
        structure_map: Mapping[str, str],
        structures: Sequence[StructureInfo],
        prescription_gy: float,
        limits: GuardLimits | None = None,
    ) -> None:
        self.template = template
        self.limits = limits or GuardLimits()
        self.rx_gy = prescription_gy
        self.structures = {s.structure_id: s for s in structures}
        self.canonical = {pid: cid for cid, pid in structure_map.items()}
        self.ranges: dict[str, TppRange] = template.tpp_ranges_for(structure_map, prescription_gy)
        self.targets = {
            sid
            for sid, s in self.structures.items()
            if s.dicom_type.upper() in TARGET_TYPES
            or (sid in self.canonical and template.structure(self.canonical[sid]).is_target)
        }

    # -- public -------------------------------------------------------------------------
    def check(
        self, proposal: Proposal, current: Sequence[Objective] | None = None
    ) -> tuple[GuardVerdict, list[Objective] | None]:
        """Judge ``proposal`` against the current objectives.

        Returns
        -------
        (verdict, objectives)
            ``objectives`` is what may be applied (clipped if needed), ``None`` if rejected.
        """
        reasons: list[str] = []
        keys: set[str] = set()
        for obj in proposal.objectives:
            key = objective_key(obj)
            if key in keys:
                reasons.append(f"{key}: appears twice in the proposal")
            keys.add(key)
            reasons += self._check_one(obj, key)
        if not any(self._is_target_objective(o) for o in proposal.objectives):
            reasons.append(
                "the proposal has no lower/exact objective on a target "
                f"({', '.join(sorted(self.targets)) or 'none known'}); at least one is required"
            )
        reasons = reasons or objective_problems(proposal.objectives)  # what no check above names
        if reasons:
            return GuardVerdict(status=VerdictStatus.REJECTED, reasons=reasons), None
        if current is None:
            return GuardVerdict(status=VerdictStatus.ACCEPTED), list(proposal.objectives)
        old = _match_previous(proposal.objectives, current)
        adjustments: list[str] = []
        out: list[Objective] = []
        for obj in proposal.objectives:
            key = objective_key(obj)
            out.append(self._bound_step(obj, old.get(key), key, adjustments))
        status = VerdictStatus.CLIPPED if adjustments else VerdictStatus.ACCEPTED
        return GuardVerdict(status=status, adjustments=adjustments), out

    # -- checks -------------------------------------------------------------------------
    def _is_target_objective(self, obj: Objective) -> bool:
        if isinstance(obj, NormalTissueObjective | MeanDoseObjective):
            return False
        return obj.structure_id in self.targets and obj.operator in (
            ObjectiveOperator.LOWER,
            ObjectiveOperator.EXACT,
        )

    def _check_one(self, obj: Objective, key: str) -> list[str]:
        reasons: list[str] = []
        for field in _FLOAT_FIELDS:
            value = getattr(obj, field, None)
            if value is None:
                continue
            if not isinstance(value, int | float) or not math.isfinite(value):
                reasons.append(f"{key}: {field} = {value!r} is not a finite number")
        if reasons:
            return reasons
        if not _in(obj.priority, (0.0, 1000.0)):
            reasons.append(f"{key}: priority {obj.priority:g} outside 0..1000")
        if isinstance(obj, PointObjective) and not _in(obj.volume_pct, (0.0, 100.0)):
            reasons.append(f"{key}: volume_pct {obj.volume_pct:g} outside 0..100")
        rng = self.ranges.get(key)
        if rng is not None:
            reasons += self._check_range(obj, key, rng)
        if isinstance(obj, NormalTissueObjective):
            return reasons
        sid = obj.structure_id
        info = self.structures.get(sid)
        if info is None:
            known = ", ".join(sorted(self.structures))
            return [*reasons, f"{key}: structure {sid!r} does not exist; the plan has: {known}"]
        if info.is_empty:
            reasons.append(f"{key}: structure {sid!r} is empty")
        if sid in self.targets:
            if rng is None or rng.dose_gy is None:
                level = self._level_gy(sid)
                lo, hi = (f * level for f in self.limits.target_dose_rx)
                if not _in(obj.dose_gy, (lo, hi)):
                    reasons.append(
                        f"{key}: target dose_gy {obj.dose_gy:.2f} outside {lo:.2f}..{hi:.2f} Gy "
                        f"({self.limits.target_dose_rx[0]:g}-{self.limits.target_dose_rx[1]:g} "
                        "x the target's prescribed level)"
                    )
        else:
            ceiling = self.limits.oar_ceiling_rx * self.rx_gy
            if obj.dose_gy > ceiling + _EPS:
                reasons.append(
                    f"{key}: dose_gy {obj.dose_gy:.2f} above the OAR ceiling {ceiling:.2f} Gy "
                    f"({self.limits.oar_ceiling_rx:g} x Rx)"
                )
        return reasons

    def _check_range(self, obj: Objective, key: str, rng: TppRange) -> list[str]:
        reasons: list[str] = []
        for field in _FLOAT_FIELDS:
            bounds = getattr(rng, field, None)
            value = getattr(obj, field, None)
            if bounds is None or value is None:
                continue
            if not _in(float(value), bounds):
                reasons.append(
                    f"{key}: {field} {value:g} outside the template range "
                    f"{bounds[0]:g}..{bounds[1]:g}"
                )
        return reasons

    def _level_gy(self, plan_sid: str) -> float:
        canonical = self.canonical.get(plan_sid)
        if canonical is None:
            return self.rx_gy
        return self.template.prescription.level_gy(canonical, self.rx_gy)

    # -- step bounds --------------------------------------------------------------------
    def _bound_step(
        self, obj: Objective, old: Objective | None, key: str, notes: list[str]
    ) -> Objective:
        if old is None or type(old) is not type(obj):
            return obj
        lim = self.limits
        updates: dict[str, float] = {}
        steps: dict[str, float] = {
            "priority": max(lim.max_priority_step_abs, lim.max_priority_step_factor * old.priority)
        }
        if isinstance(obj, PointObjective | MeanDoseObjective | EudObjective):
            steps["dose_gy"] = lim.max_dose_step_rx * self.rx_gy
        if isinstance(obj, PointObjective):
            steps["volume_pct"] = lim.max_volume_step_pct
        for field, step in steps.items():
            new_v, old_v = float(getattr(obj, field)), float(getattr(old, field))
            if abs(new_v - old_v) > step + _EPS:
                bounded = old_v + math.copysign(step, new_v - old_v)
                updates[field] = bounded
                notes.append(
                    f"{key}: {field} change {old_v:g} -> {new_v:g} exceeds the step bound "
                    f"{step:g}; clipped to {bounded:g}"
                )
        return obj.model_copy(update=updates) if updates else obj
