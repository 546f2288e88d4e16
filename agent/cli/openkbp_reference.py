"""The clinical plan of an OpenKBP patient beside the agent's final plan (composition root).

:func:`clinical_reference` scores the delivered dose with the session's template as
delivered and rescaled to the agent plan's PTV70 D95, and computes OpenKBP's criteria
(:mod:`mock_tps.openkbp_metrics`) of the three doses; :func:`attach_reference` adds it to
the session's ``summary.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from agent.evaluation import Evaluation, evaluate
from agent.evaluation.evaluator import needed_structures
from agent.evaluation.reference import ClinicalReference, compare_criteria
from agent.session.journal_read import load_summary_file
from agent.session.plan_step import write_summary
from agent.session.records import SUMMARY_FILENAME, SessionSummary
from agent.templates import SiteTemplate
from esapi_bridge.errors import InvalidInput
from esapi_bridge.port import TpsSession
from mock_tps.case import Case
from mock_tps.dvh import dvh_from_doses
from mock_tps.openkbp import ORGANS, TARGET_LEVELS_GY, load_openkbp
from mock_tps.openkbp_metrics import BETTER, TIE_GY, openkbp_metrics
from mock_tps.session import MockTpsSession

#: Bin of the clinical DVHs kept in ``summary.json`` for the report's overlay (0.1 Gy: the
#: coarsest :func:`~mock_tps.dvh.dvh_from_doses` allows; about 800 points per curve at 70 Gy).
DVH_BIN_GY = 0.1


def _evaluate_dose(
    case: Case, dose: NDArray[np.float32], template: SiteTemplate, structure_map: Mapping[str, str]
) -> Evaluation:
    """The template's evaluation of ``dose`` (DVHs exactly as the simulated TPS makes them)."""
    vol = case.grid.voxel_volume_cm3
    dvhs = {
        pid: dvh_from_doses(pid, dose[case.mask(pid)], vol)
        for pid in needed_structures(template, structure_map)
    }
    return evaluate(dvhs, template, structure_map)


def _ptv70_d95(case: Case, dose: NDArray[np.float32]) -> float:
    mask = case.mask("PTV70")
    return dvh_from_doses("PTV70", dose[mask], case.grid.voxel_volume_cm3).dose_at_volume_pct(95.0)


def clinical_reference(
    session: TpsSession,
    patient_dir: Path,
    template: SiteTemplate,
    structure_map: Mapping[str, str],
) -> ClinicalReference:
    """The clinical plan of the OpenKBP patient in ``patient_dir`` beside the session's plan.

    Raises
    ------
    InvalidInput
        The session is not a simulated OpenKBP plan of that patient, or has no dose.
    """
    if not isinstance(session, MockTpsSession):
        raise InvalidInput("a clinical reference needs the simulated TPS's OpenKBP plan")
    patient = load_openkbp(patient_dir)
    case = session.case
    if case.grid != patient.case.grid:
        raise InvalidInput("the session's case is not this OpenKBP patient (grids differ)")
    agent = session.dose_grid()
    clinical = patient.clinical_dose_gy
    agent_d95, clinical_d95 = _ptv70_d95(case, agent), _ptv70_d95(case, clinical)
    if not clinical_d95 > 0.0:
        raise InvalidInput("the clinical dose gives PTV70 no dose: nothing to rescale")
    factor = agent_d95 / clinical_d95
    rescaled = (clinical * np.float32(factor)).astype(np.float32)
    masks = {
        sid: case.structures[sid].mask
        for sid in (*TARGET_LEVELS_GY, *ORGANS)
        if sid in case.structures
    }
    targets = frozenset(TARGET_LEVELS_GY)
    vox_mm3 = patient.voxel_volume_mm3
    region = patient.possible_dose_mask  # the clinical dose is 0 outside it
    outside = {sid: 100.0 * float((m & ~region).sum()) / float(m.sum()) for sid, m in masks.items()}

    def crit(dose: NDArray[np.float32]) -> dict[str, dict[str, float]]:
        inside = np.where(region, dose, np.float32(0.0))  # OpenKBP's convention, both plans
        return openkbp_metrics(inside, masks, targets, vox_mm3)

    fluence = session.last_fluence_result
    vol = case.grid.voxel_volume_cm3
    return ClinicalReference(
        clinical_dvhs={
            pid: dvh_from_doses(pid, rescaled[case.mask(pid)], vol, bin_width_gy=DVH_BIN_GY)
            for pid in needed_structures(template, structure_map)
        },
        rescaled_label=(
            f"clinical plan rescaled to the agent's PTV70 D95 = {agent_d95:.2f} Gy "
            f"(x {factor:.4f}; as delivered {clinical_d95:.2f} Gy)"
        ),
        agent_ptv70_d95_gy=agent_d95,
        clinical_ptv70_d95_gy=clinical_d95,
        rescale_factor=factor,
        delivered=_evaluate_dose(case, clinical, template, structure_map),
        rescaled=_evaluate_dose(case, rescaled, template, structure_map),
        criteria=compare_criteria(
            crit(agent), crit(clinical), crit(rescaled), BETTER, TIE_GY, outside
        ),
        agent_mu_proxy=None if fluence is None else fluence.mu_proxy,
        ct_capped_voxels=patient.capped_voxels,
        ct_cap_hu=patient.curve.cap_hu if math.isfinite(patient.curve.cap_hu) else None,
        ct_max_hu=patient.max_hu,
    )


def attach_reference(session_dir: Path, reference: ClinicalReference) -> SessionSummary:
    """Add ``reference`` to the session's ``summary.json`` (its chain head kept)."""
    summary = load_summary_file(session_dir / SUMMARY_FILENAME)
    summary = summary.model_copy(update={"clinical_reference": reference})
    write_summary(session_dir, summary)
    return summary


def _goals_text(ev: Evaluation) -> str:
    p1 = [g for g in ev.goals if g.priority == 1]
    met = sum(g.status.value == "met" for g in ev.goals)
    p1_met = sum(g.status.value == "met" for g in p1)
    na = f", {len(ev.skipped_goals)} not applicable" if ev.skipped_goals else ""
    return f"priority 1 met {p1_met}/{len(p1)}, goals met {met}/{len(ev.goals)}{na}"


def reference_lines(reference: ClinicalReference) -> list[str]:
    """What the CLI prints of a clinical reference (plain text, no patient identifier)."""
    counts = {v: sum(c.verdict == v for c in reference.criteria) for v in ("agent", "clinical")}
    ties = len(reference.criteria) - counts["agent"] - counts["clinical"]
    return [
        f"{reference.label}: {_goals_text(reference.delivered)}",
        f"{reference.rescaled_label}: {_goals_text(reference.rescaled)}",
        f"OpenKBP criteria, agent vs clinical (rescaled): agent better {counts['agent']}, "
        f"clinical better {counts['clinical']}, tie {ties} (within {TIE_GY} Gy)",
        f"note: {reference.source_note}",
        f"CT: {reference.ct_capped_voxels} voxels above {reference.ct_cap_hu} HU (highest "
        f"{reference.ct_max_hu} HU) capped at the calibration curve's highest density",
    ]
