"""The LLM's prompt, assembled from the :class:`~agent.policies.base.PolicyContext` only.

Nothing comes from the plan's identity: no plan, course or patient id, no case label, and
no raw structure id of the plan. Structures appear by the template's canonical ids
(``context.structure_map`` inverted: a plan structure ``PTV_Smith`` mapped to ``PTV`` is
written ``"PTV"``); an objective on a plan structure outside the map is on ``"unlisted
structure"``. Text from outside (ids, metrics, notes, feedback, guardrail reasons,
reference plans, critique, knowledge card) is redacted (:class:`~.sanitize.Redactor`) and
quoted as a JSON string (:func:`~.sanitize.quote_data`); plan structure ids inside such
text are first rewritten as canonical ids. The output is deterministic: the same context
and options give the same bytes.

Format (a parser may rely on it; ``tests/fake_llm_planner.py`` does, through the text only)
---------------------------------------------------------------------------------------------
Sections start with a line ``## <heading>``. Tables are pipe tables: a header row, a
separator row ``|---|...|``, one row per item (``(none)`` on the line below the separator
when empty). Cells are separated by `` | ``; a quoted cell is a JSON string in which ``|``
is written ``\\u007c``; ``-`` means "no value". Numbers: doses, priorities and ranges
(``lo..hi``) 2 decimals, volumes 1 decimal, goal values and margins 2 decimals (3 for
unitless indices; margins signed, > 0 = met with room), optimizer values 4 significant
digits.

System parts (:attr:`AssembledPrompt.system`, all static for a session and ``cacheable``):

1. ``# Role`` with ``## Data and instructions``, ``## How the session works``, ``## How to
   answer`` (the tool, the fields, units) and, for planners, ``## Planning practice``.
2. ``## Site protocol`` (lines ``protocol:``, ``description:``, ``technique:``,
   ``prescription: <Gy> Gy in <n> fractions to "<target>"``, ``normalization: ...``),
   ``## Structures`` (structure, type, required, in_plan, derived, description),
   ``## Protocol goals`` (goal, structure, metric, comparator, limit, variation, unit,
   priority, note), ``## Protocol score`` (``max score: <x>`` and criterion, structure,
   metric, comparator, full, zero, unit, weight), ``## Knowledge card``.

User text (:attr:`AssembledPrompt.user_text`), in this order:

- ``## Iteration``: ``iteration: <i> of <max>``, ``attempt: <n>``;
- ``## Score``: ``score: <x> of <max>`` (or ``score: none ...``), ``every priority-1 goal
  met: yes|no``;
- ``## Clinical goals``: goal | structure | metric | level_gy (the dose level of a ``V``
  metric) | comparator | limit | unit | priority | status (met, within_variation, failed)
  | value | margin;
- ``## Score criteria``: criterion | structure | metric | level_gy | comparator | full |
  zero | unit | value | points | max_points;
- ``## Current objectives``: id (O1..On, the order of ``context.objectives``) | kind
  (point, mean, geud, nto) | structure | operator | dose_gy | volume_pct | priority |
  achieved_gy (the current DVH's dose at the objective's volume, or the mean) | tps_value
  (the optimizer's value of the objective) | dose_range_gy | volume_range_pct |
  priority_range (the template's TPP ranges) | details (NTO and gEUD parameters);
- ``## DVH statistics``: structure | D98_gy | D95_gy | D50_gy | D2_gy | Dmean_gy | Dmax_gy;
- ``## Volumes at key doses``: structure | dose_gy | volume_pct (the goal doses of each
  structure); both DVH sections say ``(not included)`` without ``include_dvh``;
- ``## Recent iterations``: ``- iteration <i>: changes: ...; effects: ...`` lines;
- ``## Clinician feedback``: ``- "<quoted>"`` lines, oldest first, or ``(none)``;
- ``## Previous attempt rejected`` (only on a re-ask): ``- "<reason>"`` lines;
- ``## Reference plans`` (only if given): ``### Reference plan <k>`` and a quoted text;
- ``## Critique`` (role ``planner-with-critique``): a quoted text;
- ``## Look-ahead`` (only while ``trials_left`` > 0, planners): how to ask for a trial;
- ``## Images`` (only with ``images``): one line;
- ``## Your answer``: what to do now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.policies.base import PolicyContext
from agent.policies.llm.edits import TOOL_NAME
from agent.policies.llm.wire import SystemPart
from rtplan_common.models import control_characters

from .prompt_system import Role, protocol_text, role_text
from .prompt_tables import (
    UNLISTED,
    criteria_table,
    dvh_table,
    goals_table,
    memory_lines,
    objectives_table,
    plan_to_canonical,
    score_lines,
    section,
    volumes_table,
)
from .sanitize import Redactor, replace_normalized

#: Longest clinician feedback entry, guardrail reason, reference plan and critique kept.
FEEDBACK_CHARS = 2000
REASON_CHARS = 500
REFERENCE_CHARS = 8000
CRITIQUE_CHARS = 4000
ROLES: tuple[Role, ...] = ("planner", "evaluator", "planner-with-critique")


@dataclass(frozen=True)
class PromptOptions:
    """What goes into the prompt besides the context.

    Attributes
    ----------
    memory_iterations
        How many recent iterations (L) to show as changes -> effects (0: none).
    include_dvh
        Show the DVH statistics and the volumes at key doses.
    images
        Dose-plane images are attached to the request (the prompt says so).
    reference_plans
        Pre-rendered reference plans (few-shot), shown quoted.
    knowledge_card
        Machine-discovered knowledge of the site (quoted, in the system prefix).
    role
        ``planner``, ``evaluator`` (writes a critique, no parameters) or
        ``planner-with-critique`` (needs ``critique``).
    critique
        The evaluator's critique, for ``planner-with-critique`` only.
    trials_left
        Look-ahead trials this iteration still allows (> 0: the prompt offers
        ``simulate_only``).
    """

    memory_iterations: int = 5
    include_dvh: bool = True
    images: bool = False
    reference_plans: Sequence[str] = field(default_factory=tuple)
    knowledge_card: str | None = None
    role: Role = "planner"
    critique: str | None = None
    trials_left: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.memory_iterations <= 50:
            raise ValueError(f"memory_iterations must be 0..50, got {self.memory_iterations}")
        if self.trials_left < 0:
            raise ValueError(f"trials_left must be >= 0, got {self.trials_left}")
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; roles: {', '.join(ROLES)}")
        if (self.role == "planner-with-critique") != (self.critique is not None):
            raise ValueError("a critique goes with role 'planner-with-critique' (and only there)")
        object.__setattr__(self, "reference_plans", tuple(self.reference_plans))


@dataclass(frozen=True)
class AssembledPrompt:
    """The prompt: static system parts (cacheable prefix) and the current state.

    A plain dataclass, not a strict model: the strict models' string cleaning turns line
    feeds into blanks and cuts text at 16384 characters, which would destroy the layout.
    """

    system: list[SystemPart]
    user_text: str

    @property
    def text(self) -> str:
        """System parts and user text joined by blank lines (for size estimates and scans)."""
        return "\n\n".join([*(p.text for p in self.system), self.user_text])


def system_part(text: str) -> SystemPart:
    """A cacheable :class:`SystemPart` holding ``text`` exactly (line feeds kept; any other
    control character is a bug in the prompt's own text and refused)."""
    bad = [c for c in control_characters(text) if c != "\n"]
    if bad:
        raise ValueError(f"prompt text holds control characters {bad!r}")
    return SystemPart(text=text, cacheable=True)


def canonical_to_plan(context: PolicyContext) -> dict[str, str]:
    """Canonical structure id -> plan structure id (map the model's ids back to the plan)."""
    return dict(context.structure_map)


def estimate_chars(prompt: AssembledPrompt) -> int:
    """Characters of the prompt's text (system and user), for size estimates."""
    return len(prompt.text)


def canonical_text(context: PolicyContext, text: str) -> str:
    """``text`` with every plan structure id written as its canonical id (or "unlisted
    structure"), e.g. a guardrail reason ``PTV_Smith:point:lower:100: ...`` -> ``PTV:...``.
    Redact and quote the result before it goes to a model."""
    return replace_normalized(text, _canonical_replacements(context))


def _canonical_replacements(context: PolicyContext) -> dict[str, str]:
    """Every plan structure id the context knows -> its canonical id or "unlisted structure"."""
    inverse = plan_to_canonical(context)
    ids = [s.structure_id for s in context.structures]
    ids += [getattr(o, "structure_id", "") for o in context.objectives]
    ids += [*context.dvhs, *context.structure_map.values()]
    return {i: inverse.get(i, UNLISTED) for i in sorted(set(ids)) if i}


class _FreeText:
    """Outside text for the user part: plan ids rewritten as canonical, redacted, quoted."""

    def __init__(self, context: PolicyContext, redactor: Redactor) -> None:
        self.replacements = _canonical_replacements(context)
        self.redactor = redactor

    def __call__(self, text: str, max_chars: int, keep_newlines: bool = False) -> str:
        canonical = replace_normalized(text, self.replacements)
        return self.redactor.quote(canonical, max_chars, keep_newlines=keep_newlines)


def _iteration(context: PolicyContext) -> str:
    lines = [f"iteration: {context.iteration} of {context.max_iterations}"]
    note = ""
    if context.rejection is not None:
        note = ' (your previous proposal was rejected: see "Previous attempt rejected")'
    lines.append(f"attempt: {context.attempt}{note}")
    return "\n".join(lines)


def _look_ahead(trials_left: int) -> str:
    return (
        f"You may try edits before committing them: {trials_left} look-ahead trial(s) left in "
        "this iteration. Call the tool with simulate_only=true to have the edits optimized "
        "and evaluated without committing them; the trial plan's score and failing goals come "
        "back as the tool result, and you answer again. simulate_only=false (the default) "
        "commits the edits."
    )


def _answer(role: Role, context: PolicyContext) -> str:
    if role == "evaluator":
        return "Write your critique of the current plan with the tool offered to you."
    return (
        f"Call `{TOOL_NAME}` once: your edits for iteration {context.iteration}, or done=true "
        "if the plan should be accepted as it is."
    )


def user_text(context: PolicyContext, options: PromptOptions, redactor: Redactor) -> str:
    """The current state (see the module docstring for the sections)."""
    free = _FreeText(context, redactor)
    absent = "(not included)"
    parts = [
        section("Iteration", _iteration(context)),
        section("Score", score_lines(context.evaluation)),
        section("Clinical goals", goals_table(context)),
        section("Score criteria", criteria_table(context)),
        section("Current objectives", objectives_table(context)),
        section("DVH statistics", dvh_table(context) if options.include_dvh else absent),
        section("Volumes at key doses", volumes_table(context) if options.include_dvh else absent),
        section("Recent iterations", memory_lines(context, options.memory_iterations)),
    ]
    feedback = [f"- {free(f, FEEDBACK_CHARS, keep_newlines=True)}" for f in context.feedback]
    parts.append(section("Clinician feedback", "\n".join(feedback) or "(none)"))
    if context.rejection is not None:
        r = context.rejection
        lines = [f"- {free(x, REASON_CHARS)}" for x in [*r.reasons, *r.adjustments]]
        head = (
            f"The guardrails turned down your previous proposal ({r.status.value}); "
            "these are their reasons:"
        )
        parts.append(section("Previous attempt rejected", "\n".join([head, *lines])))
    if options.reference_plans:
        refs = [
            f"### Reference plan {k}\n{free(text, REFERENCE_CHARS, keep_newlines=True)}"
            for k, text in enumerate(options.reference_plans, start=1)
        ]
        parts.append(section("Reference plans", "\n".join(refs)))
    if options.critique is not None:
        parts.append(section("Critique", free(options.critique, CRITIQUE_CHARS, True)))
    if options.trials_left > 0 and options.role != "evaluator":
        parts.append(section("Look-ahead", _look_ahead(options.trials_left)))
    if options.images:
        parts.append(
            section(
                "Images",
                "Dose planes of the current plan are attached as images (doses in Gy, "
                "structures named by the ids of the tables).",
            )
        )
    parts.append(section("Your answer", _answer(options.role, context)))
    return "\n\n".join(parts) + "\n"


def assemble_prompt(
    context: PolicyContext, options: PromptOptions, redactor: Redactor
) -> AssembledPrompt:
    """The prompt of one model call (see the module docstring).

    Parameters
    ----------
    context
        What the policy may read.
    options
        Role, memory length, DVHs, images, reference plans, knowledge card, critique.
    redactor
        Redacts the session's identifiers from every free text.
    """
    system = [
        system_part(role_text(context.template, options.role)),
        system_part(protocol_text(context, redactor, options.knowledge_card)),
    ]
    return AssembledPrompt(system=system, user_text=user_text(context, options, redactor))


__all__ = [
    "AssembledPrompt",
    "PromptOptions",
    "Role",
    "assemble_prompt",
    "canonical_text",
    "canonical_to_plan",
    "estimate_chars",
    "system_part",
    "user_text",
]
