"""Episodes of the DRL planner as records (JSON lines): what knowledge cards are extracted from.

One :class:`EpisodeRecord` per episode (a case, random or template start, at most 20 steps):
the TPP values before each step, the action (TPP name, direction), the template score and the
fine score before and after, the goal margins before the step (the situation the action was
taken in), then the final values and scores and whether the maximum score was reached.

Where they are written: the trainer and the evaluation bench write
``bench/results/drl_episodes_<scenario>.jsonl`` (:func:`episodes_path`): training episodes
(``source="train"``, training seeds, the training grid) and evaluation episodes
(``source="eval"``, evaluation seeds, the full grid, the planning loop).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from agent.policies.drl.tpps import Direction, Tpp
from agent.session.records import REVERT_POLICY, IterationRecord
from rtplan_common.models import FrozenModel

#: Results folder of the benchmarks (episode files live there).
RESULTS_DIR = Path(__file__).resolve().parents[3] / "bench" / "results"
#: A score within this of the maximum counts as the maximum.
SUCCESS_TOLERANCE = 0.005


class EpisodeAction(FrozenModel):
    """One action: a TPP moved one step up or down."""

    tpp: str
    direction: Direction


class EpisodeStep(FrozenModel):
    """One step of an episode.

    Attributes
    ----------
    tpp_values_before : every TPP's value before the action, by TPP name.
    action : the TPP moved and the direction.
    score_before, score_after : the template score (agent.evaluation) before and after.
    fine_score_before, fine_score_after : the fine (unclipped) score before and after
        (:func:`agent.policies.drl.reward.fine_score`).
    reward : the reward of the step.
    goal_margins : margin of every clinical goal before the action, by goal id (positive:
        met with room; the evaluator's units: Gy or %).
    """

    tpp_values_before: dict[str, float]
    action: EpisodeAction
    score_before: float
    score_after: float
    fine_score_before: float
    fine_score_after: float
    reward: float
    goal_margins: dict[str, float] = Field(default_factory=dict)


class EpisodeRecord(FrozenModel):
    """One episode of the DRL planner (module docstring)."""

    scenario: str
    seed: Annotated[int, Field(ge=0)]
    template: str
    template_hash: str
    engine_version: str
    source: Literal["train", "eval"]
    grid: str = "full"
    initial_tpp_values: dict[str, float]
    initial_score: float
    steps: list[EpisodeStep] = Field(default_factory=list)
    final_tpp_values: dict[str, float]
    final_score: float
    max_score: float
    success: bool

    @property
    def improvement(self) -> float:
        """Final minus initial template score."""
        return self.final_score - self.initial_score


def is_success(score: float, max_score: float) -> bool:
    """Whether ``score`` counts as the maximum."""
    return score >= max_score - SUCCESS_TOLERANCE


def episodes_path(scenario: str, results_dir: Path | None = None) -> Path:
    """``bench/results/drl_episodes_<scenario>.jsonl`` (or under ``results_dir``)."""
    return (results_dir or RESULTS_DIR) / f"drl_episodes_{scenario}.jsonl"


def append_episodes(path: Path, records: Iterable[EpisodeRecord]) -> int:
    """Append ``records`` to the JSON-lines file ``path`` (created with its folder); returns
    how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("a", encoding="utf-8") as fh:
        for record in records:
            fh.write(record.model_dump_json() + "\n")
            n += 1
    return n


def iter_episodes(path: Path) -> Iterator[EpisodeRecord]:
    """The records of the JSON-lines file ``path``, in order.

    Raises
    ------
    ValueError
        For a line that is not an episode record (the message names the file and line).
    """
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield EpisodeRecord.model_validate(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not an episode record ({exc})") from exc


def read_episodes(path: Path, success_only: bool = False) -> list[EpisodeRecord]:
    """Every record of ``path`` (only the successful ones with ``success_only``)."""
    return [r for r in iter_episodes(path) if r.success or not success_only]


def episode_from_iterations(
    records: Sequence[IterationRecord],
    tpps: Sequence[Tpp],
    structure_map: Mapping[str, str],
    *,
    scenario: str,
    seed: int,
    template_hash: str,
    engine_version: str,
    grid: str = "full",
) -> EpisodeRecord:
    """The :class:`EpisodeRecord` (``source="eval"``) of a planning-loop session: iteration 0
    is the start, every later iteration that moved TPPs a step (the first moved TPP named as
    the action); the final values and score are those of the plan left in the TPS (after a
    final revert to the best iteration, which is not a step).

    Raises
    ------
    ValueError
        Without iteration 0 or an evaluation with a score.
    """
    from agent.policies.drl.reward import fine_score, step_reward
    from agent.policies.drl.tpps import read_values

    kept = [r for r in records if r.evaluation is not None and r.proposal.policy != REVERT_POLICY]
    if not kept or kept[0].iteration != 0 or kept[0].evaluation is None:
        raise ValueError("an episode needs iteration 0 (the template plan) with its evaluation")
    first = kept[0].evaluation
    if first.score is None or first.max_score is None:
        raise ValueError(f"template {first.template!r} has no score: no episode")
    steps: list[EpisodeStep] = []
    prev, prev_values = first, read_values(tpps, kept[0].applied_objectives, structure_map)
    for rec in kept[1:]:
        ev = rec.evaluation
        assert ev is not None and ev.score is not None and prev.score is not None
        values = read_values(tpps, rec.applied_objectives, structure_map)
        moved = [n for n in values if abs(values[n] - prev_values[n]) > 1e-9]
        if moved:
            name = moved[0]
            fb, fa = fine_score(prev), fine_score(ev)
            steps.append(
                EpisodeStep(
                    tpp_values_before=prev_values,
                    action=EpisodeAction(
                        tpp=name, direction="up" if values[name] > prev_values[name] else "down"
                    ),
                    score_before=prev.score,
                    score_after=ev.score,
                    fine_score_before=fb,
                    fine_score_after=fa,
                    reward=step_reward(fb, fa, prev.score, ev.score),
                    goal_margins={g.goal_id: g.margin for g in prev.goals},
                )
            )
        prev, prev_values = ev, values
    # the plan left in the TPS: a final revert to the best iteration counts
    end = records[-1] if records[-1].evaluation is not None else kept[-1]
    last = end.evaluation
    assert last is not None and last.score is not None
    return EpisodeRecord(
        scenario=scenario,
        seed=seed,
        template=first.template,
        template_hash=template_hash,
        engine_version=engine_version,
        source="eval",
        grid=grid,
        initial_tpp_values=read_values(tpps, kept[0].applied_objectives, structure_map),
        initial_score=first.score,
        steps=steps,
        final_tpp_values=read_values(tpps, end.applied_objectives, structure_map),
        final_score=last.score,
        max_score=first.max_score,
        success=is_success(last.score, first.max_score),
    )
