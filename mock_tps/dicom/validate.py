"""Validate DICOM files with dicom3tools' ``dciodvfy`` (the IOD and its modules' rules).

``dciodvfy FILE`` prints its findings, one a line; lines starting ``Error`` are violations
of the standard, lines starting ``Warning`` are not (an attribute retired, a value unusual).
Install it with the Debian package ``dicom3tools`` (``make test`` does when it is missing).

A limitation of dicom3tools (at least up to the Debian release 1.00~20220618): it aborts
on pixel data of 32 bits allocated (assertion ``bitsallocated <= bytesinword*8u`` in
``Proposal14EncodingRules``), so it cannot check a 32-bit RT Dose as written. Such an abort
is reported as :attr:`DciodvfyReport.aborted`, never as a clean file.
:func:`validate_rtdose_attributes` checks every attribute of an RT Dose but its pixel
encoding instead: it validates a twin whose pixel data is re-encoded in 16 bits (the
values' top 16 bits; ``BitsAllocated``/``BitsStored``/``HighBit`` 16/16/15, also allowed
for RT Dose), all other attributes unchanged; the 32-bit encoding itself is checked by
:func:`check_uint32_pixels`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pydicom.dataset import Dataset

from esapi_bridge.errors import CapabilityUnavailable
from rtplan_common.models import FrozenModel

EXECUTABLE = "dciodvfy"


class DciodvfyReport(FrozenModel):
    """The findings of ``dciodvfy`` on one file."""

    file: str
    iod: str | None = None  # the IOD dciodvfy recognised (e.g. "RTDose")
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    aborted: str | None = None  # dciodvfy's last words when it crashed instead of reporting
    note: str = ""

    @property
    def ok(self) -> bool:
        """dciodvfy ran to its end and found no error (warnings allowed)."""
        return self.aborted is None and not self.errors


def dciodvfy_path() -> str | None:
    """Where ``dciodvfy`` is, or ``None`` when it is not installed."""
    return shutil.which(EXECUTABLE)


def parse_output(file: str, text: str, returncode: int = 0) -> DciodvfyReport:
    """The report of ``dciodvfy``'s output ``text`` (stdout and stderr together); a
    negative ``returncode`` (killed by a signal: an assertion aborts) marks it aborted."""
    errors, warnings, iod = [], [], None
    crash = [ln.strip() for ln in text.splitlines() if "Assertion" in ln or "Abort" in ln]
    aborted = (
        (crash[-1] if crash else f"killed by signal {-returncode}") if returncode < 0 else None
    )
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Error"):
            errors.append(line)
        elif line.startswith("Warning"):
            warnings.append(line)
        elif iod is None and not line.startswith(("Error", "Warning")) and line.isidentifier():
            iod = line  # dciodvfy prints the IOD's name on a line of its own first
    return DciodvfyReport(
        file=file, iod=iod, errors=tuple(errors), warnings=tuple(warnings), aborted=aborted
    )


def validate_file(path: str | Path, timeout_s: float = 120.0) -> DciodvfyReport:
    """Run ``dciodvfy`` on one file.

    Raises
    ------
    CapabilityUnavailable
        ``dciodvfy`` is not installed (``apt-get install dicom3tools``), or it did not finish
        within ``timeout_s``.
    """
    exe = dciodvfy_path()
    if exe is None:
        raise CapabilityUnavailable(
            "dciodvfy is not installed: install the Debian package dicom3tools "
            "(apt-get install dicom3tools, or make dicom3tools)"
        )
    file = Path(path)
    try:
        done = subprocess.run(
            [exe, str(file)], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise CapabilityUnavailable(f"dciodvfy did not finish within {timeout_s:g} s") from None
    return parse_output(file.name, done.stdout + "\n" + done.stderr, done.returncode)


def check_uint32_pixels(ds: Dataset) -> list[str]:
    """What is wrong with a dataset's 32-bit unsigned pixel encoding (empty when right)."""
    problems = []
    for keyword, want in (("BitsAllocated", 32), ("BitsStored", 32), ("HighBit", 31),
                          ("PixelRepresentation", 0), ("SamplesPerPixel", 1)):  # fmt: skip
        if getattr(ds, keyword, None) != want:
            problems.append(f"{keyword} is {getattr(ds, keyword, None)}, not {want}")
    frames = int(getattr(ds, "NumberOfFrames", 1))
    expected = int(ds.Rows) * int(ds.Columns) * frames * 4
    if len(ds.PixelData) != expected:
        problems.append(f"PixelData has {len(ds.PixelData)} bytes, not {expected}")
    return problems


def validate_rtdose_attributes(path: str | Path, workdir: str | Path) -> DciodvfyReport:
    """``dciodvfy`` on a 16-bit twin of a 32-bit RT Dose (see the module docstring), written
    into ``workdir``; the report's ``note`` says so."""
    import numpy as np
    import pydicom

    ds = pydicom.dcmread(path)
    stored = np.frombuffer(ds.PixelData, dtype="<u4")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelData = (stored >> 16).astype("<u2").tobytes()
    twin = Path(workdir) / f"{Path(path).stem}-16bit-twin.dcm"
    ds.save_as(twin, enforce_file_format=True)
    report = validate_file(twin)
    return report.model_copy(
        update={
            "file": Path(path).name,
            "note": "validated as a 16-bit twin: dciodvfy aborts on 32-bit pixel data",
        }
    )
