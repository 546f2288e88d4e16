"""A full rule-policy session through the C# layer (EsapiSession -> pythonnet -> PlanBridge ->
ESAPI stubs in a cGy and in a Gy system -> mock_tps) against the same session run directly on
mock_tps.

prostate-basic seed 2 with the frozen template takes three iterations after iteration 0 on the
simulated TPS. Both runs must take the same steps and end with the same metrics within one DVH
bin (0.01 Gy; for a volume goal, the change of that volume over one bin at its dose level).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from esapi_helpers import MockBackend, stub_assemblies, stub_plan_for
from template_fixtures import frozen_prostate_template

from agent.policies import RulePolicy
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import SessionConfig, SessionSummary
from esapi_bridge import DvhCurve, TpsSession, objective_key
from esapi_bridge.esapi import EsapiSession
from mock_tps.factory import open_mock_session
from mock_tps.session import MockTpsSession

SCENARIO, SEED = "prostate-basic", 2
BIN_GY = 0.01


@dataclass
class Run:
    summary: SessionSummary
    folder: Path
    session: TpsSession


@dataclass
class Pair:
    direct: Run
    bridged: Run
    backend: MockBackend
    stub: Any
    direct_mock: MockTpsSession
    dose_unit: str


def _run(session: TpsSession, folder: Path) -> Run:
    config = SessionConfig(template=SCENARIO, scenario=SCENARIO, seed=SEED, max_iterations=8)
    loop = PlanningLoop(
        session, frozen_prostate_template(), RulePolicy(), config, folder, save_snapshots=False
    )
    return Run(loop.run(), folder, session)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("esapi-session")


@pytest.fixture(scope="module")
def direct(tmp: Path) -> tuple[Run, MockTpsSession]:
    mock = open_mock_session(SCENARIO, SEED, cache_dir=tmp / "dij")
    assert isinstance(mock, MockTpsSession)
    return _run(mock, tmp / "direct"), mock


@pytest.fixture(scope="module", params=["cGy", "Gy"])
def pair(request: pytest.FixtureRequest, tmp: Path, direct: tuple[Run, MockTpsSession]) -> Pair:
    behind = open_mock_session(SCENARIO, SEED, cache_dir=tmp / "dij")
    assert isinstance(behind, MockTpsSession)
    stub, backend = stub_plan_for(behind, dose_unit=request.param)
    bridge = stub_assemblies().new_bridge(stub.Patient, stub.Plan, "IMRT")
    session = EsapiSession(bridge, dvh_bin_width_gy=BIN_GY)
    bridged = _run(session, tmp / f"bridged-{request.param}")
    return Pair(direct[0], bridged, backend, stub, direct[1], request.param)


def test_both_sessions_take_the_same_steps(pair: Pair) -> None:
    d, b = pair.direct.summary, pair.bridged.summary
    assert d.iterations >= 2, "the comparison needs a session of several iterations"
    assert (b.iterations, b.stop_reason, b.inner_optimizations) == (
        d.iterations,
        d.stop_reason,
        d.inner_optimizations,
    )
    assert d.final_evaluation is not None and b.final_evaluation is not None
    assert b.final_evaluation.score == pytest.approx(d.final_evaluation.score, abs=1e-9)
    direct_log, bridged_log = read_journal(pair.direct.folder), read_journal(pair.bridged.folder)
    assert len(bridged_log.iterations) == len(direct_log.iterations)
    for one, other in zip(direct_log.iterations, bridged_log.iterations, strict=True):
        assert [o.model_dump() for o in other.applied_objectives] == [
            pytest.approx(o.model_dump(), abs=1e-9) for o in one.applied_objectives
        ]


def _dose_level_gy(metric: str, rx_gy: float) -> float:
    """The dose of a volume metric: ``V75Gy``, ``V94.7%Rx``."""
    m = re.fullmatch(r"V([\d.]+)(Gy|%Rx)", metric)
    assert m is not None, metric
    value = float(m.group(1))
    return value if m.group(2) == "Gy" else value / 100.0 * rx_gy


def _one_bin_of_volume(curve: DvhCurve, dose_gy: float) -> float:
    """How much the volume (%) changes over one DVH bin either side of ``dose_gy``."""
    here = curve.volume_pct_at_dose(dose_gy)
    return max(
        abs(curve.volume_pct_at_dose(dose_gy - BIN_GY) - here),
        abs(curve.volume_pct_at_dose(dose_gy + BIN_GY) - here),
    )


def test_final_metrics_agree_within_one_dvh_bin(pair: Pair) -> None:
    d, b = pair.direct.summary.final_evaluation, pair.bridged.summary.final_evaluation
    assert d is not None and b is not None
    compared = 0
    for one, other in zip(d.goals, b.goals, strict=True):
        assert (one.goal_id, one.metric, one.status) == (other.goal_id, other.metric, other.status)
        if str(one.unit) == "Gy":
            tolerance = BIN_GY
        else:
            curve = pair.direct_mock.get_dvh(one.plan_structure_id)
            tolerance = _one_bin_of_volume(curve, _dose_level_gy(one.metric, d.prescription_gy))
        assert abs(other.value - one.value) <= tolerance + 1e-9, (
            one.goal_id,
            one.value,
            other.value,
        )
        compared += 1
    assert compared == len(d.goals) >= 10


def test_the_plan_went_through_the_csharp_layer(pair: Pair) -> None:
    summary = pair.bridged.summary
    # every optimization and dose calculation reached the stubs' callbacks
    assert len(pair.backend.requests) == summary.inner_optimizations
    assert pair.backend.dose_calls == summary.inner_optimizations
    assert all(
        r["option"] == "RestartOptimization" and not r["vmat"] for r in pair.backend.requests
    )
    # the plan in "Eclipse" holds the last objectives in its unit and a normalization value
    plan = pair.stub.Plan
    doses = [o.Dose for o in plan.OptimizationSetup.Objectives]
    assert doses and all(str(dose.Unit) == pair.dose_unit for dose in doses)
    assert not math.isnan(plan.PlanNormalizationValue) and plan.IsDoseValid
    # (read back in ESAPI's order: the NTO, a parameter, after the objectives)
    final = sorted(
        read_journal(pair.bridged.folder).iterations[-1].applied_objectives, key=objective_key
    )
    got = [o.model_dump() for o in sorted(pair.bridged.session.get_objectives(), key=objective_key)]
    assert got == [pytest.approx(o.model_dump(), abs=1e-9) for o in final]
