"""``rtplan plan`` and ``rtplan demo``: plan one simulated case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.cli import backends
from agent.cli.case_source import (
    CaseChoice,
    CaseSpec,
    DicomOption,
    OpenKbpOption,
    ScenarioOption,
    SeedOption,
    Tg119Option,
    Tg119PathOption,
    choose_case,
)
from agent.cli.console import console, emit_json, esc, json_mode
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
    run_esapi_plan,
)
from agent.cli.llm_options import (
    AllowCloudOption,
    BaseUrlOption,
    FallbackOption,
    ImagesOption,
    KnowledgeFlagOption,
    KnowledgeOption,
    LlmChoice,
    LookaheadOption,
    ModelOption,
    OnPremOption,
    ProviderOption,
    ReferenceOption,
    TwoRoleOption,
    build_llm_policy,
)
from agent.cli.output import finish, interrupt_exit, run_with_progress
from agent.session.records import IterationRecord, SessionConfig, SessionSummary
from esapi_bridge.port import TpsSession

#: A prostate-basic seed whose template start misses priority-1 goals (score 6.64/9 on the
#: pencil-beam-3 engine), so the demo shows the agent at work: 9/9 in 3 iterations.
DEMO_SEED = 9

OutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Session directory. Default: rtplan-sessions/<case>-<time>.",
        show_default=False,
    ),
]
CacheOption = Annotated[
    Path | None,
    typer.Option(
        help="Dose-influence cache directory. Default: $RTPLAN_CACHE_DIR or ~/.cache/rtplan/dij.",
        show_default=False,
    ),
]
ReportOption = Annotated[
    bool, typer.Option(help="Build the HTML report (report/report.html) at the end.")
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the session summary as JSON on stdout; everything else goes to stderr.",
    ),
]


def _default_dir(label: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("rtplan-sessions") / f"{label}-{stamp}"


def summary_json(summary: SessionSummary, session_dir: Path) -> dict[str, Any]:
    """What ``--json`` prints: where the session is, and its summary."""
    report = session_dir / "report" / "report.html"
    return {
        "session_dir": str(session_dir),
        "journal": str(session_dir / "journal.jsonl"),
        "report": str(report) if report.is_file() else None,
        "summary": summary.model_dump(mode="json"),
    }


def _open(source: CaseSpec, cache_dir: Path | None, config: SessionConfig) -> TpsSession:
    """Open the plan of ``source`` on the simulated TPS."""
    if source.openkbp_dir is not None:
        return backends.mock_session_factory(cache_dir, openkbp_dir=source.openkbp_dir)(config)
    if source.dicom is not None:
        return backends.mock_session_factory(cache_dir, dicom=source.dicom)(config)
    return backends.mock_session_factory(cache_dir, source.tg119_path)(config)


def _with_reference(
    session: TpsSession, patient_dir: Path, case: CaseChoice, session_dir: Path
) -> SessionSummary:
    """The OpenKBP patient's clinical plan beside the final plan, in ``summary.json``."""
    from agent.cli.openkbp_reference import attach_reference, clinical_reference, reference_lines
    from agent.templates import match_structures

    structure_map = match_structures(case.template, session.structures())
    reference = clinical_reference(session, patient_dir, case.template, structure_map)
    for line in reference_lines(reference):
        console.print(line, highlight=False)
    return attach_reference(session_dir, reference)


def run_plan(
    case: CaseChoice,
    *,
    policy: str = "rule",
    max_iterations: int = 20,
    approve: bool = False,
    out: Path | None = None,
    spacing_mm: float | None = None,
    cache_dir: Path | None = None,
    report: bool = True,
    as_json: bool = False,
    llm: LlmChoice | None = None,
    bo_budget: int = 100,
) -> SessionSummary:
    """Plan one simulated case (what ``rtplan plan`` and ``rtplan demo`` do)."""
    from agent.cli.knowledge import policy_options
    from agent.policies import make_policy
    from agent.session.approval import ConsoleApprover
    from agent.session.loop import PlanningLoop
    from agent.session.signals import InterruptOnSignals
    from agent.session.start import probe_writable

    source, template_name = case.source, case.template_name
    label = source.label
    session_dir = out or _default_dir(label.replace("/", "-"))
    probe_writable(session_dir)  # before the (slow) case is opened; leaves no directory
    llm = llm or LlmChoice()
    pol = (
        build_llm_policy(llm, session_dir, case.template)
        if policy == "llm"
        else make_policy(
            policy, **policy_options(policy), **({"budget": bo_budget} if policy == "bo" else {})
        )
    )
    # a policy may ask for session settings (bo: its budget, no stall stop, no step bounds)
    config = SessionConfig.model_validate(
        {
            "scenario": source.scenario,
            "seed": source.seed,
            "template": case.template.name,
            "template_from_file": case.template_name != case.template.name,
            "policy": pol.name,
            "max_iterations": max_iterations,
            "approve": approve,
            "spacing_mm": spacing_mm,
            "lookahead_trials": llm.lookahead_trials() if policy == "llm" else 0,
            **getattr(pol, "session_settings", {}),
        }
    )
    for note in case.notes:
        console.print(f"[yellow]note:[/] {esc(note)}", highlight=False)
    # SIGTERM and SIGHUP stop the session like Ctrl-C: restore, summary, exit 143 / 129 / 130
    with InterruptOnSignals() as signals:
        try:
            with console.status(f"opening {esc(label)} on the simulated TPS"):
                session = _open(source, cache_dir, config)
            approver = ConsoleApprover(console) if approve else None
            console.print(
                f"[bold]{esc(label)}[/] template {esc(template_name)}, policy {esc(pol.name)} "
                f"-> {esc(session_dir)}",
                highlight=False,
            )

            def runner(cb: Callable[[IterationRecord], None]) -> SessionSummary:
                loop = PlanningLoop(
                    session, case.template, pol, config, session_dir,
                    approver=approver, on_iteration=cb,
                    case_label=None if source.is_patient else label,
                )  # fmt: skip
                return loop.run()

            summary = run_with_progress(config.max_iterations, runner, bar=not approve)
            from agent.cli.export import keep_final_dose  # dose_final.npz, for rtplan export

            keep_final_dose(session, session_dir, summary)
            if source.openkbp_dir is not None and summary.final_evaluation is not None:
                summary = _with_reference(session, source.openkbp_dir, case, session_dir)
        except KeyboardInterrupt as exc:  # the loop handles those once its journal exists
            raise interrupt_exit(exc, "the session had not started; nothing was changed") from None
        try:
            finish(summary, session_dir, report, signals)
        finally:
            if as_json:
                emit_json(summary_json(summary, session_dir))
    return summary


