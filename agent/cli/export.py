"""``rtplan export`` and ``rtplan export-case``, and the final dose a session keeps for them.

The final dose is kept, not replayed: at the end of a simulated-TPS session the composition
root writes ``dose_final.npz`` (:mod:`mock_tps.final_dose`) into the session directory
(:func:`keep_final_dose`); ``rtplan export`` reads it. An Eclipse session keeps none (its
dose stays in Eclipse).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from agent.cli.console import console, esc
from agent.cli.errors import CliError, fail, known_errors
from agent.session.records import SessionConfig, SessionSummary
from esapi_bridge.port import TpsSession

SessionDirArgument = Annotated[
    Path, typer.Argument(help="A session directory (it holds dose_final.npz).", show_default=False)
]


def keep_final_dose(session: TpsSession, session_dir: Path, summary: SessionSummary) -> Path | None:
    """Write the final plan's dose as ``dose_final.npz`` into ``session_dir``.

    Nothing is written when the session ended without a plan (an error, an interrupt that
    restored the original objectives) or is not on the simulated TPS; a failure to write
    is printed, not raised (the session itself is complete).
    """
    from esapi_bridge.errors import TpsError
    from mock_tps.final_dose import FINAL_DOSE_FILENAME, final_dose_of, save_final_dose
    from mock_tps.session import MockTpsSession

    if not isinstance(session, MockTpsSession):
        return None
    if summary.final_evaluation is None or summary.restored_original:
        return None
    try:
        return save_final_dose(final_dose_of(session), session_dir / FINAL_DOSE_FILENAME)
    except (TpsError, OSError) as exc:
        console.print(f"[yellow]final dose not kept:[/] {esc(type(exc).__name__)}: {esc(exc)}")
        return None


class FinalDoseKeeper:
    """A session opener that remembers the session it opened, to keep its final dose after a
    resumed session (:func:`keep_final_dose`)."""

    def __init__(self, opener: Callable[[SessionConfig], TpsSession]) -> None:
        self._opener = opener
        self.session: TpsSession | None = None

    def __call__(self, config: SessionConfig) -> TpsSession:
        self.session = self._opener(config)
        return self.session

    def keep(self, session_dir: Path, summary: SessionSummary) -> Path | None:
        """:func:`keep_final_dose` of the session opened, if any."""
        return None if self.session is None else keep_final_dose(self.session, session_dir, summary)


def _session_dir(path: Path) -> Path:
    from agent.session.records import JOURNAL_FILENAME

    if not path.is_dir():
        raise CliError(
            f"no session directory at {path}: pass the directory 'rtplan plan' wrote "
            "(it holds journal.jsonl and dose_final.npz)"
        )
    if not (path / JOURNAL_FILENAME).is_file():
        raise CliError(
            f"{path} is not a session directory (no {JOURNAL_FILENAME}): pass the directory "
            "'rtplan plan' wrote"
        )
    return path


def export(
    session_dir: SessionDirArgument,
    rtdose: Annotated[
        Path, typer.Option("--rtdose", help="The RT Dose file to write.", show_default=False)
    ],
    rtplan: Annotated[
        Path | None,
        typer.Option(help="The RT Plan file. Default: <rtdose>-plan.dcm.", show_default=False),
    ] = None,
    rtstruct: Annotated[
        Path | None,
        typer.Option(
            help="The RT Structure Set of the session's structures (sessions without source "
            "DICOM). Default: <rtdose>-structures.dcm.",
            show_default=False,
        ),
    ] = None,
    dvh_csv: Annotated[
        Path | None,
        typer.Option(
            "--dvh-csv", help="Also write our DVHs of the final plan (CSV).", show_default=False
        ),
    ] = None,
    source_dicom: Annotated[
        Path | None,
        typer.Option(
            "--source-dicom",
            help="The DICOM folder the session was planned from (required for such a "
            "session: patient and study come from it; its content must be unchanged).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export a session's final plan: RT Dose + a minimal RT Plan (Eclipse import untested)."""
    from mock_tps.dicom.write_export import export_plan, write_dvh_csv
    from mock_tps.final_dose import FINAL_DOSE_FILENAME, load_final_dose

    try:
        folder = _session_dir(session_dir)
        final = load_final_dose(folder / FINAL_DOSE_FILENAME)
        plan_path = rtplan or rtdose.with_name(f"{rtdose.stem}-plan.dcm")
        done = export_plan(
            final, rtdose, rtplan=plan_path, rtstruct=rtstruct, source_dicom=source_dicom
        )
        if dvh_csv is not None:
            write_dvh_csv(final, dvh_csv)
    except known_errors() as exc:
        raise fail(exc) from None
    console.print(f"RT Dose: {esc(done.rtdose)} (max {done.max_dose_gy:.2f} Gy)", highlight=False)
    console.print(f"RT Plan: {esc(done.rtplan)} (Eclipse import untested)", highlight=False)
    if done.rtstruct is not None:
        console.print(f"RT Structure Set: {esc(done.rtstruct)}", highlight=False)
    if done.anonymous:
        console.print(
            "patient attributes: anonymous (RTPLAN^ANON), new UIDs: the session came from "
            "no DICOM (an OpenKBP patient's study and frame match 'rtplan export-case')",
            highlight=False,
        )
    if dvh_csv is not None:
        console.print(f"DVHs: {esc(dvh_csv)}", highlight=False)


def export_case(
    patient_dir: Annotated[
        Path, typer.Argument(help="An OpenKBP patient folder.", show_default=False)
    ],
    out_dir: Annotated[
        Path, typer.Argument(help="The folder to write CT and RS.dcm into.", show_default=False)
    ],
) -> None:
    """Write an OpenKBP patient as a DICOM CT series and RT Structure Set (anonymous)."""
    from mock_tps.dicom.write_export import export_openkbp_case

    try:
        if not patient_dir.is_dir():
            raise CliError(
                "the OpenKBP patient folder given is not a directory; pass a folder with "
                "ct.csv, voxel_dimensions.csv, PTV70.csv, ..."
            )
        done = export_openkbp_case(patient_dir, out_dir)
    except known_errors() as exc:
        raise fail(exc) from None
    console.print(
        f"CT: {done.ct_files} slices; RT Structure Set: {esc(done.rtstruct)} "
        f"({len(done.structures)} structures); patient attributes anonymous (RTPLAN^ANON)",
        highlight=False,
    )
