"""``--policy bo``: Bayesian optimization (Optuna TPE) of the template's TPPs, the baseline.

Each loop iteration is one trial: an independent point of the template's TPP ranges
(:mod:`agent.policies.bo.space`), applied, optimized from scratch and scored like any
change (guarded, journaled before it reaches the TPS). The score of the plan the loop
reports back is told to the study (:func:`agent.policies.bo.score.bo_objective`). A fair
chance needs a session without the stall stop and the per-iteration step bounds:
:func:`bo_session_settings` gives those settings, and the policy refuses to go on when a
trial was clipped (its point would not be the one it asked for). On a resume the study is
rebuilt from the journaled trials (the sampler's random state starts anew).
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import Trial, TrialState, create_trial
from pydantic import Field

from agent.policies.base import PolicyContext, PolicyError
from agent.policies.bo.score import bo_objective
from agent.policies.bo.space import TppSpace
from agent.session.records import REVERT_POLICY, TEMPLATE_POLICY, Proposal, VerdictStatus
from rtplan_common.models import FrozenModel

#: Default budget of trials (inner optimizations after the template plan).
DEFAULT_BUDGET = 100


class BoSettings(FrozenModel):
    """Settings of the baseline (recorded in the journal header).

    Attributes
    ----------
    budget : BO trials, each one inner optimization, after the template plan.
    seed : seed of the TPE sampler.
    n_startup_trials : random trials before TPE models the observations.
    multivariate : TPE over the joint distribution of the parameters (not each alone).
    warm_start : the template plan (iteration 0) is told to the study as its first trial.
    """

    budget: Annotated[int, Field(ge=1, le=1000)] = DEFAULT_BUDGET
    seed: Annotated[int, Field(ge=0)] = 0
    n_startup_trials: Annotated[int, Field(ge=1, le=1000)] = 10
    multivariate: bool = True
    warm_start: bool = True


def bo_session_settings(settings: BoSettings) -> dict[str, Any]:
    """The :class:`agent.session.records.SessionConfig` fields of a fair BO run: the budget
    as the iteration limit, no stall stop, no step bounds (range checks stay)."""
    never = settings.budget + 1
    return {
        "max_iterations": settings.budget,
        "patience": never,
        "stall_limit": never,
        "step_bounds": False,
    }


class BayesianPolicy:
    """Optuna TPE over the template's TPP ranges against the plan-quality score.

    Parameters
    ----------
    settings
        The settings; keyword arguments (``budget=``, ``seed=``, ...) override single fields.
    """

    name = "bo"

    def __init__(self, settings: BoSettings | None = None, **overrides: Any) -> None:
        base = settings or BoSettings()
        self.settings = BoSettings.model_validate({**base.model_dump(), **overrides})
        self.space: TppSpace | None = None
        self.study: optuna.Study | None = None
        self.pending: Trial | None = None
        self.distributions: dict[str, BaseDistribution] = {}

    @property
    def session_settings(self) -> dict[str, Any]:
        """See :func:`bo_session_settings`."""
        return bo_session_settings(self.settings)

    def propose(self, context: PolicyContext) -> Proposal:
        """Tell the study the last trial's score, ask for the next point."""
        study = self._study(context)
        self._tell(study, context)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = study.ask(self.distributions)
        self.pending = trial
        assert self.space is not None
        objectives = self.space.objectives(trial.params)
        done = [t for t in study.trials if t.state is TrialState.COMPLETE]
        best = max((t.value for t in done if t.value is not None), default=None)
        phase = "random startup" if len(done) < self.settings.n_startup_trials else "TPE"
        best_text = "none yet" if best is None else f"{best:.3f}"
        return Proposal(
            objectives=objectives,
            rationale=f"BO trial {trial.number} ({phase}, {len(self.space.dims)} TPPs); "
            f"best score so far {best_text}",
            policy=self.name,
        )

    # ----------------------------------------------------------------- internals
    def _study(self, context: PolicyContext) -> optuna.Study:
        if self.study is not None:
            return self.study
        ranges = context.template.tpp_ranges_for(context.structure_map, context.prescription_gy)
        # the template plan's objectives (iteration 0) span the space, also on a resume
        base = context.history[0].applied_objectives if context.history else context.objectives
        self.space = space = TppSpace.build(base, ranges)
        if not space.dims:
            raise PolicyError(
                f"template {context.template.name!r} gives no TPP ranges to search: the bo "
                "policy needs objectives with a range (site_templates/*.yaml 'range:')"
            )
        self.distributions = {d.name: FloatDistribution(d.lo, d.hi) for d in space.dims}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=self.settings.seed,
                n_startup_trials=self.settings.n_startup_trials,
                multivariate=self.settings.multivariate,
            )
        self.study = study = optuna.create_study(direction="maximize", sampler=sampler)
        for record in context.history or ():
            # the template plan (warm start) and, on a resume, the trials recorded before
            if record.proposal.policy == TEMPLATE_POLICY and not self.settings.warm_start:
                continue
            point = space.point(record.applied_objectives)
            if (
                point is None
                or record.evaluation is None
                or record.proposal.policy == REVERT_POLICY
            ):
                continue
            study.add_trial(
                create_trial(
                    params=point,
                    distributions=dict(self.distributions),
                    value=bo_objective(record.evaluation),
                )
            )
        return study

    def _tell(self, study: optuna.Study, context: PolicyContext) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        if context.rejection is not None and context.attempt > 0:
            study.tell(pending, state=TrialState.FAIL)  # never reached the TPS
            return
        last = context.history[-1] if context.history else None
        if last is not None and last.verdict.status is VerdictStatus.CLIPPED:
            raise PolicyError(
                "the bo policy's trial was clipped by the guardrails' step bounds, so its "
                "point is not the one it asked for: run it in a session with "
                "step_bounds=False (bo_session_settings() gives a fair BO run's settings)"
            )
        study.tell(pending, bo_objective(context.evaluation))
