"""``rtplan plan --esapi`` and ``rtplan resume --esapi``: standalone research mode on Eclipse.

A session through the C# ``StandaloneHost`` (:func:`agent.eclipse_entry.run_standalone`): the
plan itself (no copy: non-clinical), found in the patient by an ``Rtplan.Bridge.IPlanLocator``.
ESAPI.md lists no member that walks a patient's courses and plans for 15.6, so the locator is a
.NET class the site provides (``--plan-locator``); the tests use the stubs' ``StubPlanLocator``.
The ids stay in this process: the journal keeps the keyed pseudonym of the plan id, and
``resume --esapi`` asks for the ids again and checks the plan against it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.console import console, esc
from agent.cli.errors import CliError
from agent.cli.output import finish, run_with_progress
from agent.session.records import SessionSummary
from agent.session.signals import InterruptOnSignals

if TYPE_CHECKING:
    from agent.eclipse_entry import StandaloneTarget

PANEL = "Eclipse, standalone research mode (--esapi; non-clinical)"
DIR_ENV = "RTPLAN_ESAPI_DIR"
LOCATOR_ENV = "RTPLAN_PLAN_LOCATOR"

EsapiOption = Annotated[
    bool,
    typer.Option(
        "--esapi",
        help="Plan on Eclipse through ESAPI (standalone research mode, non-clinical: the plan "
        "itself is changed and saved). Needs --patient, --course, --plan and --template.",
        rich_help_panel=PANEL,
    ),
]
PatientOption = Annotated[
    str | None,
    typer.Option("--patient", help="Patient ID (stays in this process).", rich_help_panel=PANEL),
]
CourseOption = Annotated[
    str | None, typer.Option("--course", help="Course ID.", rich_help_panel=PANEL)
]
PlanIdOption = Annotated[
    str | None,
    typer.Option("--plan", help="Plan ID (must be UnApproved).", rich_help_panel=PANEL),
]
AssemblyDirOption = Annotated[
    Path | None,
    typer.Option(
        "--esapi-dir",
        help=f"Folder with the ESAPI assemblies and Rtplan.PlanBridge.dll. Default: ${DIR_ENV}.",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]
LocatorOption = Annotated[
    str | None,
    typer.Option(
        "--plan-locator",
        help="Full name of the .NET class (implementing Rtplan.Bridge.IPlanLocator) that finds "
        f"the plan in the patient. Default: ${LOCATOR_ENV}.",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]
AssemblyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--esapi-assembly",
        help="A further .NET assembly to load (the locator's), by name; repeatable.",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]


@dataclass(frozen=True)
class EsapiChoice:
    """The ``--esapi`` options as given (``enabled`` False: the simulated TPS)."""

    enabled: bool = False
    patient: str | None = None
    course: str | None = None
    plan: str | None = None
    assembly_dir: Path | None = None
    locator: str | None = None
    assemblies: tuple[str, ...] = ()

    def given(self) -> list[str]:
        """The ESAPI-only options given (to refuse them without ``--esapi``)."""
        pairs = (
            ("--patient", self.patient),
            ("--course", self.course),
            ("--plan", self.plan),
            ("--plan-locator", self.locator),
            ("--esapi-assembly", self.assemblies or None),
            ("--esapi-dir", self.assembly_dir),
        )
        return [name for name, value in pairs if value is not None]

    def target(self) -> StandaloneTarget:
        """The :class:`agent.eclipse_entry.StandaloneTarget`, every option checked.

        Raises
        ------
        CliError
            A missing id, assembly folder or locator, naming what to set.
        """
        from agent.eclipse_entry import StandaloneTarget

        missing = [
            name
            for name, value in (
                ("--patient", self.patient),
                ("--course", self.course),
                ("--plan", self.plan),
            )
            if not value
        ]
        if missing:
            raise CliError(f"--esapi needs {', '.join(missing)}: the ids of the plan to work on")
        folder = self.assembly_dir or _env_path(DIR_ENV)
        if folder is None:
            raise CliError(
                f"--esapi needs the folder of the ESAPI assemblies and Rtplan.PlanBridge.dll: "
                f"pass --esapi-dir DIR or set {DIR_ENV}"
            )
        if not folder.is_dir():
            raise CliError(f"--esapi-dir {folder} is not a folder")
        locator = self.locator or os.environ.get(LOCATOR_ENV) or None
        if locator is None:
            raise CliError(
                "--esapi needs a plan locator: pass --plan-locator Namespace.Class (a .NET class "
                f"implementing Rtplan.Bridge.IPlanLocator, see the README) or set {LOCATOR_ENV}"
            )
        assert self.patient and self.course and self.plan  # checked above
        return StandaloneTarget(
            folder, self.patient, self.course, self.plan, locator, self.assemblies
        )


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def refuse_stray(choice: EsapiChoice) -> None:
    """Without ``--esapi``, ESAPI-only options are a mistake: say so."""
    stray = choice.given()
    if not choice.enabled and stray:
        raise CliError(f"{', '.join(stray)} only apply with --esapi")


def run_esapi_plan(
    choice: EsapiChoice,
    *,
    template: str | None,
    policy: str,
    max_iterations: int,
    approve: bool,
    out: Path,
    report: bool,
) -> SessionSummary:
    """Plan the Eclipse plan of ``choice`` (what ``rtplan plan --esapi`` does)."""
    from agent.eclipse_entry import run_standalone
    from agent.session.approval import ConsoleApprover
    from agent.session.start import probe_writable
    from agent.templates import load_template

    if not template:
        raise CliError("--esapi needs --template NAME: the site template of the plan")
    if policy == "llm":
        raise CliError("--esapi runs the rule policy for now: the llm policy is not wired here")
    target = choice.target()
    load_template(template)  # a bad template fails before .NET starts
    probe_writable(out)
    approver = ConsoleApprover(console) if approve else None
    console.print(
        f"[bold]Eclipse plan[/] (standalone, non-clinical) template {esc(template)}, policy "
        f"{esc(policy)} -> {esc(out)}",
        highlight=False,
    )
    with InterruptOnSignals() as signals:
        summary = run_with_progress(
            max_iterations,
            lambda cb: run_standalone(
                target.assembly_dir, patient_id=target.patient_id, course_id=target.course_id,
                plan_id=target.plan_id, site_template=template, out_dir=out, policy=policy,
                max_iterations=max_iterations, locator=target.locator,
                extra_assemblies=target.extra_assemblies, approver=approver, on_iteration=cb,
            ),
            bar=not approve,
        )  # fmt: skip
        finish(summary, out, report, signals)
    return summary


def run_esapi_resume(
    journal: Path, choice: EsapiChoice, *, approve: bool, report: bool
) -> SessionSummary:
    """Continue an interrupted standalone session (what ``rtplan resume --esapi`` does)."""
    from agent.eclipse_entry import resume_standalone
    from agent.session.approval import ConsoleApprover
    from agent.session.journal import journal_path, read_journal

    target = choice.target()
    path = journal_path(journal)
    config = read_journal(path).header.config
    approver = ConsoleApprover(console) if approve else None
    with InterruptOnSignals() as signals:
        summary = run_with_progress(
            config.max_iterations,
            lambda cb: resume_standalone(path, target, approver=approver, on_iteration=cb),
            bar=not approve,
        )
        finish(summary, path.parent, report, signals)
    return summary
