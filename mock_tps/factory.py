"""Adapter over the simulated TPS: open a plan on a phantom, TG-119, an OpenKBP or DICOM case."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from esapi_bridge.dto import CaseSource, CaseSourceKind, Objective
from esapi_bridge.port import TpsSession

if TYPE_CHECKING:
    from mock_tps.dicom.plan_spec import DicomSource


def available_scenarios() -> list[str]:
    """Names accepted by :func:`open_mock_session` (``tg119`` included)."""
    from mock_tps.phantoms import list_scenarios

    return [*list_scenarios(), "tg119"]


#: The scenario name of an OpenKBP patient (its folder is given apart, never recorded).
OPENKBP = "openkbp"


def _open_openkbp(
    folder: str | Path | None,
    spacing_mm: float | None,
    cache_dir: str | Path | None,
    objectives: Sequence[Objective],
) -> TpsSession:
    from esapi_bridge.errors import InvalidInput
    from mock_tps.openkbp import load_openkbp
    from mock_tps.session import MockTpsSession

    if folder is None:
        raise InvalidInput("scenario openkbp needs its patient folder (openkbp_dir)")
    if spacing_mm is not None:
        raise InvalidInput(
            f"an OpenKBP patient is planned on its CT grid; drop spacing_mm ({spacing_mm})"
        )
    patient = load_openkbp(folder)
    source = CaseSource(kind=CaseSourceKind.OPENKBP, content_hash=patient.content_hash)
    return MockTpsSession(patient.case, objectives, cache_dir=cache_dir, case_source=source)


def open_mock_session(
    scenario: str,
    seed: int = 0,
    *,
    spacing_mm: float | None = None,
    cache_dir: str | Path | None = None,
    objectives: Sequence[Objective] = (),
    tg119_path: str | Path | None = None,
    openkbp_dir: str | Path | None = None,
    dicom: DicomSource | None = None,
) -> TpsSession:
    """Open a plan of the simulated TPS.

    Parameters
    ----------
    scenario
        A phantom scenario (``prostate-basic``, ``liver``, ...) or ``tg119``.
    seed
        Seed of the anatomical variation (ignored for ``tg119``).
    spacing_mm
        Dose grid spacing (2-5 mm; 1-5 mm for ``brain-srs``); default: the scenario's own
        (3 mm; 1.25 mm for ``brain-srs``; TG-119's CT grid).
    cache_dir
        Dose-influence cache directory (default ``RTPLAN_CACHE_DIR`` or ~/.cache/rtplan).
    objectives
        Initial objectives of the plan.
    tg119_path
        Path of ``TG119.mat`` (default: ``RTPLAN_TG119`` or the shared data folder).
    openkbp_dir
        The OpenKBP patient folder of scenario ``openkbp`` (planned on its CT grid).
    dicom
        The DICOM folder and plan spec of scenario ``dicom`` (see :mod:`mock_tps.dicom`).
    """
    from mock_tps.phantoms import make_case
    from mock_tps.session import MockTpsSession
    from mock_tps.tg119 import load_tg119
    from mock_tps.tg119_fetch import resolve_tg119_path

    source: CaseSource | None = None
    if scenario == OPENKBP:
        return _open_openkbp(openkbp_dir, spacing_mm, cache_dir, objectives)
    if scenario == "dicom":
        from esapi_bridge.errors import InvalidInput
        from mock_tps.dicom.case_from_dicom import open_dicom_session

        if dicom is None:
            raise InvalidInput("scenario dicom needs its DICOM folder and plan spec (dicom)")
        return open_dicom_session(dicom, spacing_mm, cache_dir, objectives)
    if scenario.lower().replace("_", "-") in {"tg119", "tg-119"}:
        file = resolve_tg119_path(tg119_path)
        case = load_tg119(file) if spacing_mm is None else load_tg119(file, spacing_mm=spacing_mm)
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        source = CaseSource(kind=CaseSourceKind.TG119, name="tg119", content_hash=digest)
    elif spacing_mm is None:
        case = make_case(scenario, seed)
    else:
        case = make_case(scenario, seed, spacing_mm=spacing_mm)
    return MockTpsSession(case, objectives, cache_dir=cache_dir, case_source=source)
