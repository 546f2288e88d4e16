"""``rtplan resume``, ``replay`` and ``report``: work on a recorded session."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from agent.cli import backends
from agent.cli.case_source import Tg119PathOption
from agent.cli.console import console, esc
from agent.cli.dicom_source import DicomResumeOption, resumed_dicom
from agent.cli.errors import CliError, fail, known_errors
from agent.cli.esapi_plan import (
    AssemblyDirOption,
    AssemblyOption,
    CourseOption,
    EsapiChoice,
    EsapiOption,
    LocatorOption,
    PatientOption,
    PlanIdOption,
    refuse_stray,
    run_esapi_resume,
)
from agent.cli.output import finish, interrupt_exit, run_with_progress
from agent.cli.plan import CacheOption, ReportOption
from agent.policies import Policy
from agent.session.records import SessionLog, StopReason
from agent.session.signals import InterruptOnSignals

JournalArgument = Annotated[
    Path, typer.Argument(help="A session directory or its journal.jsonl.", show_default=False)
]
TemplateFileOption = Annotated[
    Path | None,
    typer.Option(
        "--template",
        help="The YAML file of a session planned with a template file (the journal keeps "
        "only its name and hash).",
        show_default=False,
    ),
]
ApproveOption = Annotated[
    bool, typer.Option("--approve", help="Review every proposal before it reaches the TPS.")
]


def _llm_resume(log: SessionLog, session_dir: Path) -> Policy:
    """An LLM session resumes with its recorded settings, recording into its directory."""
    from agent.policies.llm.wiring import resumed_policy

    policy = resumed_policy(log, session_dir)
    policy.prepare()  # a missing key or unreachable server: a clear error before any change
    return policy


def _resumed_policy(log: SessionLog, session_dir: Path) -> Policy:
    """The policy of a resumed session, built as ``rtplan plan`` built it: the LLM policy
    with its recorded settings, the others with the composition root's options (the engine
    version the knowledge policy checks its card against)."""
    policy = log.header.config.policy
    if policy == "llm":
        return _llm_resume(log, session_dir)
    from agent.cli.knowledge import policy_options
    from agent.policies import make_policy

    return make_policy(policy, **policy_options(policy))


def _llm_replay(log: SessionLog, session_dir: Path) -> Policy:
    """An LLM session replays through the LLM policy on its recorded responses."""
    from agent.policies.llm.wiring import replaying_policy

    return replaying_policy(log, session_dir)


def resume(
    journal: JournalArgument,
    approve: ApproveOption = False,
    template: TemplateFileOption = None,
    tg119_path: Tg119PathOption = None,
    dicom: DicomResumeOption = None,
    cache_dir: CacheOption = None,
    report: ReportOption = True,
    esapi: EsapiOption = False,
    patient: PatientOption = None,
    course: CourseOption = None,
    plan_id: PlanIdOption = None,
    esapi_dir: AssemblyDirOption = None,
    plan_locator: LocatorOption = None,
    esapi_assembly: AssemblyOption = None,
) -> None:
    """Continue an interrupted session (appends to its journal; the case is the journal's).

    A standalone Eclipse session resumes with --esapi and its ids given again (the journal
    holds none): the plan found must be the recorded one (pseudonym and structures)."""
    eclipse = EsapiChoice(
        esapi, patient, course, plan_id, esapi_dir, plan_locator, tuple(esapi_assembly or ())
    )
    try:
        refuse_stray(eclipse)
        if esapi:
            run_esapi_resume(journal, eclipse, approve=approve, report=report)
            return
    except known_errors() as exc:
        raise fail(exc) from None
    from agent.session.approval import ConsoleApprover
    from agent.session.journal import journal_path, read_journal
    from agent.session.resume import resume_session

    with InterruptOnSignals() as signals:  # SIGTERM/SIGHUP like Ctrl-C
        try:
            path = journal_path(journal)
            approver = ConsoleApprover(console) if approve else None
            config = read_journal(path).header.config
            if config.tps == "esapi":
                raise CliError(
                    "this session was planned on Eclipse: resume it with --esapi and the "
                    "patient, course and plan ids again (--patient, --course, --plan)"
                )
            dicom_case = resumed_dicom(dicom, config, template)
            from agent.cli.export import FinalDoseKeeper  # dose_final.npz, for rtplan export

            opener = FinalDoseKeeper(
                backends.mock_session_factory(cache_dir, tg119_path)
                if dicom_case is None
                else backends.mock_session_factory(cache_dir, dicom=dicom_case)
            )
            summary = run_with_progress(
                config.max_iterations,
                lambda cb: resume_session(
                    path,
                    opener,
                    approver=approver,
                    on_iteration=cb,
                    template_file=template,
                    policy_for=_resumed_policy,
                ),
                bar=not approve,
            )
            opener.keep(path.parent, summary)
        except known_errors() as exc:
            raise fail(exc) from None
        except KeyboardInterrupt as exc:  # before the resumed session started
            raise interrupt_exit(exc, "the session was not resumed; nothing was changed") from None
        finish(summary, path.parent, report, signals)


def replay(
    journal: JournalArgument,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Directory of the replayed session. Default: replay-<time> beside the journal.",
            show_default=False,
        ),
    ] = None,
    tolerance: Annotated[
        float,
        typer.Option(min=0.0, help="Largest |difference| of a metric or score that still matches."),
    ] = 0.01,
    template: TemplateFileOption = None,
    tg119_path: Tg119PathOption = None,
    cache_dir: CacheOption = None,
) -> None:
    """Re-run a recorded session on the simulated TPS and check that the metrics match."""
    from agent.session.journal import journal_path, read_journal
    from agent.session.resume import replay_session

    with InterruptOnSignals() as signals:  # SIGTERM/SIGHUP like Ctrl-C
        try:
            recorded = read_journal(journal_path(journal))
            llm_dir = journal_path(journal).parent
            result = replay_session(
                journal,
                backends.mock_session_factory(cache_dir, tg119_path),
                out_dir=out,
                tolerance=tolerance,
                template_file=template,
                policy_for=(lambda log: _llm_replay(log, llm_dir))
                if recorded.header.config.policy == "llm"
                else None,
            )
        except known_errors() as exc:
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            raise interrupt_exit(exc, "the replay had not started") from None
    if result.summary.stop_reason is StopReason.INTERRUPTED:
        raise interrupt_exit(
            signals.received, f"replay stopped; what ran is in {result.replay_dir}"
        )
    table = Table(title=esc(f"replay of {result.journal} (tolerance {result.tolerance:g})"))
    for col in ("iteration", "recorded score", "replayed score", "max |diff|", "worst metric"):
        table.add_column(col, no_wrap=col != "worst metric")
    for c in result.comparisons:
        over = c.max_abs_difference is None or c.max_abs_difference > result.tolerance
        diff = "-" if c.max_abs_difference is None else f"{c.max_abs_difference:.2g}"
        table.add_row(
            str(c.iteration), _score(c.recorded_score), _score(c.replayed_score),
            f"[bold red]{diff}[/]" if over else diff, esc(c.worst),
        )  # fmt: skip
    console.print(table)
    for notice in result.notices:
        console.print(f"[yellow]notice:[/] {esc(notice)}", highlight=False)
    if result.note:
        console.print(f"note: {esc(result.note)}", highlight=False)
    style = "green" if result.matched else "bold red"
    console.print(f"[{style}]{esc(result.verdict())}[/]", highlight=False)
    console.print(f"replay in {esc(result.replay_dir)}", highlight=False)
    if not result.matched:
        raise typer.Exit(1)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def report(
    session_dir: Annotated[Path, typer.Argument(help="A session directory.", show_default=False)],
) -> None:
    """Build the HTML report of a session."""
    from agent.report import ReportError, build_report

    try:
        with InterruptOnSignals():
            console.print(f"report: {esc(build_report(session_dir))}", highlight=False)
    except ReportError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt as exc:
        again = f"rtplan report {session_dir}"
        raise interrupt_exit(
            exc, f"report build stopped (no partial report is left); run {again}"
        ) from None
