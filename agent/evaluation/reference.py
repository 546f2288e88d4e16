"""A reference plan beside the agent's: the clinical plan of a real patient (OpenKBP).

The reference is scored with the same template twice: as delivered, and rescaled so that
its PTV70 D95 equals the agent plan's (the agent's plan is normalized to PTV70 D95 = Rx; a
delivered plan need not be: OpenKBP pt_1 has 68.6 Gy). Beside the template's goals stand
OpenKBP's own DVH criteria (D99/D95/D1 of the targets, D0.1cc and mean of the organs),
each with the direction of "better" and a tie tolerance, and a verdict per criterion
(agent vs the rescaled clinical plan). The clinical dose came from a clinical TPS, the
agent's from our engine: DVH metrics are comparable, voxel doses are not; and our fluence
has no leaf sequencing or MU limit, so the modulation measure belongs beside any OAR
comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field

from agent.evaluation.evaluator import Evaluation
from esapi_bridge.dto import DvhCurve
from rtplan_common.models import FrozenModel

Verdict = Literal["agent", "clinical", "tie"]
SOURCE_NOTE = (
    "the clinical dose came from a clinical TPS (the delivered plan), the agent's from our "
    "pencil-beam engine: compare DVH metrics, not voxel doses"
)
DOSE_REGION_NOTE = (
    "OpenKBP gives the clinical dose only inside its possible-dose region (0 elsewhere); as in "
    "OpenKBP's evaluation, both doses count as 0 outside it for OpenKBP's criteria "
    "(outside_dose_region_pct per row): organ means of structures mostly outside the region "
    "(often the cord and brainstem) are then lower bounds on both sides"
)
MODULATION_NOTE = (
    "our fluence has no leaf sequencing and no MU limit (agent_mu_proxy: our MU proxy, 1 = "
    "unmodulated); OpenKBP gives the clinical dose only, so the clinical plan's modulation is "
    "not available: weigh organ sparing with that in view"
)


class CriterionComparison(FrozenModel):
    """One OpenKBP criterion of one structure, agent vs clinical (Gy)."""

    structure_id: str
    metric: str
    better: Literal["higher", "lower"]
    tie_gy: Annotated[float, Field(ge=0.0)]
    agent_gy: float
    clinical_gy: float  # as delivered
    clinical_rescaled_gy: float
    verdict: Verdict  # agent vs the rescaled clinical plan
    # share of the structure outside OpenKBP's dose region, where both doses count as 0
    outside_dose_region_pct: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0


class ClinicalReference(FrozenModel):
    """The clinical plan beside the agent's (see the module docstring)."""

    label: str = "clinical plan (as delivered)"
    rescaled_label: str
    source_note: str = SOURCE_NOTE
    dose_region_note: str = DOSE_REGION_NOTE
    agent_ptv70_d95_gy: float
    clinical_ptv70_d95_gy: float
    rescale_factor: Annotated[float, Field(gt=0.0)]
    delivered: Evaluation
    rescaled: Evaluation
    criteria: list[CriterionComparison]
    agent_mu_proxy: float | None = None
    # the patient's CT: voxels above the calibration curve's cap (metal) and its highest HU
    ct_capped_voxels: Annotated[int, Field(ge=0)] = 0
    ct_cap_hu: float | None = None
    ct_max_hu: float | None = None
    clinical_mu_proxy: float | None = None
    modulation_note: str = MODULATION_NOTE
    # the rescaled clinical plan's DVHs (plan structure ids), drawn over the agent's in the report
    clinical_dvhs: dict[str, DvhCurve] = Field(default_factory=dict)


def verdict(
    agent: float, clinical: float, better: Literal["higher", "lower"], tie: float
) -> Verdict:
    """Which value is better, or ``tie`` when they are within ``tie`` of each other."""
    if abs(agent - clinical) <= tie:
        return "tie"
    agent_better = agent > clinical if better == "higher" else agent < clinical
    return "agent" if agent_better else "clinical"


def compare_criteria(
    agent: Mapping[str, Mapping[str, float]],
    clinical: Mapping[str, Mapping[str, float]],
    clinical_rescaled: Mapping[str, Mapping[str, float]],
    better: Mapping[str, Literal["higher", "lower"]],
    tie_gy: float,
    outside_pct: Mapping[str, float] | None = None,
) -> list[CriterionComparison]:
    """One row per structure and criterion present in all three (structure order of ``agent``).

    ``outside_pct``: per structure, the share of its voxels outside the dose region.
    """
    rows: list[CriterionComparison] = []
    for sid, values in agent.items():
        if sid not in clinical or sid not in clinical_rescaled:
            continue
        for metric, value in values.items():
            rows.append(
                CriterionComparison(
                    structure_id=sid,
                    metric=metric,
                    better=better[metric],
                    tie_gy=tie_gy,
                    agent_gy=value,
                    clinical_gy=clinical[sid][metric],
                    clinical_rescaled_gy=clinical_rescaled[sid][metric],
                    verdict=verdict(value, clinical_rescaled[sid][metric], better[metric], tie_gy),
                    outside_dose_region_pct=(outside_pct or {}).get(sid, 0.0),
                )
            )
    return rows
