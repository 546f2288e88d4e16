"""A small planning session built by hand, for report tests (and anyone who needs one).

A synthetic phantom (spherical PTV, rectum and bladder inside an elliptic body) whose
dose falls off outside the PTV more steeply at every iteration; DVHs from
:func:`mock_tps.dvh.dvh_from_doses`; evaluations computed from those DVHs with the real
:mod:`agent.evaluation` models; records written with the real :class:`agent.session.journal.Journal`;
plan snapshots saved through :func:`agent.report.save_plan_snapshot` from :class:`FakeTps`.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from agent.evaluation import CriterionResult, Evaluation, GoalResult, GoalStatus
from agent.report import save_plan_snapshot
from agent.session.journal import Journal
from agent.session.records import (
    CaseIdentity,
    GuardVerdict,
    IterationRecord,
    IterationTimings,
    Proposal,
    SessionConfig,
    SessionEvent,
    SessionHeader,
    SessionSummary,
    StopReason,
    VerdictStatus,
)
from esapi_bridge.dto import (
    DoseSlice,
    DvhCurve,
    MeanDoseObjective,
    NormalTissueObjective,
    Objective,
    ObjectiveOperator,
    OptimizationResult,
    PointObjective,
    SlicePlane,
)
from esapi_bridge.errors import CapabilityUnavailable
from esapi_bridge.port import TpsSession
from mock_tps.dvh import dvh_from_doses

RX_GY = 60.0
SPACING_MM = 4.0
SHAPE = (44, 40, 30)  # x, y, z voxels
STRUCTURES = ("PTV", "Rectum", "Bladder", "BODY")
# per iteration: dose fall-off length outside the PTV (mm) and dose drop at the PTV edge
FALLOFF_MM = ((30.0, 0.12), (20.0, 0.09), (14.0, 0.07), (11.0, 0.06))
RATIONALES = (
    "",
    "Rectum V50Gy fails by 6 %: lower the rectum upper objective 52 -> 48 Gy, priority 80 -> 100.",
    "Rectum now met; bladder V55Gy close: tighten the bladder objective <by 2 Gy> & keep the PTV.",
    "All priority-1 goals met; small trade: raise the NTO priority to steepen the fall-off.",
)


def phantom() -> dict[str, NDArray[np.bool_]]:
    """Masks on a ``SHAPE`` grid of ``SPACING_MM`` voxels (arrays [ix, iy, iz], y anterior->posterior)."""
    x, y, z = np.meshgrid(*(np.arange(n) * SPACING_MM for n in SHAPE), indexing="ij")
    cx, cy, cz = (np.array(SHAPE) - 1) * SPACING_MM / 2
    body = ((x - cx) / 80) ** 2 + ((y - cy) / 68) ** 2 <= 1.0
    ptv = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= 24.0**2
    rectum = ((x - cx) ** 2 + (y - cy - 32) ** 2 <= 11.0**2) & (np.abs(z - cz) <= 40)
    bladder = (x - cx) ** 2 + (y - cy + 30) ** 2 + (z - cz - 14) ** 2 <= 22.0**2
    return {"PTV": ptv, "Rectum": rectum & ~ptv, "Bladder": bladder & ~ptv, "BODY": body}


def plan_dose(
    masks: dict[str, NDArray[np.bool_]], plan: tuple[float, float]
) -> NDArray[np.float64]:
    """Dose (Gy) of one plan: ``plan`` = (fall-off length outside the PTV in mm, dose drop at its edge)."""
    falloff_mm, edge_drop = plan
    x, y, z = np.meshgrid(*(np.arange(n) * SPACING_MM for n in SHAPE), indexing="ij")
    cx, cy, cz = (np.array(SHAPE) - 1) * SPACING_MM / 2
    r_rel = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / 24.0
    inside = RX_GY * 1.04 * (1.0 - edge_drop * np.minimum(r_rel, 1.0) ** 4)
    distance_mm = ndimage.distance_transform_edt(~masks["PTV"], sampling=SPACING_MM)
    outside = RX_GY * 1.04 * (1.0 - edge_drop) * np.exp(-((distance_mm / falloff_mm) ** 1.5))
    return np.where(masks["BODY"], np.where(masks["PTV"], inside, outside), 0.0)


class FakeTps:
    """Just enough of a ``TpsSession`` for plan snapshots: DVHs and dose planes."""

    def __init__(
        self, dose: NDArray[np.float64], masks: dict[str, NDArray[np.bool_]], slices: bool
    ):
        self.dose, self.masks, self.slices = dose, masks, slices

    def get_dvh(self, structure_id: str) -> DvhCurve:
        voxel_cm3 = (SPACING_MM / 10.0) ** 3
        return dvh_from_doses(structure_id, self.dose[self.masks[structure_id]], voxel_cm3)

    def dose_slice(self, plane: SlicePlane, index: int | None = None) -> DoseSlice:
        if not self.slices:
            raise CapabilityUnavailable("dose planes are not offered by this TPS")
        cut, rows, cols = {
            "axial": (2, "y", "x"),
            "coronal": (1, "z", "x"),
            "sagittal": (0, "z", "y"),
        }[plane.value]
        index = SHAPE[cut] // 2 if index is None else index

        def plane_of(a: NDArray[np.generic]) -> NDArray[np.generic]:
            return np.take(a, index, axis=cut).T  # remaining axes ascend; rows = the later one

        return DoseSlice(
            plane=plane,
            index=index,
            position_mm=index * SPACING_MM,
            row_axis=rows,
            col_axis=cols,
            spacing_mm=(SPACING_MM, SPACING_MM),
            origin_mm=(0.0, 0.0),
            dose_gy=plane_of(self.dose).tolist(),
            masks={s: plane_of(m).tolist() for s, m in self.masks.items()},
        )


def as_tps(fake: FakeTps) -> TpsSession:
    """The fake typed as the port (it implements the two methods snapshots use)."""
    return cast(TpsSession, fake)


# (goal id, structure, metric, comparator, limit, variation, unit, priority)
GOALS = (
    ("ptv_d95", "PTV", "D95%", ">=", 57.0, 1.0, "Gy", 1),
    ("ptv_d2", "PTV", "D2%", "<=", 62.0, 1.0, "Gy", 2),
    ("rectum_v50", "Rectum", "V50Gy", "<=", 5.0, 2.0, "%", 1),
    ("rectum_mean", "Rectum", "Mean", "<=", 30.0, 0.0, "Gy", 2),
    ("bladder_v30", "Bladder", "V30Gy", "<=", 25.0, 5.0, "%", 2),
    ("body_v30cc", "BODY", "V30Gy[cc]", "<=", 400.0, 0.0, "cm3", 3),
)


def _value(curve: DvhCurve, metric: str) -> float:
    if metric.startswith("D"):
        return curve.dose_at_volume_pct(float(metric[1:-1]))
    if metric == "Mean":
        return curve.mean_dose_gy
    dose_gy = float(metric[1:].split("Gy")[0])
    cc = metric.endswith("[cc]")
    return curve.volume_cm3_at_dose(dose_gy) if cc else curve.volume_pct_at_dose(dose_gy)


def evaluate_dvhs(dvhs: dict[str, DvhCurve]) -> Evaluation:
    """The :class:`Evaluation` of ``GOALS`` (and one score criterion) on these DVHs."""
    goals = []
    for gid, sid, metric, comp, limit, variation, unit, priority in GOALS:
        value = _value(dvhs[sid], metric)
        margin = value - limit if comp == ">=" else limit - value
        status = GoalStatus.MET if margin >= 0 else GoalStatus.FAILED
        if status is GoalStatus.FAILED and margin >= -variation:
            status = GoalStatus.WITHIN_VARIATION
        goals.append(
            GoalResult(
                goal_id=gid,
                structure_id=sid,
                plan_structure_id=sid,
                metric=metric,
                comparator=comp,
                limit=limit,
                variation=variation,
                unit=unit,
                value=value,
                status=status,
                margin=margin,
                priority=priority,
            )
        )
    rectum_mean = dvhs[
        "Rectum"
    ].mean_dose_gy  # one score criterion: 10 points at <= 15 Gy, 0 at >= 40 Gy
    criterion = CriterionResult(
        criterion_id="rectum_mean_pts",
        structure_id="Rectum",
        plan_structure_id="Rectum",
        metric="Mean",
        comparator="<=",
        unit="Gy",
        value=rectum_mean,
        full=15.0,
        zero=40.0,
        points=10.0 * min(1.0, max(0.0, (40.0 - rectum_mean) / 25.0)),
        max_points=10.0,
    )
    met_p1 = all(g.status is GoalStatus.MET for g in goals if g.priority == 1)
    score = sum(
        10.0 if g.status is GoalStatus.MET else 5.0 * (g.status is GoalStatus.WITHIN_VARIATION)
        for g in goals
    )
    return Evaluation(
        template="test-site",
        prescription_gy=RX_GY,
        goals=goals,
        criteria=[criterion],
        score=score,
        max_score=10.0 * len(goals),
        all_priority1_met=met_p1,
        all_priority1_acceptable=all(
            g.status is not GoalStatus.FAILED for g in goals if g.priority == 1
        ),
    )


def objectives_at(iteration: int) -> list[Objective]:
    """The objectives applied at ``iteration`` (each iteration changes one or two of them)."""
    return [
        PointObjective(
            structure_id="PTV",
            operator=ObjectiveOperator.LOWER,
            dose_gy=60.0,
            volume_pct=100.0,
            priority=120.0,
        ),
        PointObjective(
            structure_id="Rectum",
            operator=ObjectiveOperator.UPPER,
            dose_gy=52.0 - 4.0 * (iteration >= 1),
            volume_pct=15.0,
            priority=80.0 + 20.0 * (iteration >= 1),
        ),
        MeanDoseObjective(
            structure_id="Bladder", dose_gy=30.0 - 2.0 * (iteration >= 2), priority=50.0
        ),
        NormalTissueObjective(
            priority=100.0 + 50.0 * (iteration >= 3),
            distance_from_target_border_mm=5.0,
            start_dose_pct=105.0,
            end_dose_pct=60.0,
            fall_off=0.05,
        ),
    ]


def make_session(
    root: Path, *, finished: bool = True, snapshots: bool = True, slices: bool = True
) -> Path:
    """A session directory of ``len(FALLOFF_MM)`` iterations, optionally unfinished / without snapshots."""
    session_dir = root / "session"
    masks = phantom()
    case = CaseIdentity(
        plan_pseudonym="0123456789abcdef",
        structure_set_hash="fedcba9876543210",
        technique="IMRT",
        prescription_gy=RX_GY,
        fractions=30,
        case_label="synthetic/seed0",
    )
    config = SessionConfig(scenario="synthetic", seed=0, template="test-site", max_iterations=5)
    evaluations = []
    with Journal(session_dir / "journal.jsonl") as journal:
        journal.write(
            SessionHeader(
                session_id="s-test",
                config=config,
                template_name="test-site",
                template_hash="abc123",
                case=case,
                structure_map={s: s for s in STRUCTURES},
                original_objectives=objectives_at(0)[:1],
            )
        )
        for it, falloff in enumerate(FALLOFF_MM):
            tps = FakeTps(plan_dose(masks, falloff), masks, slices)
            evaluation = evaluate_dvhs({s: tps.get_dvh(s) for s in STRUCTURES})
            evaluations.append(evaluation)
            journal.write(
                IterationRecord(
                    iteration=it,
                    proposal=Proposal(
                        objectives=objectives_at(it),
                        rationale=RATIONALES[it],
                        policy="template" if it == 0 else "rule",
                    ),
                    verdict=GuardVerdict(
                        status=VerdictStatus.CLIPPED if it == 2 else VerdictStatus.ACCEPTED,
                        adjustments=["Bladder mean dose_gy step clipped to 2 Gy"]
                        if it == 2
                        else [],
                    ),
                    applied_objectives=objectives_at(it),
                    optimization=OptimizationResult(
                        success=True,
                        total_objective_value=10.0 / (it + 1),
                        structure_objective_values={},
                        iterations=120,
                        wall_time_s=0.5,
                    ),
                    inner_optimizations=1,
                    normalization_factor=1.0 + 0.01 * it,
                    evaluation=evaluation,
                    timings=IterationTimings(optimize_s=0.5, evaluate_s=0.01, total_s=0.6),
                )
            )
            if snapshots and it in (0, len(FALLOFF_MM) - 1):
                label = "initial" if it == 0 else "final"
                save_plan_snapshot(as_tps(tps), session_dir, label, STRUCTURES)
        journal.write(SessionEvent(kind="note", iteration=1, message="clinician looked at it"))
        if finished:
            summary = SessionSummary(
                session_id="s-test",
                config=config,
                template_name="test-site",
                template_hash="abc123",
                case=case,
                initial_evaluation=evaluations[0],
                final_evaluation=evaluations[-1],
                best_iteration=len(FALLOFF_MM) - 1,
                stop_reason=StopReason.ALL_GOALS_MET,
                iterations=len(FALLOFF_MM) - 1,
                inner_optimizations=len(FALLOFF_MM),
                wall_time_s=2.4,
            )
            journal.write(summary)
            (session_dir / "summary.json").write_text(summary.model_dump_json(), encoding="utf-8")
    return session_dir
