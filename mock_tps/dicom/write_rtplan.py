"""A minimal RT Plan: the plan's fields (6 MV photons), isocenter, fractions and prescription.

What the RT Dose references. It holds what our simulated TPS knows: one static field per
IMRT beam (or one per VMAT control point; gantry and couch angles, the isocenter, jaws
covering the target), the fraction scheme and the target prescription. It holds no leaf
sequence and no monitor units (our fluence has neither), so it is a record of the geometry,
not a deliverable plan; import into Eclipse is untested.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileDataset

from esapi_bridge.dto import Technique
from mock_tps.dicom.write_common import (
    RT_PLAN_STORAGE,
    RT_STRUCTURE_SET_STORAGE,
    DicomIdentity,
    ds_list,
    new_dataset,
    save,
)
from mock_tps.dicom.write_common import ds as ds_value
from mock_tps.final_dose import FinalDoseMeta
from mock_tps.grid import Grid

#: Jaw margin (mm) around the target's extent about the isocenter.
JAW_MARGIN_MM = 5.0
MACHINE = "RTPLAN_SIM"


def jaw_half_widths_mm(
    target_mask: NDArray[np.bool_], grid: Grid, isocenter_mm: tuple[float, float, float]
) -> tuple[float, float]:
    """Symmetric jaw half-widths (X, Y) covering the target from every gantry angle: the
    target's largest transverse distance from the isocenter, and its largest ``z`` distance,
    each plus :data:`JAW_MARGIN_MM` (at most 200 mm)."""
    idx = np.flatnonzero(target_mask.ravel())
    if idx.size == 0:
        return 50.0, 50.0
    d = grid.centres_mm(idx) - np.asarray(isocenter_mm)
    half = np.asarray(grid.spacing_mm) / 2.0
    transverse = float(np.max(np.hypot(np.abs(d[:, 0]) + half[0], np.abs(d[:, 1]) + half[1])))
    axial = float(np.max(np.abs(d[:, 2]) + half[2]))
    return min(200.0, transverse + JAW_MARGIN_MM), min(200.0, axial + JAW_MARGIN_MM)


def _control_point(
    index: int, gantry_deg: float, couch_deg: float, iso: tuple[float, float, float],
    jaws: tuple[float, float], weight: float,
) -> Dataset:  # fmt: skip
    cp = Dataset()
    cp.ControlPointIndex = index
    cp.CumulativeMetersetWeight = weight
    if index == 0:
        cp.NominalBeamEnergy = 6
        cp.GantryAngle = ds_value(gantry_deg % 360.0)
        cp.GantryRotationDirection = "NONE"
        cp.BeamLimitingDeviceAngle = 0.0
        cp.BeamLimitingDeviceRotationDirection = "NONE"
        cp.PatientSupportAngle = ds_value(couch_deg % 360.0)
        cp.PatientSupportRotationDirection = "NONE"
        cp.TableTopEccentricAngle = 0.0
        cp.TableTopEccentricRotationDirection = "NONE"
        cp.IsocenterPosition = ds_list(iso)
        positions = []
        for kind, half in (("ASYMX", jaws[0]), ("ASYMY", jaws[1])):
            pos = Dataset()
            pos.RTBeamLimitingDeviceType = kind
            pos.LeafJawPositions = ds_list([-round(half, 1), round(half, 1)])
            positions.append(pos)
        cp.BeamLimitingDevicePositionSequence = positions
    return cp


def _beam(number: int, gantry_deg: float, couch_deg: float, meta: FinalDoseMeta,
          jaws: tuple[float, float]) -> Dataset:  # fmt: skip
    beam = Dataset()
    beam.BeamNumber = number
    beam.BeamName = f"G{gantry_deg % 360.0:05.1f}"[:16]
    beam.BeamDescription = "vmat control point" if meta.technique is Technique.VMAT else "imrt"
    beam.BeamType = "STATIC"
    beam.RadiationType = "PHOTON"
    beam.TreatmentMachineName = MACHINE
    beam.PrimaryDosimeterUnit = "MU"
    beam.SourceAxisDistance = 1000.0
    devices = []
    for kind in ("ASYMX", "ASYMY"):
        device = Dataset()
        device.RTBeamLimitingDeviceType = kind
        device.NumberOfLeafJawPairs = 1
        devices.append(device)
    beam.BeamLimitingDeviceSequence = devices
    beam.ReferencedPatientSetupNumber = 1
    beam.TreatmentDeliveryType = "TREATMENT"
    beam.NumberOfWedges = 0
    beam.NumberOfCompensators = 0
    beam.NumberOfBoli = 0
    beam.NumberOfBlocks = 0
    beam.FinalCumulativeMetersetWeight = 1.0
    beam.NumberOfControlPoints = 2
    iso = meta.isocenter_mm
    beam.ControlPointSequence = [
        _control_point(0, gantry_deg, couch_deg, iso, jaws, 0.0),
        _control_point(1, gantry_deg, couch_deg, iso, jaws, 1.0),
    ]
    return beam


def rtplan_dataset(
    meta: FinalDoseMeta,
    identity: DicomIdentity,
    structure_set_uid: str,
    jaws_mm: tuple[float, float],
    *,
    label: str = "RTPLAN-AGENT",
) -> FileDataset:
    """The RT Plan of a final dose's beams, referencing the RT Structure Set
    ``structure_set_uid`` (``RTPlanGeometry`` ``PATIENT``)."""
    ds = new_dataset(RT_PLAN_STORAGE, "RTPLAN", identity, series_description="rtplan-agent plan")
    ds.RTPlanLabel = label[:16]
    ds.RTPlanName = label[:64]
    ds.RTPlanDescription = (
        "simulated TPS plan: field geometry only (no leaf sequence, no MU); Eclipse import untested"
    )
    ds.RTPlanDate = ds.InstanceCreationDate
    ds.RTPlanTime = ds.InstanceCreationTime
    ds.RTPlanGeometry = "PATIENT"
    ref = Dataset()
    ref.ReferencedSOPClassUID = RT_STRUCTURE_SET_STORAGE
    ref.ReferencedSOPInstanceUID = structure_set_uid
    ds.ReferencedStructureSetSequence = [ref]
    target = Dataset()
    target.DoseReferenceNumber = 1
    target.DoseReferenceUID = str(ds.SOPInstanceUID) + ".1"
    target.DoseReferenceStructureType = "SITE"
    target.DoseReferenceDescription = meta.target_id[:64]
    target.DoseReferenceType = "TARGET"
    target.TargetPrescriptionDose = ds_value(meta.total_dose_gy)
    ds.DoseReferenceSequence = [target]
    beams = [
        _beam(k + 1, b.gantry_deg, b.couch_deg, meta, jaws_mm) for k, b in enumerate(meta.beams)
    ]
    group = Dataset()
    group.FractionGroupNumber = 1
    group.NumberOfFractionsPlanned = meta.fractions
    group.NumberOfBeams = len(beams)
    group.NumberOfBrachyApplicationSetups = 0
    refs = []
    for beam in beams:
        rb = Dataset()
        rb.ReferencedBeamNumber = beam.BeamNumber
        refs.append(rb)
    group.ReferencedBeamSequence = refs
    ds.FractionGroupSequence = [group]
    ds.BeamSequence = beams
    setup = Dataset()
    setup.PatientSetupNumber = 1
    setup.PatientPosition = "HFS"
    ds.PatientSetupSequence = [setup]
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


def write_rtplan(
    path: str | Path,
    meta: FinalDoseMeta,
    identity: DicomIdentity,
    structure_set_uid: str,
    jaws_mm: tuple[float, float],
) -> tuple[Path, str]:
    """Write the RT Plan (see :func:`rtplan_dataset`); returns the path and its SOP Instance UID."""
    ds = rtplan_dataset(meta, identity, structure_set_uid, jaws_mm)
    return save(ds, path), str(ds.SOPInstanceUID)
