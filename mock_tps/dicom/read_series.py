"""Walk a DICOM folder and pick what a case is made of: one CT series, one RT Structure Set,
at most one RT Plan.

Files are grouped by ``Modality`` and ``SeriesInstanceUID``. Refused, with a message saying
what to pass instead: no CT, several CT series (the count is named), images of another
modality beside the CT (a mixed folder), no or several RT Structure Sets, several RT Plans.
RT Dose files are ignored (the clinical dose is not read). Files that are not DICOM are
skipped and counted. Messages never name the folder or a file (folder names can identify
a patient).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pydicom
from loguru import logger
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from esapi_bridge.errors import InvalidInput

#: What the folder should hold (ends every refusal).
WHERE = (
    "pass a folder with one CT series (axial, head-first supine), its RT Structure Set and "
    "optionally an RT Plan"
)
_IMAGE_MODALITIES = frozenset(
    {"CT", "MR", "PT", "NM", "US", "CR", "DX", "MG", "OT", "XA", "RTIMAGE"}
)
_IGNORED = frozenset({"RTDOSE", "REG", "RTRECORD", "SR", "KO", "PR"})
_DICOMDIR = "1.2.840.10008.1.3.10"


@dataclass(frozen=True)
class DicomFolder:
    """The datasets of a case: the CT slices (unsorted), the structure set, the plan if any."""

    ct: list[Dataset]
    rtstruct: Dataset
    rtplan: Dataset | None
    skipped_files: int


def _datasets(folder: Path, *, pixels: bool) -> tuple[list[Dataset], int]:
    """Every DICOM dataset under ``folder`` (recursively, in path order), and how many files
    were not DICOM."""
    out: list[Dataset] = []
    skipped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        except (InvalidDicomError, EOFError, OSError, ValueError):
            skipped += 1
            continue
        if str(getattr(ds.file_meta, "MediaStorageSOPClassUID", "")) == _DICOMDIR:
            continue
        out.append(ds)
    return out, skipped


def read_folder(folder: str | Path, *, pixels: bool = True) -> DicomFolder:
    """The CT series, RT Structure Set and optional RT Plan of a DICOM folder.

    Parameters
    ----------
    folder
        A folder (searched recursively) with the DICOM files of one case.
    pixels
        Read the CT pixel data (``False``: headers only, for a quick look at the ROI names).

    Raises
    ------
    InvalidInput
        Not a folder; no CT or several CT series; another image modality beside the CT; no
        or several RT Structure Sets; several RT Plans.
    """
    path = Path(folder)
    if not path.is_dir():
        raise InvalidInput(f"the DICOM folder given is not a directory; {WHERE}")
    datasets, skipped = _datasets(path, pixels=pixels)
    series: dict[tuple[str, str], list[Dataset]] = defaultdict(list)
    for ds in datasets:
        modality = str(getattr(ds, "Modality", "")).upper()
        series[(modality, str(getattr(ds, "SeriesInstanceUID", "")))].append(ds)
    by_modality: dict[str, list[list[Dataset]]] = defaultdict(list)
    for (modality, _uid), members in series.items():
        by_modality[modality].append(members)
    if not datasets:
        raise InvalidInput(f"the DICOM folder holds no DICOM file ({skipped} other files); {WHERE}")
    cts = by_modality.get("CT", [])
    if not cts:
        found = ", ".join(sorted(m or "no Modality" for m in by_modality))
        raise InvalidInput(f"the DICOM folder holds no CT image (found: {found}); {WHERE}")
    if len(cts) > 1:
        sizes = ", ".join(str(len(s)) for s in cts)
        raise InvalidInput(
            f"the DICOM folder holds {len(cts)} CT series ({sizes} slices): pass the folder of "
            f"one series; {WHERE}"
        )
    others = sorted(m for m in by_modality if m in _IMAGE_MODALITIES and m != "CT")
    if others:
        raise InvalidInput(
            f"mixed series: the DICOM folder holds {', '.join(others)} images beside the CT; {WHERE}"
        )
    structs = [ds for s in by_modality.get("RTSTRUCT", []) for ds in s]
    if len(structs) != 1:
        what = "no RT Structure Set" if not structs else f"{len(structs)} RT Structure Sets"
        raise InvalidInput(f"the DICOM folder holds {what}; exactly one is needed; {WHERE}")
    plans = [ds for s in by_modality.get("RTPLAN", []) for ds in s]
    if len(plans) > 1:
        raise InvalidInput(f"the DICOM folder holds {len(plans)} RT Plans; at most one; {WHERE}")
    unknown = sorted(
        m
        for m in by_modality
        if m not in {"CT", "RTSTRUCT", "RTPLAN", *_IGNORED, *_IMAGE_MODALITIES}
    )
    ignored = sorted(m for m in by_modality if m in _IGNORED or m in unknown)
    if ignored:
        logger.warning("DICOM import: ignored the {} files of the folder", ", ".join(ignored))
    if skipped:
        logger.warning("DICOM import: skipped {} files that are not DICOM", skipped)
    return DicomFolder(ct=cts[0], rtstruct=structs[0], rtplan=plans[0] if plans else None,
                       skipped_files=skipped)  # fmt: skip
