"""What a planning session records: per-iteration records, the session header and summary.

These models are the single vocabulary of the journal (``journal.jsonl``, one JSON
object per line), of ``summary.json`` and of the reports built from them. Every
line of a journal is one :data:`JournalEntry`, discriminated on ``entry``:

- ``header`` (:class:`SessionHeader`): first line; config, template name and hash,
  pseudonymous case identity, provenance (engine and package versions, case source,
  policy and its settings, the fingerprint of the installation secret) and the plan's
  original objectives (the snapshot restored on abort, error or Ctrl-C);
- ``intent`` (:class:`ApplyIntent`): written and fsync'ed *before* each change to
  the TPS (the objectives about to be set);
- ``iteration`` (:class:`IterationRecord`): one completed iteration; iteration 0 is
  the template's initial plan (policy ``"template"``), a last ``"revert-to-best"``
  iteration re-applies the best objectives when the session ended on a worse plan;
- ``event`` (:class:`SessionEvent`): restore, resume, error, interrupt notes;
- ``summary`` (:class:`SessionSummary`): last line of a finished session. Only a
  ``resumed`` event may follow it (an interrupted session that was continued; its
  final summary is then the last line again).

A session directory holds ``journal.jsonl`` and, once finished, ``summary.json``
(the same :class:`SessionSummary`, with the head of the journal's HMAC chain).

Schema version 2: every journal line also carries ``"hmac"``, the HMAC-SHA256 of the line
chained to the previous line's (see :mod:`agent.session.chain`); version-1 journals are
read with their stop reasons mapped and marked unverified (see
:mod:`agent.session.journal_read`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from agent.evaluation import Evaluation
from agent.evaluation.reference import ClinicalReference
from agent.session.model_calls import ModelCallStats
from agent.session.provenance import (
    CaseLabel,
    ChainHead,
    IntegrityStatus,
    JournalIntegrity,
    PolicyDescription,
    TornTail,
)
from esapi_bridge.dto import (
    CaseSource,
    CaseSourceKind,
    Objective,
    OptimizationMode,
    OptimizationResult,
)
from rtplan_common.models import StrictModel

TEMPLATE_POLICY = "template"  # proposal.policy of iteration 0
REVERT_POLICY = "revert-to-best"  # proposal.policy of a final revert to the best iteration
JOURNAL_FILENAME = "journal.jsonl"
SUMMARY_FILENAME = "summary.json"
RECORDS_SCHEMA_VERSION = 2

NonNegSeconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Record(StrictModel):
    model_config = ConfigDict(extra="forbid")


class Proposal(_Record):
    """What a policy returns: the complete new objective list, why, and whether it is done.

    ``done=True`` means the policy has nothing more to try; ``objectives`` is then
    ignored by the loop (it may repeat the current list). ``optimization_mode`` asks for
    a restart from scratch or a warm continuation; ``None`` uses the session's setting.
    """

    objectives: list[Objective]
    rationale: str = ""
    done: bool = False
    policy: str = ""
    optimization_mode: OptimizationMode | None = None  # None: the session's default
    model_calls: ModelCallStats | None = None  # model-backed policies: the calls behind it


class VerdictStatus(StrEnum):
    """Outcome of the guardrails on one proposal."""

    ACCEPTED = "accepted"  # applied as proposed
    CLIPPED = "clipped"  # applied after bounding step sizes / ranges (see ``adjustments``)
    REJECTED = "rejected"  # never sent to the TPS (see ``reasons``)


class GuardVerdict(_Record):
    """The guardrails' judgement of a proposal.

    ``reasons`` say why a proposal was rejected (one line per violation, naming the
    structure, field, value and allowed range); ``adjustments`` list what was clipped.
    """

    status: VerdictStatus
    reasons: list[str] = Field(default_factory=list)
    adjustments: list[str] = Field(default_factory=list)

    @property
    def accepted(self) -> bool:
        """Whether the (possibly clipped) proposal may be applied."""
        return self.status is not VerdictStatus.REJECTED


class RejectedProposal(_Record):
    """A proposal the guardrails (or the clinician) turned down, kept for the record."""

    proposal: Proposal
    verdict: GuardVerdict


class ApprovalAction(StrEnum):
    """The clinician's answer to a proposal (``--approve``), or ``auto`` without approval."""

    AUTO = "auto"
    APPROVE = "approve"
    EDIT = "edit"
    STOP = "stop"
    FEEDBACK = "feedback"


class IterationTimings(_Record):
    """Wall time (s) of the steps of one iteration; ``total_s`` covers the whole iteration."""

    propose_s: NonNegSeconds = 0.0
    guard_s: NonNegSeconds = 0.0
    approval_s: NonNegSeconds = 0.0
    optimize_s: NonNegSeconds = 0.0
    dose_s: NonNegSeconds = 0.0
    normalize_s: NonNegSeconds = 0.0
    evaluate_s: NonNegSeconds = 0.0
    total_s: NonNegSeconds = 0.0


