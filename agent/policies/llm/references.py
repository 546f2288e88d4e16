"""Reference plans for the prompt (few-shot, as GPT-RadPlan): the best plan of an earlier
session of the same site template, rendered with the prompt's own tables.

A reference plan is read from the session's journal and shown by template ids only: the
earlier patient's plan id, case and structure names never reach the text (a structure the
template does not know is shown as unlisted). Its text is fixed when the session starts and
recorded in the policy settings, so a resumed or replayed session sees the same prompt.
"""

from __future__ import annotations

from pathlib import Path

from agent.policies.base import PolicyContext
from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.prompt_tables import goals_table, objectives_table, score_lines
from agent.policies.llm.settings import MAX_REFERENCE_PLANS
from agent.session.errors import JournalError
from agent.session.journal_read import read_journal
from agent.session.memory import Memory
from agent.session.state import SessionState
from agent.templates import SiteTemplate


def reference_plan_text(session_dir: Path, template: SiteTemplate) -> str:
    """The best plan of the session in ``session_dir`` as prompt text.

    Raises
    ------
    LlmConfigError
        The directory holds no readable journal, the session used another template, or it
        has no evaluated plan.
    """
    try:
        log = read_journal(session_dir)
    except (JournalError, OSError) as exc:
        raise LlmConfigError(f"reference plan {session_dir}: no readable session: {exc}") from exc
    header = log.header
    if header.template_name != template.name:
        raise LlmConfigError(
            f"reference plan {session_dir} was planned with template {header.template_name!r}, "
            f"this session uses {template.name!r}: take a session of the same site"
        )
    state = SessionState(records=list(log.iterations))
    best = state.best_index()
    if best is None:
        raise LlmConfigError(f"reference plan {session_dir} has no evaluated plan")
    record = state.records[best]
    assert record.evaluation is not None
    context = PolicyContext(
        iteration=record.iteration,
        max_iterations=header.config.max_iterations,
        template=template,
        structure_map=header.structure_map,
        prescription_gy=header.case.prescription_gy,
        structures=(),
        objectives=record.applied_objectives,
        evaluation=record.evaluation,
        optimization=record.optimization,
        memory=Memory(),
    )
    return "\n".join(
        [
            f"The best plan of an earlier session of this site (iteration {record.iteration}).",
            score_lines(record.evaluation),
            "Goals:",
            goals_table(context),
            "Objectives:",
            objectives_table(context),
        ]
    )


def reference_plan_texts(session_dirs: list[Path], template: SiteTemplate) -> list[str]:
    """:func:`reference_plan_text` of each directory (at most :data:`MAX_REFERENCE_PLANS`)."""
    if len(session_dirs) > MAX_REFERENCE_PLANS:
        raise LlmConfigError(
            f"{len(session_dirs)} reference plans given; at most {MAX_REFERENCE_PLANS} "
            "(each is sent with every call)"
        )
    return [reference_plan_text(d, template) for d in session_dirs]


__all__ = ["MAX_REFERENCE_PLANS", "reference_plan_text", "reference_plan_texts"]
