"""What a DICOM case's plan needs beyond the DICOM: prescription, beams, dose-grid spacing.

Light on purpose (pydantic and the DTOs only): the CLI builds a :class:`DicomSource` from the
site template before the import (:func:`mock_tps.dicom.case_from_dicom.load_dicom`) runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from esapi_bridge.dto import Technique
from rtplan_common.models import FrozenModel

#: Default dose-grid spacing (mm, isotropic): the phantoms' pencil-beam grid.
DEFAULT_SPACING_MM = 3.0


class DicomPlanSpec(FrozenModel):
    """What the DICOM does not say: prescription, beam arrangement and dose-grid spacing.

    ``target_id`` and the keys of ``dose_levels_gy`` are ROI names of the structure set.
    The beams: IMRT ``fields`` equispaced from ``start_deg``, or ``beams`` as (gantry,
    couch) angles; VMAT ``arcs`` with ``control_points`` in all. ``spacing_mm``: the
    isotropic dose-grid spacing, or ``None`` for the CT's own voxels (a CT already on a
    dose-grid scale, such as an exported OpenKBP patient).
    """

    target_id: Annotated[str, Field(min_length=1, max_length=64)]
    rx_gy: Annotated[float, Field(gt=0.0, le=200.0)]
    fractions: Annotated[int, Field(ge=1, le=100)]
    dose_levels_gy: dict[str, Annotated[float, Field(gt=0.0, le=200.0)]] = Field(
        default_factory=dict
    )
    technique: Technique = Technique.IMRT
    fields: Annotated[int, Field(ge=1, le=40)] | None = 7
    start_deg: float = 0.0
    beams: tuple[tuple[float, float], ...] | None = None
    arcs: Annotated[int, Field(ge=1, le=8)] | None = None
    control_points: Annotated[int, Field(ge=4, le=720)] | None = None
    spacing_mm: Annotated[float, Field(ge=1.0, le=10.0)] | None = DEFAULT_SPACING_MM


class DicomSource(FrozenModel):
    """A DICOM case to open: the folder (never recorded) and what the plan needs."""

    folder: Path
    plan: DicomPlanSpec