class TrialRecord(_Record):
    """A look-ahead trial: objectives the policy asked to try before committing.

    Guarded like a proposal; a rejected trial never reached the TPS (``score`` is None).
    """

    objectives: list[Objective]
    verdict: GuardVerdict
    score: float | None = None
    all_priority1_met: bool | None = None
    optimize_s: NonNegSeconds = 0.0


class IterationRecord(_Record):
    """One iteration of the loop: proposal -> guard -> apply -> optimize -> dose -> normalize -> evaluate.

    ``evaluation`` is the plan after this iteration's optimization and normalization.
    Iteration 0 is the template's initial objectives (``proposal.policy == "template"``);
    a last iteration with ``proposal.policy == "revert-to-best"`` re-applies the objectives
    of the best iteration when the session ended on a worse plan.
    ``inner_optimizations`` counts optimizer calls made in this iteration.
    """

    entry: Literal["iteration"] = "iteration"
    iteration: Annotated[int, Field(ge=0)]
    proposal: Proposal
    rejected: list[RejectedProposal] = Field(default_factory=list)
    trials: list[TrialRecord] = Field(default_factory=list)
    verdict: GuardVerdict
    approval: ApprovalAction = ApprovalAction.AUTO
    feedback: str | None = None
    applied_objectives: list[Objective]
    optimization_mode: OptimizationMode = OptimizationMode.RESTART
    optimization: OptimizationResult | None = None
    inner_optimizations: Annotated[int, Field(ge=0)] = 0
    normalization_factor: float | None = None
    evaluation: Evaluation | None = None
    timings: IterationTimings = Field(default_factory=IterationTimings)
    timestamp: str = Field(default_factory=utc_now_iso)

    @property
    def score(self) -> float | None:
        """The evaluation's score, if any."""
        return None if self.evaluation is None else self.evaluation.score


class SessionConfig(_Record):
    """How a session was started (enough to rerun it).

    ``scenario``/``seed`` identify a simulated case (``None`` on a real TPS). ``template`` is
    the template's own ``name`` (never a file path: folder names can identify a patient);
    ``template_from_file`` says it was read from a YAML file, which resume and replay then
    need again (``--template FILE``, checked against the journaled hash).
    """

    scenario: str | None = None
    seed: int | None = None
    template: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
    template_from_file: bool = False
    policy: str = "rule"
    max_iterations: Annotated[int, Field(ge=0, le=1000)] = 20
    optimizer_iterations: Annotated[int, Field(ge=1, le=10_000)] = 200
    # restart: every optimization starts from scratch, so a plan is a function of its
    # objectives (exact revert, resume and replay); continue: warm start from the last fluence
    optimization_mode: OptimizationMode = OptimizationMode.RESTART
    patience: Annotated[int, Field(ge=1)] = 4  # stalled iterations before stopping with goals met
    stall_limit: Annotated[int, Field(ge=1)] = 6  # stalled iterations before stopping anyway
    min_improvement: Annotated[float, Field(ge=0.0)] = 0.01
    memory_length: Annotated[int, Field(ge=1)] = 5
    approve: bool = False
    lookahead_trials: Annotated[int, Field(ge=0, le=10)] = 0  # look-ahead trials per iteration
    # False: no per-iteration step clipping (each proposal an independent point, as the
    # Bayesian-optimization baseline needs); range and finiteness checks still apply
    step_bounds: bool = True
    spacing_mm: float | None = None
    tps: str = "mock"


class CaseIdentity(_Record):
    """Pseudonymous identity of the case: hashes only, never patient or plan names.

    ``case_label`` follows :data:`agent.session.provenance.CASE_LABEL_RULE` (simulated and
    public cases only).
    """

    plan_pseudonym: str  # HMAC of the plan id with the installation secret, 16 hex digits
    structure_set_hash: str  # sha256 of the sorted structure ids and volumes, first 16 hex digits
    technique: str
    prescription_gy: float
    fractions: int
    case_label: CaseLabel | None = None  # e.g. "prostate-basic/seed0" for simulated cases


#: Case sources of patient data: their header carries no case label.
PATIENT_SOURCES = frozenset({CaseSourceKind.OPENKBP, CaseSourceKind.DICOM, CaseSourceKind.ESAPI})


class SessionHeader(_Record):
    """First line of a journal.

    Provenance (``None`` when unknown, and in version-1 journals): ``engine_version`` of
    the TPS's dose engine, ``package_version`` of rtplan-agent, ``case_source`` (kind and
    content hash), ``policy`` with all its settings, and ``chain_key_id``, the public
    fingerprint of the secret that keys the HMAC chain (set by the journal writer).
    """

    entry: Literal["header"] = "header"
    schema_version: int = RECORDS_SCHEMA_VERSION
    session_id: str
    config: SessionConfig
    template_name: str
    template_hash: str
    case: CaseIdentity
    structure_map: dict[str, str]  # canonical template id -> plan structure id
    original_objectives: list[Objective]
    started_at: str = Field(default_factory=utc_now_iso)
    engine_version: str | None = None
    package_version: str | None = None
    case_source: CaseSource | None = None
    policy: PolicyDescription | None = None
    chain_key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None

    @model_validator(mode="after")
    def _no_label_on_patient_data(self) -> SessionHeader:
        source = self.case_source
        if source is not None and source.kind in PATIENT_SOURCES and self.case.case_label:
            raise ValueError(
                f"a {source.kind.value} case gets no case label (patient data): "
                f"got {self.case.case_label!r}"
            )
        return self


