"""Human in the loop (``--approve``): show each proposal, ask approve / edit / stop / feedback.

The console and the input function are injected, so tests drive the dialogue with a
scripted list of answers and read what was shown from a ``rich`` console recording.

Edits are typed one per line as ``<objective key> <field> <value>``, for example
``Rectum:point:upper:20 dose_gy 45`` (keys as in the table; fields ``dose_gy``,
``volume_pct``, ``priority``, ``parameter_a``); an empty line ends the edit. A value out
of range is refused at once, naming the field and its allowed range; an edit the
guardrails reject is reported with their reasons (see :meth:`ConsoleApprover.edit_rejected`)
and the proposal is shown again.

A bare Enter approves (the prompt says so). End of input (Ctrl-D, or a script that runs
out of answers) is the clinician's stop: the session ends as after ``s``, keeping the plan
approved so far, and prints its summary (exit code 0, stop reason ``clinician_stop``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.session.records import ApprovalAction, GuardVerdict, Proposal
from esapi_bridge.dto import NormalTissueObjective, Objective, objective_key

EDITABLE_FIELDS = ("dose_gy", "volume_pct", "priority", "parameter_a")
#: The question asked for every proposal.
PROMPT = "approve (a, or Enter) / edit (e) / stop (s) / feedback (f) > "
#: Said when the input ends.
END_OF_INPUT = "end of input: taken as the clinician's stop (the best plan approved so far is kept)"
#: Below this console width the proposal table uses short headers and no outer frame.
_NARROW = 100


@dataclass(frozen=True)
class ApprovalDecision:
    """The clinician's answer: the action, the objectives to apply (edit) and any feedback."""

    action: ApprovalAction
    objectives: list[Objective] | None = None
    feedback: str | None = None


class Approver(Protocol):
    """Anything that reviews a proposal before it reaches the TPS."""

    def review(
        self,
        iteration: int,
        proposal: Proposal,
        current: Sequence[Objective],
        applied: Sequence[Objective],
        verdict: GuardVerdict,
    ) -> ApprovalDecision:
        """Approve, edit, stop or give feedback on ``applied`` (the guarded proposal)."""
        ...


@runtime_checkable
class EditRejectionListener(Protocol):
    """An approver that wants to hear why the guardrails turned its edit down."""

    def edit_rejected(self, iteration: int, verdict: GuardVerdict) -> None:
        """Tell the clinician ``verdict.reasons`` (their edit was not applied)."""
        ...


class _EndOfInput(Exception):
    """The clinician's input ended (EOF)."""


def _fmt(objective: Objective | None, field: str) -> str:
    if objective is None:
        return "-"
    value = getattr(objective, field, None)
    return "" if value is None else f"{value:g}"


def proposal_table(
    iteration: int, current: Sequence[Objective], proposed: Sequence[Objective], width: int = 200
) -> Table:
    """A before/after table of two objective lists (changed cells highlighted); under
    100 columns of ``width`` it uses short headers and no frame, keys and numbers whole."""
    narrow = width < _NARROW
    options: dict[str, Any] = (
        {"box": box.SIMPLE_HEAVY, "show_edge": False, "pad_edge": False, "collapse_padding": True}
        if narrow
        else {}
    )
    table = Table(title=f"Proposal for iteration {iteration}", **options)
    table.add_column("objective", no_wrap=True)
    for field, short in (("dose_gy", "Gy"), ("volume_pct", "vol %"), ("priority", "prio")):
        table.add_column(short if narrow else f"{field} before", justify="right", no_wrap=True)
        table.add_column("->" if narrow else f"{field} after", justify="right", no_wrap=True)
    old = {objective_key(o): o for o in current}
    new = {objective_key(o): o for o in proposed}
    for key in list(dict.fromkeys([*old, *new])):
        row = [escape(key)]
        for field in ("dose_gy", "volume_pct", "priority"):
            before, after = _fmt(old.get(key), field), _fmt(new.get(key), field)
            row += [before, f"[bold yellow]{after}[/]" if after != before else after]
        table.add_row(*row)
    return table


def allowed_range(model: type[BaseModel], field: str) -> str | None:
    """The bounds of ``model.field`` as text (``0..1000``, ``>= 0``), or ``None``."""
    info = model.model_fields.get(field)
    if info is None:
        return None
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", getattr(item, "gt", low))
        high = getattr(item, "le", getattr(item, "lt", high))
    if low is not None and high is not None:
        return f"{low:g}..{high:g}"
    if low is not None:
        return f">= {low:g}"
    if high is not None:
        return f"<= {high:g}"
    return None


def _explain(exc: ValidationError, model: type[BaseModel], field: str, value: float) -> str:
    """``priority 5000 is not allowed: ... (allowed: 0..1000)``, not pydantic's dump."""
    reasons = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        reasons.append(msg[0].lower() + msg[1:] if msg else "invalid")
    bounds = allowed_range(model, field)
    allowed = f" (allowed: {bounds})" if bounds else ""
    return f"{field} {value:g} is not allowed: {'; '.join(dict.fromkeys(reasons))}{allowed}"


