"""Backends the CLI can open a plan on (the composition root's only contact with adapters)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli.errors import CliError
from agent.session.records import SessionConfig
from esapi_bridge.port import TpsSession

if TYPE_CHECKING:
    from mock_tps.dicom.plan_spec import DicomSource


def mock_session_factory(
    cache_dir: Path | None = None,
    tg119_path: Path | None = None,
    openkbp_dir: Path | None = None,
    dicom: DicomSource | None = None,
) -> Callable[[SessionConfig], TpsSession]:
    """A function opening the simulated TPS plan a :class:`SessionConfig` names.

    Parameters
    ----------
    cache_dir
        Dose-influence cache (default ``$RTPLAN_CACHE_DIR`` or ~/.cache/rtplan).
    tg119_path
        The TG119.mat to load for a TG-119 session (default: see
        :func:`mock_tps.tg119_fetch.resolve_tg119_path`).
    openkbp_dir
        The OpenKBP patient folder of an ``openkbp`` session (the journal never holds it).
    dicom
        The DICOM folder and plan spec of a ``dicom`` session (the journal holds neither).
    """
    from mock_tps.factory import open_mock_session

    def open_session(config: SessionConfig) -> TpsSession:
        if config.tps != "mock" or config.scenario is None:
            raise CliError(f"only simulated sessions can be reopened here (tps={config.tps!r})")
        if config.scenario == "openkbp" and openkbp_dir is None:
            raise CliError(
                "an OpenKBP session's patient folder is not recorded in its journal (patient "
                "data): it cannot be reopened here; plan it again with --openkbp PATIENT_DIR"
            )
        if config.scenario == "dicom" and dicom is None:
            raise CliError(
                "a DICOM session's folder is not recorded in its journal (patient data): "
                "resume it with --dicom DIR (the folder must match the journal's content "
                "hash); replay cannot reopen it: plan it again with --dicom DIR --template NAME"
            )
        return open_mock_session(
            config.scenario,
            config.seed or 0,
            spacing_mm=config.spacing_mm,
            cache_dir=cache_dir,
            tg119_path=tg119_path,
            openkbp_dir=openkbp_dir,
            dicom=dicom,
        )

    return open_session
