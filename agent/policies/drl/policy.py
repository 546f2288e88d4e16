"""``--policy drl``: the trained DRL planner in the planning loop.

At the first proposal the policy finds the trained policy of the session's template (the
shipped ``site_templates/drl/<template>.zip`` unless a path is given), checks its sha256 and
template hash against its provenance (:func:`agent.policies.drl.files.verified_zip`) and only
then loads it. Each proposal builds the same observation as the training environment
(:func:`agent.policies.drl.observation.observe` on the context's DVHs, evaluation and
objectives), ranks the actions by the network's Q-values and takes the best one that moves a
TPP (a TPP at its range bound does not move; when re-asked after a rejection the next ones).
It is done when the plan has the maximum score or no action moves anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.policies.base import PolicyContext, PolicyError
from agent.policies.drl.episodes import is_success
from agent.policies.drl.files import (
    PolicyFileError,
    PolicyProvenance,
    shipped_policy,
    verified_zip,
)
from agent.policies.drl.observation import ObservationSpec, observation_spec, observe
from agent.policies.drl.tpps import Tpp, apply_action, decode_action, read_values, tpps_of
from agent.session.identity import template_hash
from agent.session.records import Proposal


def _key(values: dict[str, float]) -> tuple[float, ...]:
    return tuple(round(v, 6) for _, v in sorted(values.items()))


@dataclass(frozen=True)
class _Loaded:
    model: Any
    provenance: PolicyProvenance
    tpps: tuple[Tpp, ...]
    spec: ObservationSpec
    template: str


class DrlPolicy:
    """The DRL planner (module docstring).

    Parameters
    ----------
    policy_path
        A trained policy zip (its provenance ``.json`` beside it); default: the shipped
        policy of the session's template.
    """

    name = "drl"

    def __init__(self, policy_path: str | Path | None = None) -> None:
        self.policy_path = None if policy_path is None else Path(policy_path)
        self._loaded: _Loaded | None = None

    def _load(self, context: PolicyContext) -> _Loaded:
        template = context.template
        if self._loaded is not None and self._loaded.template == template.name:
            return self._loaded
        path = self.policy_path or shipped_policy(template.name)
        try:
            prov = verified_zip(path, template_hash=template_hash(template))
        except PolicyFileError as exc:
            raise PolicyError(str(exc)) from exc
        tpps = tuple(tpps_of(template, context.prescription_gy))
        if [t.name for t in tpps] != prov.tpps:
            raise PolicyError(
                f"{path} was trained on the TPPs {prov.tpps}, template {template.name!r} has "
                f"{[t.name for t in tpps]}: retrain it (rtplan drl train)"
            )
        spec = observation_spec(template, tpps, context.prescription_gy)
        if spec.size != prov.observation_size:
            raise PolicyError(
                f"{path} expects observations of {prov.observation_size} values, the template "
                f"gives {spec.size}: retrain it (rtplan drl train)"
            )
        import torch
        from stable_baselines3 import DQN

        torch.set_num_threads(1)  # a small network: one thread, the TPS needs the rest
        model = DQN.load(path, device="cpu")
        self._loaded = _Loaded(model, prov, tpps, spec, template.name)
        return self._loaded

    def q_values(self, context: PolicyContext) -> np.ndarray:
        """The network's Q-value of every action in the context's state."""
        import torch

        loaded = self._load(context)
        values = read_values(loaded.tpps, context.objectives, context.structure_map)
        obs = observe(loaded.spec, context.dvhs, context.structure_map, context.evaluation, values)
        with torch.no_grad():
            q = loaded.model.q_net(torch.as_tensor(obs[None, :]))
        return np.asarray(q.numpy()[0], dtype=np.float64)

    def propose(self, context: PolicyContext) -> Proposal:
        """One TPP one step up or down: the best-valued action that moves something."""
        loaded = self._load(context)
        ev = context.evaluation
        sha = loaded.provenance.sha256[:12]
        if ev.score is not None and ev.max_score is not None and is_success(ev.score, ev.max_score):
            return self._done(context, f"the plan has the maximum score {ev.score:.2f}")
        q = self.q_values(context)
        smap = context.structure_map
        visited = {
            _key(read_values(loaded.tpps, r.applied_objectives, smap)) for r in context.history
        }
        skip = context.attempt  # re-asked after a rejection: the next-best actions
        for action in (int(a) for a in np.argsort(-q, kind="stable")):
            objectives, changed = apply_action(loaded.tpps, context.objectives, smap, action)
            if not changed or _key(read_values(loaded.tpps, objectives, smap)) in visited:
                continue
            if skip > 0:
                skip -= 1
                continue
            tpp, direction = decode_action(loaded.tpps, action)
            before = read_values([tpp], context.objectives, context.structure_map)[tpp.name]
            after = read_values([tpp], objectives, context.structure_map)[tpp.name]
            return Proposal(
                objectives=objectives,
                rationale=(
                    f"DRL policy {sha}: {tpp.name} {direction} {before:g} -> {after:g} "
                    f"(Q {q[action]:.3f}, best of {len(q)} actions)"
                ),
                policy=self.name,
            )
        return self._done(context, "no action moves a TPP to values not planned yet")

    def _done(self, context: PolicyContext, why: str) -> Proposal:
        return Proposal(
            objectives=list(context.objectives), rationale=why, done=True, policy=self.name
        )