def apply_edits(objectives: Sequence[Objective], lines: Sequence[str]) -> list[Objective]:
    """Apply ``<key> <field> <value>`` edit lines to an objective list.

    Raises
    ------
    ValueError
        Naming the line, the field and its allowed range when the key, field or value is
        not valid (nothing is applied).
    """
    result = {objective_key(o): o for o in objectives}
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"edit {line!r}: expected '<objective key> <field> <value>'")
        key, field, raw = parts
        if key not in result:
            raise ValueError(
                f"edit {line!r}: unknown objective {key!r}; known: {', '.join(result)}"
            )
        obj = result[key]
        model = type(obj)
        if field not in EDITABLE_FIELDS or field not in model.model_fields:
            editable = [f for f in EDITABLE_FIELDS if f in model.model_fields]
            raise ValueError(
                f"edit {line!r}: field {field!r} cannot be edited on {key}; "
                f"editable: {', '.join(editable)}"
            )
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"edit {line!r}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            bounds = allowed_range(model, field)
            raise ValueError(
                f"edit {line!r}: {field} must be a finite number"
                + (f" (allowed: {bounds})" if bounds else "")
            )
        data = obj.model_dump()
        data[field] = value
        try:
            result[key] = model.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"edit {line!r}: {_explain(exc, model, field, value)}") from None
    # keys of edited point objectives may change with volume_pct: keep list order
    return list(result.values())


class ConsoleApprover:
    """Interactive approval on a ``rich`` console.

    Parameters
    ----------
    console
        Where tables and prompts are shown.
    ask
        Reads one line of input given a prompt (default: ``console.input``); raising
        ``EOFError`` ends the dialogue as the clinician's stop.
    """

    def __init__(
        self, console: Console | None = None, ask: Callable[[str], str] | None = None
    ) -> None:
        self.console = console or Console()
        self._ask = ask or self.console.input

    def _line(self, prompt: str) -> str:
        try:
            return self._ask(prompt)
        except EOFError:
            raise _EndOfInput from None

    def _say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def review(
        self,
        iteration: int,
        proposal: Proposal,
        current: Sequence[Objective],
        applied: Sequence[Objective],
        verdict: GuardVerdict,
    ) -> ApprovalDecision:
        """Show the proposal and ask until a valid answer is given (EOF: stop)."""
        self.console.print(proposal_table(iteration, current, applied, self.console.width))
        self._say(f"[bold]Rationale ({escape(proposal.policy)}):[/] {escape(proposal.rationale)}")
        for note in verdict.adjustments:
            self._say(f"[yellow]guardrail:[/] {escape(note)}")
        if any(isinstance(o, NormalTissueObjective) for o in applied):
            self._say("(NTO kept as shown)")
        try:
            return self._dialogue(applied)
        except _EndOfInput:
            self._say(f"[yellow]{END_OF_INPUT}[/]")
            return ApprovalDecision(ApprovalAction.STOP, feedback=None)

    def _dialogue(self, applied: Sequence[Objective]) -> ApprovalDecision:
        while True:
            answer = self._line(PROMPT).strip().lower()
            if answer in ("a", "approve", "y", "yes", ""):
                return ApprovalDecision(ApprovalAction.APPROVE, objectives=list(applied))
            if answer in ("s", "stop", "q", "quit"):
                return ApprovalDecision(ApprovalAction.STOP)
            if answer in ("f", "feedback"):
                text = self._line("feedback for the planner > ").strip()
                if text:
                    return ApprovalDecision(ApprovalAction.FEEDBACK, feedback=text)
                self._say("[red]empty feedback ignored[/]")
                continue
            if answer in ("e", "edit"):
                edited = self._edit(applied)
                if edited is not None:
                    return ApprovalDecision(ApprovalAction.EDIT, objectives=edited)
                continue
            self._say(
                f"[red]unknown answer {escape(repr(answer))}[/]: type a, e, s or f (Enter approves)"
            )

    def _edit(self, applied: Sequence[Objective]) -> list[Objective] | None:
        self._say(
            "one edit per line: '<objective key> <field> <value>' (fields: "
            f"{', '.join(EDITABLE_FIELDS)}); an empty line ends the edit"
        )
        lines: list[str] = []
        while True:
            line = self._line("edit > ").strip()
            if not line:
                break
            lines.append(line)
        if not lines:
            self._say("[red]no edits given[/]")
            return None
        try:
            return apply_edits(applied, lines)
        except ValueError as exc:
            self._say(f"[red]{escape(str(exc))}[/]")
            return None

    def edit_rejected(self, iteration: int, verdict: GuardVerdict) -> None:
        """Say why the guardrails turned the clinician's edit down (nothing was applied)."""
        self._say(f"[bold red]edit rejected by the guardrails[/] (iteration {iteration}):")
        for reason in verdict.reasons or ["no reason given"]:
            self._say(f"  [red]{escape(reason)}[/]")
        self._say("nothing was applied; the proposal follows again")
