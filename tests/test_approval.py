"""Human in the loop: scripted answers to the approval dialogue, and its effect on the loop."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeTpsSession, ScriptedPolicy
from rich.console import Console
from template_fixtures import frozen_prostate_template

from agent.policies.base import PolicyContext
from agent.session.approval import ConsoleApprover, apply_edits, proposal_table
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import (
    ApprovalAction,
    GuardVerdict,
    Proposal,
    SessionConfig,
    StopReason,
    VerdictStatus,
)
from agent.templates import match_structures
from esapi_bridge.dto import objective_key

TEMPLATE = frozen_prostate_template()
SMAP = match_structures(TEMPLATE, FakeTpsSession().structures())
OBJS = TEMPLATE.initial_objectives(SMAP)
KEY = "Rectum:point:upper:30"


def _approver(answers: list[str]) -> tuple[ConsoleApprover, io.StringIO, list[str]]:
    out = io.StringIO()
    it: Iterator[str] = iter(answers)
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(it)

    return ConsoleApprover(Console(file=out, width=160), ask), out, prompts


def _proposal() -> Proposal:
    moved = [o.model_copy(update={"dose_gy": 65.0}) if objective_key(o) == KEY else o for o in OBJS]
    return Proposal(objectives=moved, rationale="rectum V75 fails", policy="rule")


def _review(approver: ConsoleApprover):
    p = _proposal()
    return approver.review(1, p, OBJS, p.objectives, GuardVerdict(status=VerdictStatus.ACCEPTED))


def test_table_shows_before_after_and_rationale() -> None:
    approver, out, _ = _approver(["a"])
    decision = _review(approver)
    assert decision.action is ApprovalAction.APPROVE
    text = out.getvalue()
    assert KEY in text and "71.28" in text and "65" in text
    assert "rectum V75 fails" in text


def test_unknown_answer_then_stop() -> None:
    approver, out, prompts = _approver(["maybe", "s"])
    assert _review(approver).action is ApprovalAction.STOP
    assert "unknown answer 'maybe'" in out.getvalue() and len(prompts) == 2


def test_feedback_is_returned() -> None:
    approver, _, _ = _approver(["f", "spare the rectum more"])
    decision = _review(approver)
    assert decision.action is ApprovalAction.FEEDBACK
    assert decision.feedback == "spare the rectum more"


def test_edit_changes_a_field_and_bad_edits_are_explained() -> None:
    approver, out, _ = _approver(
        ["e", f"{KEY} dose_gy abc", "", "e", f"{KEY} priority 80", "", "a"]
    )
    decision = _review(approver)
    assert decision.action is ApprovalAction.EDIT and decision.objectives is not None
    edited = next(o for o in decision.objectives if objective_key(o) == KEY)
    assert edited.priority == 80 and edited.dose_gy == 65.0
    assert "'abc' is not a number" in out.getvalue()


def test_apply_edits_validates() -> None:
    with pytest.raises(ValueError, match="unknown objective"):
        apply_edits(OBJS, ["Nope:point:upper:1 dose_gy 3"])
    with pytest.raises(ValueError, match="cannot be edited"):
        apply_edits(OBJS, [f"{KEY} structure_id 3"])
    with pytest.raises(ValueError, match="priority"):
        apply_edits(OBJS, [f"{KEY} priority 5000"])


def _loop(tmp_path: Path, policy: ScriptedPolicy, approver: ConsoleApprover) -> PlanningLoop:
    return PlanningLoop(
        FakeTpsSession(), TEMPLATE, policy, SessionConfig(template="prostate-basic", approve=True),
        tmp_path / "s", approver=approver, save_snapshots=False,
    )  # fmt: skip


def _nudge(ctx: PolicyContext) -> Proposal:
    objs = [
        o.model_copy(update={"priority": o.priority + 10}) if objective_key(o) == KEY else o
        for o in ctx.objectives
    ]
    return Proposal(objectives=objs, rationale="nudge")


def test_feedback_reaches_the_policy_and_the_tps_never_sees_the_refused_proposal(
    tmp_path: Path,
) -> None:
    policy = ScriptedPolicy([_nudge, _nudge, _nudge])
    approver, _, _ = _approver(["f", "keep the bladder low", "a", "s"])
    loop = _loop(tmp_path, policy, approver)
    summary = loop.run()
    assert summary.stop_reason is StopReason.CLINICIAN_STOP
    contexts: list[PolicyContext] = policy.contexts  # type: ignore[assignment]
    assert contexts[0].feedback == ()
    assert contexts[1].feedback == ("keep the bladder low",)
    log = read_journal(tmp_path / "s")
    first = log.iterations[1]
    assert first.approval is ApprovalAction.APPROVE and first.feedback == "keep the bladder low"
    assert first.rejected[0].verdict.reasons == ["clinician feedback: keep the bladder low"]
    # template plan + one approved iteration reached the TPS
    assert len(loop.session.set_calls) == 2  # type: ignore[attr-defined]


def test_edited_objectives_are_applied(tmp_path: Path) -> None:
    approver, _, _ = _approver(["e", f"{KEY} dose_gy 66", "", "s"])
    loop = _loop(tmp_path, ScriptedPolicy([_nudge, _nudge]), approver)
    loop.run()
    applied = read_journal(tmp_path / "s").iterations[1]
    assert applied.approval is ApprovalAction.EDIT
    moved = next(o for o in applied.applied_objectives if objective_key(o) == KEY)
    assert moved.dose_gy == 66.0 and moved.priority == 50.0


def test_prompt_says_what_enter_does_and_enter_approves() -> None:
    approver, _, prompts = _approver([""])
    assert _review(approver).action is ApprovalAction.APPROVE
    assert "Enter" in prompts[0] and "approve" in prompts[0]


def test_invalid_value_names_the_field_and_the_allowed_range() -> None:
    approver, out, _ = _approver(["e", f"{KEY} priority 5000", "", "s"])
    _review(approver)
    text = " ".join(out.getvalue().split())
    assert "priority 5000 is not allowed" in text and "allowed: 0..1000" in text
    assert "validation error" not in text  # not pydantic's dump
    with pytest.raises(
        ValueError, match=r"volume_pct must be a finite number \(allowed: 0\.\.100\)"
    ):
        apply_edits(OBJS, [f"{KEY} volume_pct nan"])
    with pytest.raises(ValueError, match=r"dose_gy -5 is not allowed.*allowed: >= 0"):
        apply_edits(OBJS, [f"{KEY} dose_gy -5"])
    with pytest.raises(ValueError, match="editable: dose_gy, volume_pct, priority"):
        apply_edits(OBJS, [f"{KEY} parameter_a 3"])


def _raise_eof(prompt: str) -> str:
    raise EOFError


def test_end_of_input_is_the_clinicians_stop() -> None:
    out = io.StringIO()
    approver = ConsoleApprover(Console(file=out, width=160), _raise_eof)
    assert _review(approver).action is ApprovalAction.STOP
    assert "end of input" in out.getvalue() and "clinician's stop" in out.getvalue()
    # also in the middle of an edit
    approver, out = _approver_until_eof(["e", f"{KEY} dose_gy 60"])  # then the input ends
    assert _review(approver).action is ApprovalAction.STOP
    assert "end of input" in out.getvalue()


def _approver_until_eof(answers: list[str]) -> tuple[ConsoleApprover, io.StringIO]:
    out = io.StringIO()
    it: Iterator[str] = iter(answers)

    def ask(prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return ConsoleApprover(Console(file=out, width=160), ask), out


def test_end_of_input_in_a_session_keeps_the_approved_plan(tmp_path: Path) -> None:
    approver, _ = _approver_until_eof(["a"])  # approve iteration 1, then the input ends
    loop = _loop(tmp_path, ScriptedPolicy([_nudge, _nudge, _nudge]), approver)
    summary = loop.run()
    assert summary.stop_reason is StopReason.CLINICIAN_STOP
    assert not summary.restored_original and summary.final_evaluation is not None
    log = read_journal(tmp_path / "s")
    assert log.summary is not None and log.iterations[-1].approval is ApprovalAction.APPROVE


def test_a_rejected_edit_shows_the_guardrails_reason_and_range(tmp_path: Path) -> None:
    # the template bounds the rectum objective's dose; 5 Gy is far below its range
    approver, out = _approver_until_eof(["e", f"{KEY} dose_gy 5", "", "s"])
    loop = _loop(tmp_path, ScriptedPolicy([_nudge, _nudge, _nudge]), approver)
    loop.run()
    text = " ".join(out.getvalue().split())
    assert "edit rejected by the guardrails" in text
    assert f"{KEY}: dose_gy 5 outside the template range" in text
    assert "nothing was applied" in text
    assert text.count("Proposal for iteration 1") == 2  # shown again after the rejection


def test_proposal_table_fits_80_columns_with_keys_whole() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)
    p = _proposal()
    console.print(proposal_table(1, OBJS, p.objectives, width=80))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    for o in OBJS:
        assert any(objective_key(o) in line for line in lines), objective_key(o)


def test_markup_in_a_rationale_is_printed_as_typed() -> None:
    approver, out, _ = _approver(["a"])
    p = Proposal(objectives=OBJS, rationale="raise [bold]PTV[/] [/]", policy="rule")
    approver.review(1, p, OBJS, OBJS, GuardVerdict(status=VerdictStatus.ACCEPTED))
    assert "raise [bold]PTV[/] [/]" in out.getvalue()


def _rectum_dose(delta_gy: float):  # type: ignore[no-untyped-def]
    def step(ctx: PolicyContext) -> Proposal:
        objs = [
            o.model_copy(update={"dose_gy": o.dose_gy + delta_gy}) if objective_key(o) == KEY else o
            for o in ctx.objectives
        ]
        return Proposal(objectives=objs, rationale=f"rectum objective {delta_gy:+g} Gy")

    return step


def test_end_of_input_keeps_the_best_approved_plan_not_the_last(tmp_path: Path) -> None:
    """Item 15: end of input is the clinician's stop and the best approved plan is kept."""
    approver, _ = _approver_until_eof(["a", "a"])  # approve a better plan, then a worse one
    steps = [_rectum_dose(-6.0), _rectum_dose(+12.0), _rectum_dose(0.0)]
    loop = _loop(tmp_path, ScriptedPolicy(steps), approver)
    summary = loop.run()
    log = read_journal(tmp_path / "s")
    scores = {r.iteration: r.evaluation for r in log.iterations if r.evaluation is not None}
    assert summary.stop_reason is StopReason.CLINICIAN_STOP
    assert summary.best_iteration == 1, "the toy TPS should make iteration 2 worse"
    final = summary.final_evaluation
    assert final is not None and final == scores[max(scores)]
    assert log.iterations[-1].proposal.policy == "revert-to-best"
    kept = {objective_key(o): o for o in log.iterations[-1].applied_objectives}
    assert kept[KEY].dose_gy == pytest.approx(
        {objective_key(o): o for o in log.iterations[1].applied_objectives}[KEY].dose_gy
    )
