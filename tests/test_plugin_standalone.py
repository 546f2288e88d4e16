"""Standalone research mode from Python: ``agent.eclipse_entry.run_standalone`` starts the C#
``StandaloneHost`` (its STA thread owns the process's one ESAPI ``Application``, made with
``CustomScriptExecutable.CreateApplication``), opens the patient, finds the plan and runs a
rule-policy session whose every bridge call is marshalled onto the STA thread through the job
queue, with mock_tps behind the stubs. ESAPI allows one Application per process, and so do the
stubs: this module runs the one session of this process.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from esapi_helpers import TESTING_ASSEMBLY, build_dir, stub_namespace, stub_plan_for

from agent.eclipse_entry import AGENT_CODE_EVENT, run_standalone
from agent.session.journal import read_journal
from esapi_bridge.esapi.runtime import current_managed_thread_id
from mock_tps.factory import open_mock_session
from mock_tps.session import MockTpsSession


def test_a_session_runs_through_the_standalone_host(tmp_path: Path) -> None:
    mock = open_mock_session("prostate-basic", 2, cache_dir=tmp_path / "dij")
    assert isinstance(mock, MockTpsSession)
    stub, backend = stub_plan_for(mock, dose_unit="Gy")
    ns = stub_namespace()
    ns.StubPlanLocator.Register(stub)
    callers: list[int] = []
    optimize = backend.optimize

    def on_sta_thread(request: str) -> str:
        callers.append(current_managed_thread_id())
        return optimize(request)

    backend.optimize = on_sta_thread  # type: ignore[method-assign]
    backend.attach(stub)
    out = tmp_path / "session"
    summary = run_standalone(
        build_dir(),
        patient_id="PSEUDO-1",
        course_id="C1",
        plan_id="PLAN-1",
        site_template="prostate-basic",
        out_dir=out,
        max_iterations=2,
        locator=ns.StubPlanLocator(),
        extra_assemblies=[TESTING_ASSEMBLY],
    )
    assert summary.iterations == 2 and summary.final_evaluation is not None
    assert len(backend.requests) == summary.inner_optimizations >= 3
    # every ESAPI call ran on the host's STA thread, not on this one
    assert callers and set(callers) != {current_managed_thread_id()} and len(set(callers)) == 1
    # the plan itself holds the session's objectives (non-clinical mode: no copy)
    assert list(ns.ContextFactory.PlanIds(stub)) == ["PLAN-1"]
    assert len(list(stub.Plan.OptimizationSetup.Objectives)) >= 5
    # the patient was saved and closed, the Application disposed: a second one is refused
    assert not stub.Patient.CanModifyData() and ns.ContextFactory.ApplicationCreated
    from Rtplan.Bridge import StandaloneHost

    with pytest.raises(Exception, match="one per process"):
        StandaloneHost.Start("again")
    # the journal: the code hash, the keyed pseudonym, no ids
    log = read_journal(out)
    assert [e.kind for e in log.events if e.kind == AGENT_CODE_EVENT] == [AGENT_CODE_EVENT]
    text = "".join(p.read_text(encoding="utf-8") for p in out.iterdir() if p.is_file())
    assert "PLAN-1" not in text and "PSEUDO-1" not in text
    assert log.header.case.plan_pseudonym and log.header.config.tps == "esapi"


def test_the_plan_locator_is_a_loaded_class_implementing_iplanlocator() -> None:
    from esapi_helpers import stub_assemblies

    from esapi_bridge.errors import TpsUnavailable

    assemblies = stub_assemblies()
    locator = assemblies.plan_locator("Rtplan.EsapiStubs.Testing.StubPlanLocator")
    assert "StubPlanLocator" in str(locator)
    with pytest.raises(TpsUnavailable, match="no loaded assembly defines this type"):
        assemblies.plan_locator("Site.NoSuchLocator")
    with pytest.raises(TpsUnavailable, match=r"does not implement Rtplan\.Bridge\.IPlanLocator"):
        assemblies.plan_locator("System.String")