def plan(
    scenario: ScenarioOption = None,
    seed: SeedOption = None,
    tg119: Tg119Option = None,
    tg119_path: Tg119PathOption = None,
    openkbp: OpenKbpOption = None,
    dicom: DicomOption = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="Site template: a name from 'rtplan templates list' or a YAML file. "
            "Default: the case's own (the scenario's namesake, tg119-easy/-hard).",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        str, typer.Option(help="Planning policy: rule, llm, knowledge, drl or bo.")
    ] = "rule",
    max_iterations: Annotated[
        int, typer.Option(min=0, max=1000, help="Stop after this many policy iterations.")
    ] = 20,
    bo_budget: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="--policy bo: trials (inner optimizations); replaces "
            "--max-iterations, with no stall stop and no step bounds.",
        ),
    ] = 100,
    approve: Annotated[
        bool, typer.Option("--approve", help="Review every proposal before it reaches the TPS.")
    ] = False,
    out: OutOption = None,
    spacing_mm: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=5.0,
            help="Dose grid spacing in mm: 2-5 (brain-srs: 1-5). Default: the case's "
            "(3 mm; 1.25 mm for brain-srs).",
            show_default=False,
        ),
    ] = None,
    cache_dir: CacheOption = None,
    report: ReportOption = True,
    as_json: JsonOption = False,
    provider: ProviderOption = "anthropic",
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    lookahead: LookaheadOption = None,
    two_role: TwoRoleOption = False,
    fallback: FallbackOption = "none",
    allow_cloud: AllowCloudOption = False,
    on_premise_host: OnPremOption = None,
    images: ImagesOption = False,
    reference_session: ReferenceOption = None,
    knowledge_card: KnowledgeOption = None,
    knowledge: KnowledgeFlagOption = False,
    esapi: EsapiOption = False,
    patient: PatientOption = None,
    course: CourseOption = None,
    plan_id: PlanIdOption = None,
    esapi_dir: AssemblyDirOption = None,
    plan_locator: LocatorOption = None,
    esapi_assembly: AssemblyOption = None,
) -> None:
    """Plan one case on the simulated TPS (one case source; see 'rtplan scenarios'), or an
    Eclipse plan with --esapi (standalone research mode)."""
    eclipse = EsapiChoice(
        esapi, patient, course, plan_id, esapi_dir, plan_locator, tuple(esapi_assembly or ())
    )
    if esapi:
        with json_mode(as_json):
            try:
                sources = [scenario, seed, tg119, tg119_path, openkbp, dicom]
                if any(value is not None for value in sources):
                    raise CliError("--esapi plans an Eclipse plan: give no simulated case source")
                session_dir = out or _default_dir("eclipse")
                summary = run_esapi_plan(
                    eclipse, template=template, policy=policy, max_iterations=max_iterations,
                    approve=approve, out=session_dir, report=report,
                )  # fmt: skip
            except known_errors() as exc:
                raise fail(exc) from None
            if as_json:
                emit_json(summary_json(summary, session_dir))
        return
    llm = LlmChoice(
        provider=provider, model=model, base_url=base_url, lookahead=lookahead,
        two_role=two_role, fallback=fallback, allow_cloud=allow_cloud,
        on_premise_hosts=tuple(on_premise_host or ()), images=images,
        reference_sessions=tuple(reference_session or ()), knowledge_card=knowledge_card,
        knowledge=knowledge,
    )  # fmt: skip
    with json_mode(as_json):
        try:
            refuse_stray(eclipse)
            case = choose_case(
                scenario=scenario, seed=seed, tg119=tg119, tg119_path=tg119_path,
                openkbp=openkbp, dicom=dicom, template=template,
            )  # fmt: skip
            run_plan(
                case, policy=policy, max_iterations=max_iterations, approve=approve, out=out,
                spacing_mm=spacing_mm, cache_dir=cache_dir, report=report, as_json=as_json,
                llm=llm, bo_budget=bo_budget,
            )  # fmt: skip
        except known_errors() as exc:
            raise fail(exc) from None


def demo(
    out: OutOption = None,
    cache_dir: CacheOption = None,
    report: ReportOption = True,
) -> None:
    """prostate-basic, rule policy: progress, final goals table and report."""
    try:
        case = choose_case(scenario="prostate-basic", seed=DEMO_SEED)
        run_plan(case, out=out or _default_dir("demo"), cache_dir=cache_dir, report=report)
    except known_errors() as exc:
        raise fail(exc) from None
