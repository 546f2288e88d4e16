"""The bounded TPP search of the calibration script, on the toy fake TPS (no dose engine)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from fakes import FakeTpsSession

from agent.evaluation import Evaluation, evaluate_session
from agent.templates import load_template, match_structures
from esapi_bridge.dto import NormalTissueObjective, Objective, OptimizeRequest, objective_key

# bench/ is a directory of scripts, not an installed package: load the module from its file
_PATH = Path(__file__).resolve().parents[1] / "bench" / "tpp_search.py"
_SPEC = importlib.util.spec_from_file_location("bench_tpp_search", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
tpp = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_tpp_search"] = tpp
_SPEC.loader.exec_module(tpp)
fitness, search, target_reached, tpp_dims = (
    tpp.fitness,
    tpp.search,
    tpp.target_reached,
    tpp.tpp_dims,
)


def _runner() -> tuple[FakeTpsSession, object, dict[str, str], list[list[Objective]]]:
    template = load_template("prostate-basic")
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
    template = load_template("prostate-basic")
    ids = {s.id: s.id for s in template.structures}
    objectives = template.initial_objectives(ids)
    dims = tpp_dims(objectives, template.tpp_ranges_for(ids))
    # 2 PTV objectives x (dose, priority) + 4 OAR x (dose, volume, priority) + NTO x 3
    assert len(dims) == 2 * 2 + 4 * 3 + 3
    assert all(d.lo < d.hi for d in dims)


def test_search_stays_in_ranges_respects_budget_and_is_deterministic() -> None:
    template = load_template("prostate-basic")
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
    for objectives in seen:
        for obj in objectives:
            r = ranges[objective_key(obj)]
            for name, bounds in r.model_dump().items():
                if bounds is not None:
                    assert bounds[0] - 1e-9 <= getattr(obj, name) <= bounds[1] + 1e-9, (obj, name)
            if isinstance(obj, NormalTissueObjective):
                assert obj.end_dose_pct <= obj.start_dose_pct
    _, run_b, _, seen_b = _runner()
    again = search(run_b, template, smap, budget=12, seed=3)  # type: ignore[arg-type]
    assert seen_b == seen and again.best == result.best
