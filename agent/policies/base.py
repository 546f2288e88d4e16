"""The policy interface: every planner (rule, LLM, knowledge-guided, replay, baselines) implements it.

A policy sees a :class:`PolicyContext` (the current objectives and evaluation, the
memory of recent cause and effect, the clinician's feedback and, when re-asked, why
its previous proposal was rejected) and returns a :class:`agent.session.records.Proposal`:
the complete new objective list, a rationale and a ``done`` flag. Policies never
touch the TPS; the loop applies what the guardrails let through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from agent.evaluation import Evaluation
from agent.session.memory import Memory
from agent.session.records import GuardVerdict, IterationRecord, Proposal
from agent.templates import SiteTemplate
from esapi_bridge.dto import DoseSlice, DvhCurve, Objective, OptimizationResult, StructureInfo


class PolicyError(RuntimeError):
    """A policy cannot produce a proposal (e.g. a replay ran out of recorded steps)."""


@dataclass(frozen=True)
class TrialOutcome:
    """What a look-ahead trial returned: the guardrails' verdict and, if it ran, the
    evaluation of the trial plan (``None`` when rejected or when no trials are left)."""

    verdict: GuardVerdict
    evaluation: Evaluation | None
    applied: Sequence[Objective] | None = None


TrialFn = Callable[[Sequence[Objective]], TrialOutcome]


@dataclass(frozen=True)
class PolicyContext:
    """Everything a policy may read to make one proposal.

    Attributes
    ----------
    iteration
        The iteration being proposed (1 = first change after the template plan).
    max_iterations
        The session's iteration limit.
    template, structure_map
        The site template and its canonical id -> plan structure id map.
    prescription_gy
        The plan's prescribed total dose.
    structures
        The plan's structures (ids, types, volumes).
    objectives
        The objectives currently applied in the TPS (plan structure ids).
    evaluation
        The evaluation of the current plan.
    optimization
        The last optimizer result (per-objective values), if any.
    memory
        The last L iterations as (changes -> metric deltas).
    history
        Every iteration record of the session so far, oldest first.
    feedback
        The clinician's free-text feedback so far in this session, oldest first.
    rejection
        When re-asked: the guardrails' verdict on the previous attempt.
    attempt
        0 for the first proposal of this iteration, then 1, 2, ... on re-asks.
    dvhs
        DVHs of the current plan for every structure with an objective or a goal
        (plan structure id -> curve).
    identifiers
        Strings that identify the patient or plan (plan id, plan structure ids that are
        not the template's): never for a prompt; a model-backed policy redacts them.
    trial
        Look-ahead: ``trial(objectives)`` guards, journals and optimizes a trial plan from
        the same state and returns its evaluation (counted as an inner optimization);
        ``None`` when the session allows no trials.
    trials_left
        How many trials this iteration still allows.
    dose_planes
        Reads the current plan's dose planes (axial, coronal, sagittal through the target;
        plan structure ids in the masks) on demand, once per iteration: empty when the TPS
        offers none. Read it before any trial (a trial changes the plan's dose).
    """

    iteration: int
    max_iterations: int
    template: SiteTemplate
    structure_map: Mapping[str, str]
    prescription_gy: float
    structures: Sequence[StructureInfo]
    objectives: Sequence[Objective]
    evaluation: Evaluation
    optimization: OptimizationResult | None
    memory: Memory
    history: Sequence[IterationRecord] = ()
    feedback: Sequence[str] = field(default_factory=tuple)
    rejection: GuardVerdict | None = None
    attempt: int = 0
    dvhs: Mapping[str, DvhCurve] = field(default_factory=dict)
    identifiers: frozenset[str] = frozenset()
    trial: TrialFn | None = None
    trials_left: int = 0
    dose_planes: Callable[[], Sequence[DoseSlice]] = lambda: ()


@runtime_checkable
class Policy(Protocol):
    """A planner: ``propose(context) -> Proposal``. ``name`` is recorded in the journal."""

    name: str

    def propose(self, context: PolicyContext) -> Proposal:
        """The next objectives, why, and whether the policy is done."""
        ...
