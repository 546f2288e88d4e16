"""Exports: a session's final dose as RT Dose + RT Plan (+ RT Structure Set), an OpenKBP
patient as CT + RT Structure Set, and our DVHs as CSV.

Identity (the session holds no patient attribute):

- a session planned from DICOM: the source folder is required; its content hash (the
  import's, :func:`source_content_hash`) must equal the session's recorded one; patient,
  study and frame of reference come from its CT, the RT Plan references its structure set;
- any other session: anonymous (``RTPLAN^ANON``) with new UIDs, and an RT Structure Set of
  the session's own masks is written beside it; for an OpenKBP patient the Study and Frame
  of Reference UIDs are derived from the patient's content hash, the same as
  :func:`export_openkbp_case` writes, so the RT Dose lies in that CT's frame.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from esapi_bridge.dto import CaseSourceKind
from esapi_bridge.errors import InvalidInput
from mock_tps.dicom.geometry import DicomGeometry
from mock_tps.dicom.write_common import anonymous_identity, identity_from_ct
from mock_tps.dicom.write_ct import write_ct_series
from mock_tps.dicom.write_rtdose import write_rtdose
from mock_tps.dicom.write_rtplan import jaw_half_widths_mm, write_rtplan
from mock_tps.dicom.write_rtstruct import write_rtstruct
from mock_tps.dvh import dvh_from_doses
from mock_tps.final_dose import FinalDose
from rtplan_common.models import FrozenModel

#: DVH CSV sampling: every 10th 0.01 Gy bin edge (0.1 Gy), plus the curve's last points.
DVH_CSV_STEP = 10


class PlanExport(FrozenModel):
    """What :func:`export_plan` wrote."""

    rtdose: Path
    rtplan: Path
    rtstruct: Path | None  # None: the source DICOM's structure set is referenced
    anonymous: bool
    max_dose_gy: float


class CaseExport(FrozenModel):
    """What :func:`export_openkbp_case` wrote."""

    ct_files: int
    rtstruct: Path
    structures: tuple[str, ...]


def source_content_hash(folder: str | Path) -> str:
    """The DICOM import's content hash of a folder (CT, ROIs with contours, RT Plan beams),
    as :func:`mock_tps.dicom.case_from_dicom.load_dicom` records it."""
    from mock_tps.dicom.case_from_dicom import content_hash

    return content_hash(folder)


def export_plan(
    final: FinalDose,
    rtdose: Path,
    *,
    rtplan: Path,
    rtstruct: Path | None = None,
    source_dicom: Path | None = None,
) -> PlanExport:
    """Write a session's final dose as RT Dose, its beams as RT Plan, and (without source
    DICOM) its structures as RT Structure Set (see the module docstring for the identity).

    Raises
    ------
    InvalidInput
        A DICOM session without ``source_dicom``, a folder whose content hash is not the
        session's, ``source_dicom`` for a session not planned from DICOM, or ``rtstruct``
        with ``source_dicom``.
    """
    source = final.meta.case_source
    kind = None if source is None else source.kind
    if kind is CaseSourceKind.DICOM and source_dicom is None:
        raise InvalidInput(
            "the session was planned from DICOM: pass --source-dicom DIR, the folder it was "
            "planned from (patient and study attributes come from it; the session holds none)"
        )
    if source_dicom is not None and kind is not CaseSourceKind.DICOM:
        planned = "an unknown source" if kind is None else f"a {kind.value} case"
        raise InvalidInput(
            f"the session was planned on {planned}, not from DICOM: drop --source-dicom "
            "(it is exported with anonymous patient attributes and new UIDs)"
        )
    grid = final.grid
    jaws = jaw_half_widths_mm(final.masks[final.meta.target_id], grid, final.meta.isocenter_mm)
    if source_dicom is not None:
        assert source is not None
        if rtstruct is not None:
            raise InvalidInput(
                "with --source-dicom the RT Plan references the folder's RT Structure Set: "
                "drop --rtstruct"
            )
        from mock_tps.dicom.read_series import read_folder

        if source_content_hash(source_dicom) != source.content_hash:
            raise InvalidInput(
                "the DICOM folder given is not the one the session was planned from (its "
                "content hash differs from the session's): pass that folder, unchanged"
            )
        found = read_folder(source_dicom, pixels=False)
        identity = identity_from_ct(found.ct[0])
        structure_set_uid = str(found.rtstruct.SOPInstanceUID)
        written_struct = None
    else:
        derived = source.content_hash if kind is CaseSourceKind.OPENKBP and source else None
        identity = anonymous_identity(derived)
        written_struct = rtstruct or rtdose.with_name(f"{rtdose.stem}-structures.dcm")
        types = {s.structure_id: s.dicom_type for s in final.meta.structures}
        _, structure_set_uid = write_rtstruct(written_struct, final.masks, types, grid, identity)
    geometry = DicomGeometry.from_grid(
        grid, identity.frame_of_reference_uid, identity.study_instance_uid
    )
    _, plan_uid = write_rtplan(rtplan, final.meta, identity, structure_set_uid, jaws)
    write_rtdose(
        rtdose, final.dose_gy, geometry, identity, plan_uid, comment="rtplan-agent final plan"
    )
    return PlanExport(
        rtdose=rtdose,
        rtplan=rtplan,
        rtstruct=written_struct,
        anonymous=identity.anonymous,
        max_dose_gy=float(final.dose_gy.max(initial=0.0)),
    )


def write_dvh_csv(final: FinalDose, path: Path) -> Path:
    """Our cumulative DVHs of the final dose, every structure (long format, 0.1 Gy steps):
    ``structure_id, volume_cm3, dose_gy, volume_pct``."""
    vox = final.grid.voxel_volume_cm3
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["structure_id", "volume_cm3", "dose_gy", "volume_pct"])
        for s in final.meta.structures:
            mask = final.masks[s.structure_id]
            if not mask.any():
                continue
            curve = dvh_from_doses(s.structure_id, final.dose_gy[mask], vox)
            n = len(curve.dose_gy)
            keep = sorted({*range(0, n, DVH_CSV_STEP), n - 2, n - 1})
            for i in keep:
                out.writerow([s.structure_id, f"{curve.volume_cm3:.4f}",
                              f"{curve.dose_gy[i]:.4f}", f"{curve.volume_pct[i]:.4f}"])  # fmt: skip
    return path


def export_openkbp_case(patient_dir: Path, out_dir: Path) -> CaseExport:
    """An OpenKBP patient as a CT series (HU, on the loader's cropped grid, origin at voxel
    0) and an RT Structure Set of every structure of its case: the clinical contours, the
    body (``BODY``, ``EXTERNAL``) and the planning structures the head-and-neck templates
    ask for (``PTV56-PTV70+10mm``, ``BODY-PTV``, type ``CONTROL``, as a clinic's structure
    set holds them), with anonymous attributes; the Study and Frame of Reference UIDs derive
    from the patient's content hash (see the module docstring).

    Raises
    ------
    InvalidInput
        What the OpenKBP loader refuses; an output folder that already holds DICOM files.
    """
    from mock_tps.openkbp import ORGANS, TARGET_LEVELS_GY, load_openkbp

    if out_dir.exists() and any(out_dir.glob("*.dcm")):
        raise InvalidInput("the output folder already holds .dcm files: give an empty or new one")
    patient = load_openkbp(patient_dir)
    case = patient.case
    assert patient.ct_hu is not None
    identity = anonymous_identity(patient.content_hash)
    geometry = DicomGeometry.from_grid(
        case.grid, identity.frame_of_reference_uid, identity.study_instance_uid
    )
    series = write_ct_series(out_dir, patient.ct_hu, geometry, identity)
    clinical = [s for s in (*TARGET_LEVELS_GY, *ORGANS) if s in case.structures]
    names = [*clinical, *(s for s in case.structures if s not in clinical)]
    masks = {s: np.asarray(case.structures[s].mask) for s in names}
    types = {s: case.structures[s].dicom_type for s in names}
    path, _ = write_rtstruct(out_dir / "RS.dcm", masks, types, case.grid, identity, series)
    return CaseExport(ct_files=len(series.paths), rtstruct=path, structures=tuple(names))
