"""Human in the loop (``--approve``): show each proposal, ask approve / edit / stop / feedback.

The console and the input function are injected, so tests drive the dialogue with a
scripted list of answers and read what was shown from a ``rich`` console recording.

Edits are typed one per line as ``<objective key> <field> <value>``, for example
``Rectum:point:upper:20 dose_gy 45`` (keys as in the table; fields ``dose_gy``,
``volume_pct``, ``priority``, ``parameter_a``); an empty line ends the edit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.table import Table

from agent.session.records import ApprovalAction, GuardVerdict, Proposal
from esapi_bridge.dto import NormalTissueObjective, Objective, objective_key

EDITABLE_FIELDS = ("dose_gy", "volume_pct", "priority", "parameter_a")


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


def _fmt(objective: Objective | None, field: str) -> str:
    if objective is None:
        return "-"
    value = getattr(objective, field, None)
    return "" if value is None else f"{value:g}"


def proposal_table(
    iteration: int, current: Sequence[Objective], proposed: Sequence[Objective]
) -> Table:
    """A before/after table of two objective lists (changed cells highlighted)."""
    table = Table(title=f"Proposal for iteration {iteration}", show_lines=False)
    table.add_column("objective")
    for field in ("dose_gy", "volume_pct", "priority"):
        table.add_column(f"{field} before", justify="right")
        table.add_column(f"{field} after", justify="right")
    old = {objective_key(o): o for o in current}
    new = {objective_key(o): o for o in proposed}
    for key in list(dict.fromkeys([*old, *new])):
        row = [key]
        for field in ("dose_gy", "volume_pct", "priority"):
            before, after = _fmt(old.get(key), field), _fmt(new.get(key), field)
            row += [before, f"[bold yellow]{after}[/]" if after != before else after]
        table.add_row(*row)
    return table


def apply_edits(objectives: Sequence[Objective], lines: Sequence[str]) -> list[Objective]:
    """Apply ``<key> <field> <value>`` edit lines to an objective list.

    Raises
    ------
    ValueError
        Naming the line when the key, field or value is not valid (nothing is applied).
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
        if field not in EDITABLE_FIELDS or not hasattr(result[key], field):
            raise ValueError(f"edit {line!r}: field {field!r} cannot be edited on {key}")
        try:
            value = float(raw)
        except ValueError as exc:
            raise ValueError(f"edit {line!r}: {raw!r} is not a number") from exc
        obj = result[key]
        data = obj.model_dump()
        data[field] = value
        try:
            result[key] = type(obj).model_validate(data)
        except ValueError as exc:
            raise ValueError(f"edit {line!r}: {str(exc).splitlines()[0]}") from exc
    # keys of edited point objectives may change with volume_pct: keep list order
    return list(result.values())


class ConsoleApprover:
    """Interactive approval on a ``rich`` console.

    Parameters
    ----------
    console
        Where tables and prompts are shown.
    ask
        Reads one line of input given a prompt (default: ``console.input``).
    """

    def __init__(
        self, console: Console | None = None, ask: Callable[[str], str] | None = None
    ) -> None:
        self.console = console or Console()
        self._ask = ask or self.console.input

    def review(
        self,
        iteration: int,
        proposal: Proposal,
        current: Sequence[Objective],
        applied: Sequence[Objective],
        verdict: GuardVerdict,
    ) -> ApprovalDecision:
        """Show the proposal and ask until a valid answer is given."""
        self.console.print(proposal_table(iteration, current, applied))
        self.console.print(f"[bold]Rationale ({proposal.policy}):[/] {proposal.rationale}")
        for note in verdict.adjustments:
            self.console.print(f"[yellow]guardrail:[/] {note}")
        if any(isinstance(o, NormalTissueObjective) for o in applied):
            self.console.print("(NTO kept as shown)")
        while True:
            answer = self._ask("(a)pprove / (e)dit / (s)top / (f)eedback > ").strip().lower()
            if answer in ("a", "approve", "y", "yes", ""):
                return ApprovalDecision(ApprovalAction.APPROVE, objectives=list(applied))
            if answer in ("s", "stop", "q", "quit"):
                return ApprovalDecision(ApprovalAction.STOP)
            if answer in ("f", "feedback"):
                text = self._ask("feedback for the planner > ").strip()
                if text:
                    return ApprovalDecision(ApprovalAction.FEEDBACK, feedback=text)
                self.console.print("[red]empty feedback ignored[/]")
                continue
            if answer in ("e", "edit"):
                edited = self._edit(applied)
                if edited is not None:
                    return ApprovalDecision(ApprovalAction.EDIT, objectives=edited)
                continue
            self.console.print(f"[red]unknown answer {answer!r}[/]")

    def _edit(self, applied: Sequence[Objective]) -> list[Objective] | None:
        self.console.print("one edit per line: '<objective key> <field> <value>'; empty line ends")
        lines: list[str] = []
        while True:
            line = self._ask("edit > ").strip()
            if not line:
                break
            lines.append(line)
        if not lines:
            self.console.print("[red]no edits given[/]")
            return None
        try:
            return apply_edits(applied, lines)
        except ValueError as exc:
            self.console.print(f"[red]{exc}[/]")
            return None
