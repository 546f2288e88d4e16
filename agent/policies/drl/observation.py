"""The observation of the DRL planner: one function shared by the environment and ``--policy drl``.

The vector holds, in order:

- cumulative DVHs of :data:`DVH_BINS` bins (volume fraction receiving at least each dose) of the
  score's structures in template order: a target from 1.0 to 1.15 Rx, an organ at risk from
  ``min(0.6, 0.8 x its lowest criterion dose level)`` Rx to 1.1 Rx (prostate-basic: PTV
  1.0-1.15 Rx, bladder and rectum 0.6-1.1 Rx, as published);
- the margin of every clinical goal in template order, in units of its acceptable variation
  (or 10 % of its limit), bounded to +-:data:`MARGIN_BOUND` and scaled to -1..1 (0 for a goal
  the plan lacks the structure of);
- every TPP's value mapped to 0..1 over its range (:meth:`Tpp.normalized`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from agent.evaluation import Evaluation
from agent.policies.drl.tpps import Tpp
from agent.templates import SiteTemplate
from esapi_bridge.dto import DvhCurve

#: Bins of each DVH in the observation (published: 100).
DVH_BINS = 100
#: Dose ranges (fractions of Rx) of a target's and an organ's DVH bins.
TARGET_DVH_RX = (1.0, 1.15)
OAR_DVH_RX = (0.6, 1.1)
#: Goal margins are bounded to this many variations before scaling to -1..1.
MARGIN_BOUND = 5.0


@dataclass(frozen=True)
class DvhBins:
    """The DVH bins of one structure: canonical id and dose range (Gy)."""

    structure: str
    lo_gy: float
    hi_gy: float

    def levels_gy(self) -> NDArray[np.float64]:
        """The bins' dose levels."""
        return np.linspace(self.lo_gy, self.hi_gy, DVH_BINS)


@dataclass(frozen=True)
class ObservationSpec:
    """What the observation holds for one template (module docstring)."""

    dvhs: tuple[DvhBins, ...]
    goal_ids: tuple[str, ...]
    tpps: tuple[Tpp, ...]

    @property
    def size(self) -> int:
        """Length of the observation vector."""
        return DVH_BINS * len(self.dvhs) + len(self.goal_ids) + len(self.tpps)


def _lowest_level_rx(template: SiteTemplate, structure: str, rx_gy: float) -> float | None:
    levels: list[float] = []
    for c in template.score.criteria if template.score else []:
        if c.structure != structure:
            continue
        if c.metric.dose is not None:
            levels.append(c.metric.dose_level_gy(rx_gy) / rx_gy)
        elif c.metric.unit == "Gy":
            levels.append(c.full.resolve("Gy", rx_gy) / rx_gy)
    return min(levels) if levels else None


def observation_spec(
    template: SiteTemplate, tpps: Sequence[Tpp], prescription_gy: float | None = None
) -> ObservationSpec:
    """The observation of ``template`` with ``tpps`` (DVH levels at ``prescription_gy``)."""
    rx = template.prescription.dose_gy if prescription_gy is None else prescription_gy
    structures: list[str] = []
    named = [c.structure for c in template.score.criteria] if template.score else []
    if not named:  # no score: the structures of the goals the plan must have
        named = [g.structure for g in template.goals if template.structure(g.structure).required]
    for sid in named:
        if sid not in structures:
            structures.append(sid)
    bins: list[DvhBins] = []
    for sid in structures:
        if template.structure(sid).is_target:
            lo, hi = TARGET_DVH_RX
        else:
            lowest = _lowest_level_rx(template, sid, rx)
            lo = OAR_DVH_RX[0] if lowest is None else min(OAR_DVH_RX[0], 0.8 * lowest)
            hi = OAR_DVH_RX[1]
        bins.append(DvhBins(sid, lo * rx, hi * rx))
    return ObservationSpec(
        dvhs=tuple(bins), goal_ids=tuple(g.id for g in template.goals), tpps=tuple(tpps)
    )


def dvh_fractions(curve: DvhCurve, levels_gy: NDArray[np.float64]) -> NDArray[np.float64]:
    """Volume fraction (0..1) of ``curve`` receiving at least each of ``levels_gy``."""
    dose = np.asarray(curve.dose_gy, dtype=np.float64)
    volume = np.asarray(curve.volume_pct, dtype=np.float64) / 100.0
    return np.interp(levels_gy, dose, volume, left=float(volume[0]), right=0.0)


def observe(
    spec: ObservationSpec,
    dvhs: Mapping[str, DvhCurve],
    structure_map: Mapping[str, str],
    evaluation: Evaluation,
    tpp_values: Mapping[str, float],
) -> NDArray[np.float32]:
    """The observation vector (module docstring); ``dvhs`` keyed by plan structure id.

    Raises
    ------
    KeyError
        When a DVH the observation needs is missing (the message names the structure).
    """
    parts: list[NDArray[np.float64]] = []
    for b in spec.dvhs:
        plan_id = structure_map.get(b.structure, b.structure)
        if plan_id not in dvhs:
            raise KeyError(f"the observation needs the DVH of {b.structure!r} (plan {plan_id!r})")
        parts.append(dvh_fractions(dvhs[plan_id], b.levels_gy()))
    margins = {g.goal_id: g for g in evaluation.goals}
    goal_part = np.zeros(len(spec.goal_ids))
    for i, gid in enumerate(spec.goal_ids):
        g = margins.get(gid)
        if g is None:
            continue
        scale = g.variation if g.variation > 0 else max(0.1 * abs(g.limit), 1e-3)
        goal_part[i] = np.clip(g.margin / scale, -MARGIN_BOUND, MARGIN_BOUND) / MARGIN_BOUND
    parts.append(goal_part)
    parts.append(np.array([t.normalized(tpp_values[t.name]) for t in spec.tpps]))
    return np.concatenate(parts).astype(np.float32)
