"""The bounded TPP search of the calibration script, on the toy fake TPS (no dose engine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.evaluation import Evaluation, evaluate_session
from agent.templates import match_structures
from esapi_bridge.dto import (
    NormalTissueObjective,
    Objective,
    OptimizeRequest,
    PointObjective,
    objective_key,
)

# bench/ is a directory of scripts, not an installed package: load the module from its file
_PATH = Path(__file__).resolve().parents[1] / "bench" / "tpp_search.py"
_SPEC = importlib.util.spec_from_file_location("bench_tpp_search", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
tpp = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_tpp_search"] = tpp
_SPEC.loader.exec_module(tpp)
fitness, search, target_reached, tpp_dims, snap = (
    tpp.fitness,
    tpp.search,
    tpp.target_reached,
    tpp.tpp_dims,
    tpp._snap,
)


def _runner() -> tuple[FakeTpsSession, object, dict[str, str], list[list[Objective]]]:
    template = frozen_prostate_template()
    session = FakeTpsSession()
    smap = match_structures(template, [s.structure_id for s in session.structures()])
    seen: list[list[Objective]] = []

    def evaluate_objectives(objectives: list[Objective]) -> Evaluation:
        seen.append(list(objectives))
        session.set_objectives(objectives)
        session.optimize(OptimizeRequest())
        session.calculate_dose()
        rule = template.normalization_rule(smap)
        assert rule is not None
        session.normalize(rule)
        return evaluate_session(session, template, smap)

    return session, evaluate_objectives, smap, seen


def test_dims_cover_every_ranged_tpp() -> None:
    template = frozen_prostate_template()
    ids = {s.id: s.id for s in template.structures}
    objectives = template.initial_objectives(ids)
    dims = tpp_dims(objectives, template.tpp_ranges_for(ids))
    # 2 PTV objectives x (dose, priority) + 4 OAR x (dose, volume, priority) + NTO x 3
    assert len(dims) == 2 * 2 + 4 * 3 + 3
    assert all(d.lo < d.hi for d in dims)


def test_search_stays_in_ranges_respects_budget_and_is_deterministic() -> None:
    template = frozen_prostate_template()
    _, run_a, smap, seen = _runner()
    result = search(run_a, template, smap, budget=12, seed=3)  # type: ignore[arg-type]
    # the toy TPS starts at about 5.2/9 (rectum over its limits): the search must improve it
    assert 1 <= result.evaluations <= 12
    assert result.initial.score is not None and result.initial.score < 6.0
    assert len(seen) == result.evaluations + 1  # the initial plan plus one per candidate
    assert fitness(result.best) >= fitness(result.initial)
    assert result.best.score is not None and result.best.score > result.initial.score
    if result.evaluations < 12:
        assert target_reached(result.best)
    ranges = template.tpp_ranges_for(smap)
    # the search keeps the objectives' order; keys move with the volumes, so go by position
    initial_ranges = [ranges[objective_key(o)] for o in seen[0]]
    for objectives in seen:
        for obj, r in zip(objectives, initial_ranges, strict=True):
            for name, bounds in r.model_dump().items():
                if bounds is not None:
                    assert bounds[0] - 1e-9 <= getattr(obj, name) <= bounds[1] + 1e-9, (obj, name)
            if isinstance(obj, NormalTissueObjective):
                assert obj.end_dose_pct <= obj.start_dose_pct
    _, run_b, _, seen_b = _runner()
    again = search(run_b, template, smap, budget=12, seed=3)  # type: ignore[arg-type]
    assert seen_b == seen and again.best == result.best


def test_snap_puts_an_organ_objective_on_a_deficient_volume_limit() -> None:
    template = frozen_prostate_template()
    _, run, smap, _ = _runner()
    objectives = template.initial_objectives(smap)
    initial = run(objectives)
    # the toy TPS's rectum misses its four V limits; nothing else is deficient
    deficient = {c.plan_structure_id for c in initial.criteria if c.points < c.max_points - 1e-9}
    assert deficient == {"Rectum"}
    dims = tpp_dims(objectives, template.tpp_ranges_for(smap))
    rx = 79.2
    levels_gy = (0.947 * rx, 0.8838 * rx, 0.8207 * rx, 0.7576 * rx)
    for seed in range(20):
        moves = snap(np.random.default_rng(seed), dims, objectives, initial, {"PTV"})
        assert moves, "a deficient rectum limit with a movable objective must give a move"
        moved = {dims[k].index for k in moves}
        assert len(moved) == 1  # one objective moves: an organ's snap leaves the rest alone
        (i,) = moved
        obj = objectives[i]
        assert isinstance(obj, PointObjective) and obj.structure_id == "Rectum"
        by_field = {dims[k].field: v for k, v in moves.items()}
        # the dose goes to 0.95-1.0 x one of the criteria's dose levels, clipped to the range
        lo, hi = template.tpp_ranges_for(smap)[objective_key(obj)].dose_gy  # type: ignore[misc]
        assert lo - 1e-9 <= by_field["dose_gy"] <= hi + 1e-9
        assert any(
            0.95 * level - 1e-6 <= by_field["dose_gy"] <= level + 1e-6 for level in levels_gy
        ) or by_field["dose_gy"] in (lo, hi)
        assert by_field["priority"] > obj.priority
