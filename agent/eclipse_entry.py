"""Entry points of the agent inside Eclipse (the plugin) and next to it (standalone research mode).

- :func:`run_hosted` is what ``RtPlanAgent.esapi.dll`` calls once it has checked its config and
  the approved agent code, made the unapproved copy of the plan and started CPython: the .NET
  runtime is the plugin's (no ``pythonnet.load()``: :func:`esapi_bridge.esapi.runtime.attach_hosted`).
- :func:`run_standalone` runs a session through the C# ``StandaloneHost`` (an STA thread with a
  job queue that owns the ESAPI ``Application``) for non-clinical batch planning.

The clinician's window (``Rtplan.Plugin.IClinicianWindow``: progress, review of each proposal,
cancel) is driven from here by :class:`WindowApprover` and :class:`WindowProgress`. Ids (patient,
course, plan) never reach the journal: the session records the keyed pseudonym of the plan id
(``agent.session.identity``), and the hash of the approved agent code as an ``agent_code`` event.
Nothing here imports pythonnet or ``clr``: .NET objects arrive as arguments, and
:mod:`esapi_bridge.esapi.runtime` is the only module that loads .NET.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, TypeAdapter

from agent.policies import make_policy
from agent.session.approval import ApprovalDecision, Approver
from agent.session.journal import journal_path, read_journal
from agent.session.loop import IterationCallback, PlanningLoop
from agent.session.negotiation import SessionAborted
from agent.session.outcome import describe_stop
from agent.session.recorded_case import load_recorded_template
from agent.session.records import (
    ApprovalAction,
    GuardVerdict,
    IterationRecord,
    Proposal,
    SessionConfig,
    SessionSummary,
    StopReason,
)
from agent.session.resume import ResumeError, resume_session
from agent.templates import SiteTemplate
from agent.templates.loader import load_template
from esapi_bridge.dto import Objective
from esapi_bridge.errors import PlanRefused
from esapi_bridge.esapi import EsapiSession, agent_code
from esapi_bridge.esapi.runtime import attach_hosted, load_standalone
from rtplan_common.models import FrozenModel

#: Journal event carrying the hash of the approved agent code.
AGENT_CODE_EVENT = "agent_code"
_T = TypeVar("_T")
_OBJECTIVES: TypeAdapter[list[Objective]] = TypeAdapter(list[Objective])
_ANSWERS = {
    "approve": ApprovalAction.APPROVE,
    "edit": ApprovalAction.EDIT,
    "stop": ApprovalAction.STOP,
    "feedback": ApprovalAction.FEEDBACK,
}


class PluginSettings(FrozenModel):
    """``RtPlanAgent.config.json`` as the plugin checked it (``Plugin/PluginConfig.cs``)."""

    python_dll: str
    venv: str
    site_template: str
    policy: str
    provider: str | None = None
    approve: Literal["each", "auto"]
    max_iterations: int = Field(ge=1, le=50)
    log_dir: str


class WindowApprover:
    """The clinician's review of each proposal through the window (approve / edit / stop / feedback).

    ``window`` is an ``IClinicianWindow``: ``Review(json) -> json``, ``EditRejected(text)``,
    ``CancelRequested``. A pressed Cancel answers stop (the clinician's stop).
    """

    #: Answers that are not valid (bad JSON, an edit that is no objective list) re-asked before
    #: the session takes the clinician's stop.
    max_invalid_answers = 3

    def __init__(self, window: Any) -> None:
        self._window = window

    def review(
        self,
        iteration: int,
        proposal: Proposal,
        current: Sequence[Objective],
        applied: Sequence[Objective],
        verdict: GuardVerdict,
    ) -> ApprovalDecision:
        """Ask the window; its answer is validated (an unknown action is the clinician's stop,
        an invalid one is reported through ``EditRejected`` and asked again)."""
        if bool(self._window.CancelRequested):
            return ApprovalDecision(ApprovalAction.STOP)
        question = {
            "iteration": iteration,
            "rationale": proposal.rationale,
            "current": _OBJECTIVES.dump_python(list(current), mode="json"),
            "proposed": _OBJECTIVES.dump_python(list(applied), mode="json"),
            "verdict": verdict.model_dump(mode="json"),
        }
        for _ in range(self.max_invalid_answers + 1):
            try:
                return self._decision(json.loads(str(self._window.Review(json.dumps(question)))))
            except (
                ValueError,
                KeyError,
                TypeError,
                AttributeError,
            ) as exc:  # bad JSON or objectives
                self._window.EditRejected(
                    f"iteration {iteration}: the answer was not applied ({type(exc).__name__}: "
                    f"{exc}); answer again"
                )
        return ApprovalDecision(ApprovalAction.STOP)

    @staticmethod
    def _decision(answer: dict[str, Any]) -> ApprovalDecision:
        action = _ANSWERS.get(str(answer.get("action", "")), ApprovalAction.STOP)
        if action is ApprovalAction.EDIT:
            objectives = _OBJECTIVES.validate_python(answer["objectives"])
            return ApprovalDecision(action, objectives=objectives)
        if action is ApprovalAction.FEEDBACK:
            return ApprovalDecision(action, feedback=str(answer.get("feedback", "")))
        return ApprovalDecision(action)

    def edit_rejected(self, iteration: int, verdict: GuardVerdict) -> None:
        """Tell the clinician why the guardrails refused their edit."""
        self._window.EditRejected(f"iteration {iteration}: " + "; ".join(verdict.reasons))


@dataclass
class WindowProgress:
    """Each iteration as one progress line; a pressed Cancel stops the session after it."""

    window: Any

    def __call__(self, record: IterationRecord) -> None:
        evaluation = record.evaluation
        score = (
            "n/a" if evaluation is None or evaluation.score is None else f"{evaluation.score:.3f}"
        )
        self.window.Progress(f"iteration {record.iteration}: score {score}")
        if bool(self.window.CancelRequested):
            raise SessionAborted(StopReason.CLINICIAN_STOP, "cancelled by the clinician")


class _RecordedCodeLoop(PlanningLoop):
    """The planning loop, journaling the approved agent code's hash right after the header."""

    def __init__(self, *args: Any, agent_code_hash: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent_code_hash = agent_code_hash

    def _drive(self, start: float, first_iteration: int, skip_zero: bool = False) -> SessionSummary:
        if self.tps is not None:
            self.tps.event(AGENT_CODE_EVENT, None, f"sha256 {self.agent_code_hash}")
        return super()._drive(start, first_iteration, skip_zero)


def _session_dir(log_dir: str | Path) -> Path:
    """A fresh folder named by time and a random suffix (never by patient, course or plan)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(log_dir) / f"eclipse-{stamp}-{uuid.uuid4().hex[:6]}"


def summary_text(summary: SessionSummary) -> str:
    """What the clinician's window shows at the end."""
    final = summary.final_evaluation
    score = "" if final is None or final.score is None else f", score {final.score:.3f}"
    stop = describe_stop(summary.stop_reason, final, summary.message)
    return f"{summary.iterations} iterations{score}: {stop}"


def _run(
    session: EsapiSession,
    template: SiteTemplate,
    settings: PluginSettings,
    window: Any | None,
    agent_code_hash: str,
    out_dir: Path,
    *,
    approver: Approver | None = None,
    on_iteration: IterationCallback | None = None,
) -> SessionSummary:
    if settings.policy == "llm":
        raise ValueError("the llm policy is not wired into the plugin entry yet: use policy rule")
    policy = make_policy(settings.policy)
    if approver is None and settings.approve == "each" and window is not None:
        approver = WindowApprover(window)
    progress = WindowProgress(window) if window is not None else None
    config = SessionConfig(
        template=template.name,
        template_from_file=settings.site_template != template.name,
        policy=policy.name,
        max_iterations=settings.max_iterations,
        approve=approver is not None,
        tps="esapi",
    )
    loop = _RecordedCodeLoop(
        session,
        template,
        policy,
        config,
        out_dir,
        approver=approver,
        on_iteration=_both(progress, on_iteration),
        agent_code_hash=agent_code_hash,
    )
    return loop.run()


def _both(*callbacks: IterationCallback | None) -> IterationCallback | None:
    """One callback that calls each of ``callbacks`` that is set (``None`` when none is)."""
    chosen = [c for c in callbacks if c is not None]
    if not chosen:
        return None

    def call(record: IterationRecord) -> None:
        for callback in chosen:
            callback(record)

    return call


def run_hosted(working_copy: Any, config_json: str, agent_code_hash: str, window: Any) -> str:
    """The plugin's entry: plan the unapproved copy and return the summary text to show.

    Parameters
    ----------
    working_copy
        ``Rtplan.Bridge.WorkingCopy`` (.NET): the copy made by ``Course.CopyPlanSetup``; its
        ``NewBridge(technique)`` makes the ``PlanBridge`` on this (Eclipse's) thread.
    config_json
        The text of ``RtPlanAgent.config.json`` (already checked by the plugin).
    agent_code_hash
        The hash of the approved agent code, recomputed by the plugin (goes into the journal).
    window
        ``Rtplan.Plugin.IClinicianWindow``.
    """
    attach_hosted()  # the plugin's runtime: no pythonnet.load()
    settings = PluginSettings.model_validate_json(config_json)
    template = load_template(settings.site_template)
    bridge = working_copy.NewBridge(template.technique.technique.value)
    out_dir = _session_dir(settings.log_dir)
    summary = _run(EsapiSession(bridge), template, settings, window, agent_code_hash, out_dir)
    return summary_text(summary)


@dataclass(frozen=True)
class StandaloneTarget:
    """Where a standalone session runs: the assemblies, the plan's ids and how to find it.

    ``locator`` is an ``Rtplan.Bridge.IPlanLocator`` (.NET object) or the full name of a .NET
    class implementing it in a loaded assembly (``extra_assemblies`` loads its assembly).
    The ids stay in this process: the journal keeps only the keyed pseudonym of the plan id.
    """

    assembly_dir: str | Path
    patient_id: str
    course_id: str
    plan_id: str
    locator: Any
    extra_assemblies: Sequence[str] = ()
    script_name: str = "RtPlanAgent"


def _in_standalone_host(
    target: StandaloneTarget, technique: str, save: bool, work: Callable[[EsapiSession], _T]
) -> _T:
    """Start the host, open the plan, run ``work`` on it, save (when ``save``), dispose."""
    assemblies = load_standalone(target.assembly_dir, extra_assemblies=target.extra_assemblies)
    locator = target.locator
    if isinstance(locator, str):
        locator = assemblies.plan_locator(locator)
    host = assemblies.standalone_host(target.script_name)
    try:
        try:
            bridge = host.OpenPlan(
                target.patient_id, target.course_id, target.plan_id, technique, locator
            )
        except Exception as exc:  # System.Exception from the host (its messages name no ids)
            raise PlanRefused(f"the standalone host refused the plan: {exc}") from exc
        result = work(EsapiSession(bridge))
        host.ClosePatient(bool(save))
        return result
    finally:
        host.Dispose()


def _code_hash() -> str:
    return agent_code.total_hash(
        agent_code.manifest(agent_code.code_root(), agent_code.current_venv())
    )


def run_standalone(
    assembly_dir: str | Path,
    *,
    patient_id: str,
    course_id: str,
    plan_id: str,
    site_template: str,
    out_dir: str | Path,
    policy: str = "rule",
    max_iterations: int = 10,
    locator: Any = None,
    window: Any = None,
    save: bool = True,
    extra_assemblies: Sequence[str] = (),
    script_name: str = "RtPlanAgent",
    approver: Approver | None = None,
    on_iteration: IterationCallback | None = None,
) -> SessionSummary:
    """Standalone research mode: a session through ``Rtplan.Bridge.StandaloneHost``.

    What ``rtplan plan --esapi --patient ID --course ID --plan ID`` runs. ``assembly_dir``
    holds ``Rtplan.PlanBridge.dll`` and the ESAPI assemblies. The host owns one STA thread and
    the process's one ``Application`` (``CustomScriptExecutable.CreateApplication``), runs every
    ESAPI call from its job queue and is disposed on return. ``locator`` is an
    ``Rtplan.Bridge.IPlanLocator`` (or the full name of a .NET class implementing it) that finds
    the plan in the opened patient (the stubs' ``StubPlanLocator`` in the tests; see the README
    for the workstation's). The session works on the plan itself (non-clinical: no copy), saves
    the modifications when ``save`` and journals only the keyed pseudonym of the plan id.
    ``window`` (optional ``IClinicianWindow``) or ``approver`` (a Python
    :class:`~agent.session.approval.Approver`, e.g. the console's) reviews each proposal;
    neither runs unattended. ``on_iteration`` sees every iteration record (progress).

    Raises
    ------
    esapi_bridge.errors.TpsUnavailable
        The .NET runtime, the assemblies or the locator cannot be loaded.
    esapi_bridge.errors.PlanRefused
        The host refused (no such patient or plan, a plan that is not UnApproved, a second
        Application in this process), with ESAPI's message.
    """
    template = load_template(site_template)
    code_hash = _code_hash()
    settings = PluginSettings(
        python_dll="",
        venv="",
        site_template=site_template,
        policy=policy,
        approve="each" if window is not None or approver is not None else "auto",
        max_iterations=max_iterations,
        log_dir=str(out_dir),
    )
    target = StandaloneTarget(
        assembly_dir, patient_id, course_id, plan_id, locator, tuple(extra_assemblies), script_name
    )
    return _in_standalone_host(
        target,
        template.technique.technique.value,
        save,
        functools.partial(
            _run, template=template, settings=settings, window=window,
            agent_code_hash=code_hash, out_dir=Path(out_dir),
            approver=approver, on_iteration=on_iteration,
        ),
    )  # fmt: skip


def resume_standalone(
    journal: str | Path,
    target: StandaloneTarget,
    *,
    approver: Approver | None = None,
    on_iteration: IterationCallback | None = None,
    save: bool = True,
) -> SessionSummary:
    """Continue an interrupted standalone session on the plan whose ids are given again.

    The journal holds no ids: the plan found from ``target`` must have the recorded plan
    pseudonym and structure set (:func:`agent.session.recorded_case.check_case`), else the
    session is refused before any change.

    Raises
    ------
    agent.session.resume.ResumeError
        Finished session, another plan (pseudonym or structures differ), changed template.
    """
    log = read_journal(journal_path(journal))
    if log.header.config.tps != "esapi":
        raise ResumeError(
            "this session was planned on the simulated TPS: resume it without --esapi"
        )
    template = load_recorded_template(log)
    code_hash = _code_hash()

    def work(session: EsapiSession) -> SessionSummary:
        return resume_session(
            journal,
            lambda _config: session,
            approver=approver,
            on_iteration=on_iteration,
            loop_type=functools.partial(_RecordedCodeLoop, agent_code_hash=code_hash),
        )

    return _in_standalone_host(target, template.technique.technique.value, save, work)
