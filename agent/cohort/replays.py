"""``llm-replay`` jobs: recorded LLM sessions re-run on their recorded responses.

A recorded session is replayed only on its exact case: the cohort's scenario and seed, the
dose engine version it was recorded with and the hash of the template it used (a replay on
anything else would not be that session). The session directory travels with the job as a
tar archive, so a worker needs no shared file system.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

from agent.cohort.models import LLM_REPLAY, CohortJob
from agent.session.records import JOURNAL_FILENAME, SessionHeader
from rtplan_common.models import FrozenModel


class SkippedReplay(FrozenModel):
    """A recorded session that was not replayed, and why."""

    session: str
    reason: str


def pack_session(session_dir: Path) -> bytes:
    """The journal and the recorded LLM exchanges (``llm/``) of ``session_dir`` as tar bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(session_dir / JOURNAL_FILENAME, arcname=JOURNAL_FILENAME)
        if (session_dir / "llm").is_dir():
            tar.add(session_dir / "llm", arcname="llm")
    return buffer.getvalue()


def _cohort_scenario(header: SessionHeader) -> str | None:
    config = header.config
    return config.template if config.scenario == "tg119" else config.scenario


def _why_not(
    header: SessionHeader, scenarios: Sequence[str], seeds: Sequence[int], engine_version: str
) -> str | None:
    from agent.session.identity import template_hash
    from agent.templates import load_template

    config = header.config
    scenario = _cohort_scenario(header)
    if config.policy != "llm":
        return f"policy {config.policy!r}, not an LLM session"
    if scenario not in scenarios or config.seed not in seeds:
        return f"case {scenario}/seed{config.seed} is not in this cohort"
    if config.template_from_file:
        return "its template was read from a file: replay it with 'rtplan replay --template'"
    if header.engine_version != engine_version:
        return f"recorded on dose engine {header.engine_version}, this one is {engine_version}"
    current = template_hash(load_template(config.template))
    if header.template_hash != current:
        return (
            f"template {config.template!r} changed since the recording "
            f"(hash {header.template_hash}, now {current})"
        )
    return None


def replay_jobs(
    root: Path,
    scenarios: Sequence[str],
    seeds: Sequence[int],
    engine_version: str,
) -> tuple[list[CohortJob], list[SkippedReplay]]:
    """The ``llm-replay`` jobs of the recorded sessions under ``root``, and those skipped."""
    from agent.session.journal_read import read_journal

    jobs: list[CohortJob] = []
    skipped: list[SkippedReplay] = []
    for journal in sorted(root.rglob(JOURNAL_FILENAME)):
        session_dir = journal.parent
        if any((d / JOURNAL_FILENAME).is_file() for d in session_dir.parents if root in d.parents):
            continue  # a replay kept inside a recorded session's directory
        name = str(session_dir.relative_to(root)) if session_dir != root else session_dir.name
        try:
            header = read_journal(journal).header
        except Exception as exc:  # an unreadable journal is reported, the others still run
            skipped.append(SkippedReplay(session=name, reason=f"{type(exc).__name__}: {exc}"))
            continue
        reason = _why_not(header, scenarios, seeds, engine_version)
        if reason is not None:
            skipped.append(SkippedReplay(session=name, reason=reason))
            continue
        scenario, seed = _cohort_scenario(header), header.config.seed
        assert scenario is not None and seed is not None
        jobs.append(
            CohortJob(
                scenario=scenario,
                seed=seed,
                policy=LLM_REPLAY,
                max_iterations=header.config.max_iterations,
                replay_archive=pack_session(session_dir),
            )
        )
    return jobs, skipped
