"""Cohort studies: every policy on the same cases (scenario x seed), locally or on a Ray cluster.

:func:`run_cohort` runs a :class:`CohortSpec` on an executor (:class:`LocalExecutor`, a
spawned process pool, or :class:`RayExecutor`) with a case factory from the composition root;
:func:`write_outputs` writes its JSON, CSV and best-so-far figure.
"""

from agent.cohort.case import run_case, scenario_case
from agent.cohort.executors import LocalExecutor, RayExecutor, make_executor, probe_address
from agent.cohort.models import (
    LLM_REPLAY,
    CaseFactory,
    CaseResult,
    CohortError,
    CohortJob,
    CurvePoint,
    WorkerInfo,
)
from agent.cohort.runner import CohortReport, CohortSpec, run_cohort, write_outputs

__all__ = [
    "LLM_REPLAY",
    "CaseFactory",
    "CaseResult",
    "CohortError",
    "CohortJob",
    "CohortReport",
    "CohortSpec",
    "CurvePoint",
    "LocalExecutor",
    "RayExecutor",
    "WorkerInfo",
    "make_executor",
    "probe_address",
    "run_case",
    "run_cohort",
    "scenario_case",
    "write_outputs",
]
