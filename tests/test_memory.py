"""Memory: objective diffs, goal deltas, window length, rebuild from records."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.evaluation import evaluate_session
from agent.policies import RulePolicy
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.memory import Memory, diff_objectives, make_step
from agent.session.records import SessionConfig
from agent.templates import match_structures
from esapi_bridge.dto import (
    ObjectiveOperator,
    OptimizeRequest,
    PointObjective,
    objective_key,
)

TEMPLATE = frozen_prostate_template()


def _point(sid: str, dose: float, vol: float, prio: float) -> PointObjective:
    return PointObjective(
        structure_id=sid,
        operator=ObjectiveOperator.UPPER,
        dose_gy=dose,
        volume_pct=vol,
        priority=prio,
    )


def test_diff_objectives_reports_fields_added_and_removed() -> None:
    before = [_point("Rectum", 70, 30, 40), _point("Bladder", 70, 30, 40)]
    after = [_point("Rectum", 66, 30, 60), _point("Femur_Head_L", 40, 5, 20)]
    changes = {(c.key, c.field): c for c in diff_objectives(before, after)}
    assert changes[("Rectum:point:upper:30", "dose_gy")].after == 66
    assert changes[("Rectum:point:upper:30", "priority")].before == 40
    assert ("Femur_Head_L:point:upper:5", "added") in changes
    assert ("Bladder:point:upper:30", "removed") in changes
    assert len(changes) == 4


def test_step_links_changes_to_goal_deltas() -> None:
    fake = FakeTpsSession()
    smap = match_structures(TEMPLATE, fake.structures())
    objs = TEMPLATE.initial_objectives(smap)
    fake.set_objectives(objs)
    fake.optimize(OptimizeRequest())
    before = evaluate_session(fake, TEMPLATE, smap)
    tighter = [
        o.model_copy(update={"dose_gy": 60.0, "priority": 120.0})
        if objective_key(o) == "Rectum:point:upper:30"
        else o
        for o in objs
    ]
    fake.set_objectives(tighter)
    fake.optimize(OptimizeRequest())
    after = evaluate_session(fake, TEMPLATE, smap)
    step = make_step(1, objs, tighter, before, after)
    assert {c.field for c in step.changes} == {"dose_gy", "priority"}
    rectum = next(d for d in step.goal_deltas if d.goal_id == "rectum_v75")
    # tightening the rectum objective lowers rectum V75 in the fake's ramp model
    assert rectum.margin_delta is not None and rectum.margin_delta > 0
    assert step.score_delta is not None and step.score_delta > 0
    assert "Rectum:point:upper:30 dose_gy 71.28 -> 60" in step.to_text()


def test_memory_keeps_the_last_l_steps() -> None:
    memory = Memory(length=2)
    from agent.session.memory import MemoryStep

    for i in range(1, 5):
        memory.append(MemoryStep(iteration=i))
    assert [s.iteration for s in memory.steps] == [3, 4]
    assert memory.last is not None and memory.last.iteration == 4
    copy = memory.copy()
    memory.append(MemoryStep(iteration=5))
    assert [s.iteration for s in copy.steps] == [3, 4]
    with pytest.raises(ValueError, match="length"):
        Memory(0)


def test_memory_rebuilt_from_records_matches_the_session(tmp_path: Path) -> None:
    loop = PlanningLoop(
        FakeTpsSession(), TEMPLATE, RulePolicy(), SessionConfig(template="prostate-basic"),
        tmp_path / "s", save_snapshots=False,
    )  # fmt: skip
    loop.run()
    log = read_journal(tmp_path / "s")
    rebuilt = Memory.from_records(log.iterations, length=5)
    assert [s.to_text() for s in rebuilt.steps] == [s.to_text() for s in loop.memory.steps]
    assert len(rebuilt) == len(log.iterations) - 1
    history = rebuilt.changes_of("Rectum:point:upper:30")
    assert history and history[0][1].field in ("dose_gy", "priority")
    assert rebuilt.goal_history("rectum_v75")
