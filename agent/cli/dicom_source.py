"""``--dicom DIR``: a DICOM case (CT + RT Structure Set, optionally an RT Plan) and its template.

The DICOM gives the anatomy; the site template, which ``--dicom`` requires, gives what the
DICOM does not: the prescription and the beam arrangement (an RT Plan in the folder gives
the isocenter and its static beams' angles instead). The template's structures are matched
to the ROI names through its aliases, as for every case (:func:`agent.templates.match_structures`),
so the prescription's target is found among the ROIs before the (slower) import starts.
The folder's name is never echoed, recorded or used as a label. A session planned with
``--dicom`` resumes with ``--dicom DIR`` again (:func:`resumed_dicom`), checked against the
journal's content hash; replay refuses it, as it does an OpenKBP session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agent.cli.errors import CliError
from agent.session.records import SessionConfig
from agent.templates import SiteTemplate, load_template, match_structures
from esapi_bridge.dto import Technique
from mock_tps.dicom.case_from_dicom import structure_ids
from mock_tps.dicom.plan_spec import DicomPlanSpec, DicomSource

DICOM = "dicom"  # the scenario of a DICOM session


def dicom_source(
    folder: Path, template: SiteTemplate | None, template_name: str | None
) -> DicomSource:
    """The DICOM case of ``folder`` planned with ``template`` (required).

    Raises
    ------
    CliError
        No template, or the folder is not a directory.
    esapi_bridge.errors.InvalidInput
        The folder's DICOM is refused (see :mod:`mock_tps.dicom.read_series`).
    agent.templates.StructureMatchError
        A required template structure matches no ROI.
    """
    if template is None or template_name is None:
        raise CliError(
            "--dicom needs --template NAME: the DICOM gives the anatomy, the template the "
            "prescription, goals and beams (see 'rtplan templates list'; e.g. --template "
            "prostate-basic)"
        )
    if not folder.is_dir():
        raise CliError(
            "--dicom: the folder given is not a directory; pass a folder with one CT series, "
            "its RT Structure Set and optionally an RT Plan"
        )
    found = match_structures(template, structure_ids(folder))
    rx = template.prescription
    tech = template.technique
    plan = DicomPlanSpec(
        target_id=found[rx.target],
        rx_gy=rx.dose_gy,
        fractions=rx.fractions,
        dose_levels_gy={found[k]: v for k, v in rx.dose_levels_gy.items() if k in found},
        technique=tech.technique,
        fields=tech.fields if tech.technique is Technique.IMRT else None,
        start_deg=tech.start_deg,
        beams=tuple((b.gantry_deg, b.couch_deg) for b in tech.beams) if tech.beams else None,
        arcs=tech.arcs,
        control_points=tech.control_points,
    )
    return DicomSource(folder=folder, plan=plan)


DicomResumeOption = Annotated[
    Path | None,
    typer.Option(
        "--dicom",
        help="The DICOM folder a session was planned from with --dicom (the journal holds "
        "only its content hash, which the folder must match).",
        show_default=False,
    ),
]


def resumed_dicom(
    folder: Path | None, config: SessionConfig, template_file: Path | None
) -> DicomSource | None:
    """The DICOM case of a session resumed with ``--dicom DIR`` (``None`` without it).

    The plan spec is rebuilt from the journaled template (``template_file`` when it came
    from a file); the resume then checks the case's content hash against the journal's.

    Raises
    ------
    CliError
        ``--dicom`` for a session that was not planned from DICOM.
    """
    if folder is None:
        return None
    if config.scenario != DICOM:
        raise CliError("--dicom is for a session planned with --dicom: drop it")
    name = str(template_file) if template_file is not None else config.template
    return dicom_source(folder, load_template(name), name)
