"""What every DICOM object we write shares: UIDs, patient and study identity, common modules.

The session holds no patient attribute: a file's patient and study come either from the
source CT at export time (:func:`identity_from_ct`) or are anonymous
(:func:`anonymous_identity`: ``RTPLAN^ANON``, new UIDs). An anonymous identity made with a
``content_hash`` (an OpenKBP patient's) derives its Study and Frame of Reference UIDs from
that hash, so that ``rtplan export-case`` and ``rtplan export`` of the same patient share
them; instance and series UIDs are always new.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from rtplan_common.models import FrozenModel

#: Patient name and id of anonymous exports.
ANONYMOUS_NAME = "RTPLAN^ANON"
ANONYMOUS_ID = "RTPLAN-ANON"
MANUFACTURER = "rtplan-agent"
_Uid = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"


class DicomIdentity(FrozenModel):
    """Patient and study attributes, and the frame of reference, of the files written."""

    patient_name: str = ANONYMOUS_NAME
    patient_id: str = ANONYMOUS_ID
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_instance_uid: _Uid
    study_date: str = ""
    study_time: str = ""
    study_id: str = ""
    accession_number: str = ""
    referring_physician_name: str = ""
    frame_of_reference_uid: _Uid
    anonymous: bool = True


def ds(value: float) -> str:
    """A DICOM decimal string of at most 16 characters (values near zero become ``0``)."""
    number = float(value)
    return "0" if abs(number) < 1e-9 else str(format_number_as_ds(number))


def ds_list(values: Iterable[float]) -> list[str]:
    """:func:`ds` of every value."""
    return [ds(v) for v in values]


def new_uid() -> str:
    """A new UID (``2.25.`` + a random UUID)."""
    return str(generate_uid(prefix=None))


def anonymous_identity(content_hash: str | None = None) -> DicomIdentity:
    """``RTPLAN^ANON`` with new Study and Frame of Reference UIDs (derived from
    ``content_hash`` when given, so that files written apart for one case share them)."""
    if content_hash is None:
        study, frame = new_uid(), new_uid()
    else:  # name-based UUIDs (ISO/IEC 9834-8 allows them under 2.25)
        study = f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'rtplan-study-{content_hash}').int}"
        frame = f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'rtplan-frame-{content_hash}').int}"
    return DicomIdentity(study_instance_uid=study, frame_of_reference_uid=frame)


def identity_from_ct(ct: Dataset) -> DicomIdentity:
    """The patient, study and frame of reference of a source CT slice."""

    def text(keyword: str) -> str:
        return str(getattr(ct, keyword, "") or "")

    missing = [k for k in ("StudyInstanceUID", "FrameOfReferenceUID") if not text(k)]
    if missing:
        from esapi_bridge.errors import InvalidInput

        raise InvalidInput(
            f"the source CT has no {' and no '.join(missing)}: the export cannot share its "
            "study and frame of reference; pass the DICOM folder the session was planned from"
        )
    return DicomIdentity(
        patient_name=text("PatientName"),
        patient_id=text("PatientID"),
        patient_birth_date=text("PatientBirthDate"),
        patient_sex=text("PatientSex"),
        study_instance_uid=text("StudyInstanceUID"),
        study_date=text("StudyDate"),
        study_time=text("StudyTime"),
        study_id=text("StudyID"),
        accession_number=text("AccessionNumber"),
        referring_physician_name=text("ReferringPhysicianName"),
        frame_of_reference_uid=text("FrameOfReferenceUID"),
        anonymous=False,
    )


def new_dataset(
    sop_class_uid: str,
    modality: str,
    identity: DicomIdentity,
    *,
    series_uid: str | None = None,
    series_number: int = 1,
    series_description: str = "",
    instance_number: int = 1,
) -> FileDataset:
    """A dataset with file meta and the SOP Common, Patient, General Study, Series, Frame of
    Reference and General Equipment modules filled in."""
    sop_uid = new_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("2.25.159434587271917424616163938716442101187")
    meta.ImplementationVersionName = "RTPLAN_AGENT"
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    now = datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = identity.patient_birth_date
    ds.PatientSex = identity.patient_sex
    if identity.anonymous:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "rtplan-agent: no patient attribute was ever held"
    ds.StudyInstanceUID = identity.study_instance_uid
    ds.StudyDate = identity.study_date
    ds.StudyTime = identity.study_time
    ds.StudyID = identity.study_id
    ds.AccessionNumber = identity.accession_number
    ds.ReferringPhysicianName = identity.referring_physician_name
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid or new_uid()
    ds.SeriesNumber = series_number
    if series_description:
        ds.SeriesDescription = series_description
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = identity.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "rtplan-agent simulated TPS"
    ds.SoftwareVersions = _version()
    ds.InstanceNumber = instance_number
    return ds


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rtplan-agent")
    except PackageNotFoundError:
        return "unknown"


def save(ds: FileDataset, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file (explicit VR little endian)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out
