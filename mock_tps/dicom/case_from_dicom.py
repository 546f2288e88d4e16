"""A DICOM CT series and RT Structure Set (and optionally an RT Plan) as a simulated-TPS case.

Steps (each reader checks its part, see :mod:`mock_tps.dicom.read_series`,
:mod:`~mock_tps.dicom.read_ct`, :mod:`~mock_tps.dicom.read_rtstruct`,
:mod:`~mock_tps.dicom.read_rtplan`):

1. the CT (HU after rescale and padding) is box-averaged to the dose grid's spacing and
   interpolated (trilinear, :func:`scipy.ndimage.map_coordinates`) onto a grid of
   ``spacing_mm`` (default :data:`mock_tps.dicom.plan_spec.DEFAULT_SPACING_MM`, isotropic; a pencil-beam dose grid
   of 3 mm as the phantoms'; configurable) whose first voxel is the CT's first;
2. every ROI is rasterized on that grid (:mod:`mock_tps.dicom.rasterize`: even-odd fill,
   slabs of one CT slice thickness); the body is the ``EXTERNAL`` ROI, else an ROI named
   ``BODY`` or ``External``, else the CT above :data:`mock_tps.openkbp.BODY_THRESHOLD_HU`
   (largest region, holes filled: the OpenKBP loader's body, named ``BODY``), joined with
   the prescription's targets;
3. the grid is cropped to the body's bounding box plus
   :data:`mock_tps.openkbp.CROP_PAD_VOXELS` (as the OpenKBP loader does); structures that
   lie partly outside the CT or the crop are clipped with a warning;
4. HU -> relative electron density through a :class:`HuDensityCurve` (capped voxels counted
   and logged), zero outside the body;
5. the prescription and beam arrangement come from a :class:`DicomPlanSpec` (the CLI fills
   it from the site template); the isocenter is the RT Plan's, else the primary target's
   centroid; an RT Plan's static beams replace the template's IMRT fields.

The case is named ``dicom``; nothing of the patient (name, id, folder) reaches it. Its
content hash is the sha256 of the CT's HU values and geometry and of the ROIs' names, types
and contours (never an id or UID).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger
from numpy.typing import NDArray
from scipy import ndimage

from esapi_bridge.dto import CaseSource, CaseSourceKind, Objective, Technique
from esapi_bridge.errors import InvalidInput
from esapi_bridge.port import TpsSession
from mock_tps.case import Beam, BeamSet, Case, Prescription, Structure
from mock_tps.dicom.geometry import DicomGeometry
from mock_tps.dicom.plan_spec import DicomPlanSpec, DicomSource
from mock_tps.dicom.rasterize import rasterize
from mock_tps.dicom.read_ct import CtVolume, read_ct
from mock_tps.dicom.read_rtplan import PlanBeams, read_plan_beams
from mock_tps.dicom.read_rtstruct import Roi, check_frame, read_rois
from mock_tps.dicom.read_series import read_folder
from mock_tps.grid import Grid
from mock_tps.hu_density import DEFAULT_CURVE, HuDensityCurve
from mock_tps.openkbp import BODY_THRESHOLD_HU, _body, _crop_box
from mock_tps.phantoms.common import VMAT_BEAMLET_MM
from mock_tps.phantoms.shapes import centroid_mm

#: The case name and scenario of every DICOM case.
DICOM = "dicom"
#: The body's id when it comes from the HU threshold (no EXTERNAL ROI).
BODY_ID = "BODY"

#: ROI names taken as the body when no ROI is typed EXTERNAL (compared in upper case).
_BODY_NAMES = frozenset({"BODY", "EXTERNAL"})
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class DicomImport:
    """An imported DICOM case: the case, its DICOM geometry, how it was read.

    ``geometry`` places the case grid in the CT's frame of reference (for an RT Dose);
    ``capped_voxels`` counts body voxels above the curve's cap; ``clipped`` names the ROIs
    cut at the CT's edge or the crop; ``content_hash`` is described in the module docstring.
    """

    case: Case
    geometry: DicomGeometry
    curve: HuDensityCurve
    capped_voxels: int
    max_hu: float
    clipped: tuple[str, ...]
    content_hash: str


def _dose_grid(ct: CtVolume, spacing_mm: float | None) -> Grid:
    """A grid of ``spacing_mm`` over the CT, starting at its first voxel centre (``None``:
    the CT's own grid)."""
    if spacing_mm is None:
        nx, ny, nz = ct.hu.shape
        return Grid(shape=(nx, ny, nz), spacing_mm=ct.spacing_mm, origin_mm=ct.origin_mm)
    shape = [
        int(np.floor((n - 1) * s / spacing_mm + 1e-6)) + 1
        for n, s in zip(ct.hu.shape, ct.spacing_mm, strict=True)
    ]
    return Grid(shape=(shape[0], shape[1], shape[2]), spacing_mm=(spacing_mm,) * 3,
                origin_mm=ct.origin_mm)  # fmt: skip


def resample_hu(ct: CtVolume, grid: Grid) -> NDArray[np.float32]:
    """The CT's HU on ``grid``: box average over one grid voxel, then trilinear (the CT
    itself on its own grid)."""
    if (
        grid.shape == ct.hu.shape
        and grid.spacing_mm == ct.spacing_mm
        and grid.origin_mm == ct.origin_mm
    ):
        return ct.hu
    size = [max(1, round(g / c)) for g, c in zip(grid.spacing_mm, ct.spacing_mm, strict=True)]
    hu = ct.hu if max(size) == 1 else ndimage.uniform_filter(ct.hu, size=size, mode="nearest")
    idx = np.meshgrid(
        *[(grid.axis_mm(a) - ct.origin_mm[a]) / ct.spacing_mm[a] for a in range(3)],
        indexing="ij",
        sparse=False,
    )
    out = ndimage.map_coordinates(hu, idx, order=1, mode="nearest")
    return np.asarray(out, dtype=np.float32)


def _body_roi(rois: Sequence[Roi]) -> Roi | None:
    external = [r for r in rois if r.interpreted_type == "EXTERNAL" and r.contours]
    if len(external) > 1:
        names = ", ".join(repr(r.name) for r in external)
        raise InvalidInput(
            f"{len(external)} ROIs are EXTERNAL ({names}); the body is one: set the "
            "RTROIInterpretedType of the others to another type"
        )
    if external:
        return external[0]
    named = [r for r in rois if r.name.upper() in _BODY_NAMES and r.contours]
    if len(named) == 1:
        logger.warning(
            "DICOM import: no ROI is typed EXTERNAL; ROI {!r} is taken as the body", named[0].name
        )
        return named[0]
    return None


def structure_ids(folder: str | Path) -> list[str]:
    """The structure ids a DICOM case will have (headers only; for template matching).

    The ROIs with contours, plus ``BODY`` when no ROI is ``EXTERNAL``.
    """
    found = read_folder(folder, pixels=False)
    rois = [r for r in read_rois(found.rtstruct) if r.contours]
    ids = [r.name for r in rois]
    return ids if _body_roi(rois) is not None else [*ids, BODY_ID]


def read_source(folder: str | Path) -> tuple[CtVolume, list[Roi], PlanBeams | None]:
    """The CT, the ROIs with contours and the RT Plan's beams (if any) of a DICOM folder,
    every reader's check applied (see :func:`load_dicom`)."""
    found = read_folder(folder)
    ct = read_ct(found.ct)
    check_frame(found.rtstruct, ct.frame_of_reference_uid)
    rois = [r for r in read_rois(found.rtstruct) if r.contours]
    beams = (
        None if found.rtplan is None else read_plan_beams(found.rtplan, ct.frame_of_reference_uid)
    )
    return ct, rois, beams


def content_hash(folder: str | Path) -> str:
    """The content hash :func:`load_dicom` records for ``folder`` (HU, contours, plan beams;
    no identifier or UID)."""
    return _content_hash(*read_source(folder))


def _content_hash(ct: CtVolume, rois: Sequence[Roi], plan: PlanBeams | None) -> str:
    h = hashlib.sha256()
    h.update(repr((ct.hu.shape, ct.origin_mm, ct.spacing_mm)).encode())
    h.update(np.ascontiguousarray(ct.hu).tobytes())
    for roi in rois:
        h.update(repr((roi.name, roi.interpreted_type, len(roi.contours))).encode())
        for c in roi.contours:
            h.update(np.ascontiguousarray(c).tobytes())
    if plan is not None:
        h.update(repr((plan.isocenter_mm, plan.angles_deg)).encode())
    return h.hexdigest()


def _beams(spec: DicomPlanSpec, iso: tuple[float, float, float], plan: PlanBeams | None) -> BeamSet:
    if spec.technique is Technique.VMAT:
        if spec.control_points is None:
            raise InvalidInput("a VMAT DICOM plan needs control_points (from the template)")
        return BeamSet.vmat(spec.control_points, iso, arcs=spec.arcs or 1,
                            beamlet_size_mm=VMAT_BEAMLET_MM)  # fmt: skip
    if plan is not None and not plan.has_arcs:
        return BeamSet(Technique.IMRT, tuple(Beam(g, c) for g, c in plan.angles_deg), iso)
    if spec.beams:
        return BeamSet(Technique.IMRT, tuple(Beam(g, c) for g, c in spec.beams), iso)
    if spec.fields is None:
        raise InvalidInput("an IMRT DICOM plan needs fields or beams (from the template)")
    return BeamSet.imrt(spec.fields, iso, start_deg=spec.start_deg)


def load_dicom(
    folder: str | Path,
    plan: DicomPlanSpec,
    curve: HuDensityCurve = DEFAULT_CURVE,
) -> DicomImport:
    """Import a DICOM folder (one CT series, its RT Structure Set, optionally an RT Plan).

    Parameters
    ----------
    folder
        The case's DICOM folder (searched recursively).
    plan
        Prescription, beams and dose-grid spacing (ROI names for the targets).
    curve
        HU -> relative electron density (default: capped at cortical bone).

    Raises
    ------
    InvalidInput
        What the readers refuse (see their modules), a structure set in another frame of
        reference, a prescription target without voxels on the grid.
    """
    ct, rois, beams = read_source(folder)
    full = _dose_grid(ct, plan.spacing_mm)
    slab = ct.spacing_mm[2]
    hu_full = resample_hu(ct, full)
    body_roi = _body_roi(rois)
    targets = {plan.target_id, *plan.dose_levels_gy}
    rasters = {r.name: rasterize(r.contours, full, slab) for r in rois}
    if body_roi is not None:
        body_id, body_full = body_roi.name, rasters.pop(body_roi.name).mask.copy()
    else:
        if not (hu_full > BODY_THRESHOLD_HU).any():
            raise InvalidInput(
                f"the CT has no voxel above {BODY_THRESHOLD_HU} HU and the structure set no "
                "EXTERNAL ROI: add the body contour (RTROIInterpretedType EXTERNAL)"
            )
        body_id, body_full = BODY_ID, _body(hu_full.astype(np.float64))
    for name in targets & set(rasters):
        body_full |= rasters[name].mask
    if not body_full.any():
        raise InvalidInput(f"the body ({body_id!r}) has no voxel on the {full.spacing_mm} mm grid")
    box = _crop_box(body_full)
    origin = tuple(full.origin_mm[a] + box[a].start * full.spacing_mm[a] for a in range(3))
    hu = np.ascontiguousarray(hu_full[box])
    grid = Grid(shape=(hu.shape[0], hu.shape[1], hu.shape[2]), spacing_mm=full.spacing_mm,
                origin_mm=(origin[0], origin[1], origin[2]))  # fmt: skip
    body = np.ascontiguousarray(body_full[box])
    structures = {body_id: Structure(body_id, "EXTERNAL", body)}
    clipped: list[str] = []
    for roi in rois:
        if roi.name == body_id:
            continue
        raster = rasters[roi.name]
        mask = np.ascontiguousarray(raster.mask[box])
        if raster.clipped or int(mask.sum()) < int(raster.mask.sum()):
            clipped.append(roi.name)
        if not mask.any():
            logger.warning("DICOM import: ROI {!r} has no voxel on the grid; left out", roi.name)
            continue
        structures[roi.name] = Structure(roi.name, roi.interpreted_type, mask)
    if clipped:
        logger.warning(
            "DICOM import: ROIs partly outside the CT or the body's box, clipped: {}",
            ", ".join(clipped),
        )
    for name in sorted(targets):
        if name not in structures:
            raise InvalidInput(
                f"the prescription target {name!r} is not a ROI with voxels on the "
                f"{full.spacing_mm} mm grid; the structure set has: {', '.join(structures)}"
            )
    rx = Prescription(plan.rx_gy, plan.fractions, plan.target_id,
                      dose_levels_gy={k: v for k, v in plan.dose_levels_gy.items()
                                      if k != plan.target_id})  # fmt: skip
    iso = (
        beams.isocenter_mm
        if beams is not None
        else centroid_mm(structures[plan.target_id].mask, grid)
    )
    density = np.where(body, curve.density(hu), np.float32(0.0)).astype(np.float32)
    capped = curve.n_capped(hu[body])
    if capped:
        logger.warning(
            "DICOM import: {} body voxels above {:.0f} HU had their density capped at {}",
            capped,
            curve.cap_hu,
            curve.max_density,
        )
    case = Case(
        name=DICOM,
        grid=grid,
        density=density,
        structures=structures,
        prescription=rx,
        beams=_beams(plan, iso, beams),
        body_id=body_id,
        scenario=DICOM,
        seed=None,
    )
    if not _UID.match(ct.frame_of_reference_uid) or len(ct.frame_of_reference_uid) > 64:
        raise InvalidInput(
            "the CT's FrameOfReferenceUID is not a valid DICOM UID (digits and dots, at most "
            "64 characters); export the series again from the planning system"
        )
    study = ct.study_instance_uid
    valid_study = bool(_UID.match(study)) and len(study) <= 64
    geometry = DicomGeometry.from_grid(
        grid, ct.frame_of_reference_uid, study if valid_study else None
    )
    return DicomImport(
        case=case,
        geometry=geometry,
        curve=curve,
        capped_voxels=capped,
        max_hu=float(hu.max()),
        clipped=tuple(clipped),
        content_hash=_content_hash(ct, rois, beams),
    )


def open_dicom_session(
    source: DicomSource,
    spacing_mm: float | None = None,
    cache_dir: str | Path | None = None,
    objectives: Sequence[Objective] = (),
) -> TpsSession:
    """A simulated-TPS session on an imported DICOM case (``spacing_mm`` overrides the spec's).

    The session's case source is ``dicom`` with the import's content hash (no path, no name).
    """
    from mock_tps.session import MockTpsSession

    plan = source.plan
    if spacing_mm is not None:
        plan = plan.model_copy(update={"spacing_mm": float(spacing_mm)})
    imported = load_dicom(source.folder, plan)
    case_source = CaseSource(kind=CaseSourceKind.DICOM, content_hash=imported.content_hash)
    return MockTpsSession(imported.case, objectives, cache_dir=cache_dir, case_source=case_source)