class ApplyIntent(_Record):
    """Journaled (and fsync'ed) right before objectives are set on the TPS."""

    entry: Literal["intent"] = "intent"
    iteration: Annotated[int, Field(ge=0)]
    objectives: list[Objective]
    purpose: Literal["apply", "restore", "trial"] = "apply"
    timestamp: str = Field(default_factory=utc_now_iso)


class SessionEvent(_Record):
    """A noteworthy event: ``restored``, ``resumed``, ``error``, ``interrupted``, ``rejected``."""

    entry: Literal["event"] = "event"
    kind: str
    iteration: int | None = None
    message: str = ""
    model_calls: ModelCallStats | None = None  # a policy's calls that reached no iteration
    timestamp: str = Field(default_factory=utc_now_iso)


class StopReason(StrEnum):
    """Why a session ended, named for what is true of the plan it left.

    The words shown to people (CLI, ``summary.json`` message, journal, report) come from
    :func:`agent.session.outcome.describe_stop`.
    """

    ALL_GOALS_MET = "all_goals_met"  # every goal of every priority is met
    # every priority-1 goal met, lower-priority goals failing, and no further improvement
    PRIORITY1_MET_NO_FURTHER_IMPROVEMENT = "priority1_met_no_further_improvement"
    NO_IMPROVEMENT = "no_improvement"  # priority-1 goals still failing, no further improvement
    POLICY_DONE = "policy_done"  # the policy had nothing more to try (priority-1 goals failing)
    ITERATION_LIMIT = "iteration_limit"
    CLINICIAN_STOP = "clinician_stop"
    GUARD_REJECTED = "guard_rejected"  # the policy kept proposing what the guardrails reject
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM or SIGHUP; original objectives restored
    ERROR = "error"  # unrecoverable error; original objectives restored


class SessionSummary(_Record):
    """Last line of a finished journal, also written as ``summary.json``.

    ``iterations`` counts policy iterations (iteration 0, the template plan, and a final
    revert to the best iteration excluded); ``inner_optimizations`` counts every optimizer
    call (iteration 0, a revert and a resume re-optimization included).
    ``final_evaluation`` is the plan left in the TPS (``None`` when the original
    objectives were restored); ``best_iteration`` is the iteration with the highest
    score (ties: all priority-1 goals met first, then earliest).
    """

    entry: Literal["summary"] = "summary"
    session_id: str
    config: SessionConfig
    template_name: str
    template_hash: str
    case: CaseIdentity
    initial_evaluation: Evaluation | None
    final_evaluation: Evaluation | None
    best_iteration: int | None = None
    stop_reason: StopReason
    message: str = ""
    iterations: Annotated[int, Field(ge=0)]
    inner_optimizations: Annotated[int, Field(ge=0)]
    rejected_proposals: Annotated[int, Field(ge=0)] = 0
    model_calls: ModelCallStats | None = None  # totals of a model-backed policy
    restored_original: bool = False
    wall_time_s: NonNegSeconds
    finished_at: str = Field(default_factory=utc_now_iso)
    # the journal's chain head after this summary's line: set in summary.json only (a
    # journal line cannot hold its own HMAC), None in the journal
    chain_head: ChainHead | None = None
    # a real patient's clinical plan beside the final plan (OpenKBP): summary.json only
    clinical_reference: ClinicalReference | None = None


JournalEntry = Annotated[
    SessionHeader | ApplyIntent | IterationRecord | SessionEvent | SessionSummary,
    Field(discriminator="entry"),
]


class SessionLog(_Record):
    """A journal read back: header, iterations in order, events, and summary if finished.

    ``torn_tail`` is an incomplete last line that was ignored (or, by resume, moved aside);
    ``integrity`` what verifying the HMAC chain found; ``notices`` say both in words, for
    the user (a torn tail, an unverified journal, an unchecked chain head).
    """

    header: SessionHeader
    iterations: list[IterationRecord] = Field(default_factory=list)
    events: list[SessionEvent] = Field(default_factory=list)
    intents: list[ApplyIntent] = Field(default_factory=list)
    summary: SessionSummary | None = None
    torn_tail: TornTail | None = None
    integrity: JournalIntegrity = Field(
        default_factory=lambda: JournalIntegrity(status=IntegrityStatus.NOT_CHECKED)
    )
    notices: list[str] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Whether the session wrote its summary."""
        return self.summary is not None
