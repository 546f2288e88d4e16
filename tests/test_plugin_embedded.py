"""C# -> embedded CPython: a small Mono host (``Rtplan.PluginTestHost.exe``) plays Eclipse and
calls ``Script.Execute`` with a stub context; the plugin reads its config, checks the approved
agent code, copies the plan, starts CPython from the base interpreter's DLL and runs the rule
policy for a few iterations through the PlanBridge on the copy (mock_tps behind the stubs),
with a scripted clinician approving and giving feedback. A second launch in the same process
reuses the engine (initialized once per process, never shut down) and makes a second copy.

One run of the host (~12 s: Mono, CPython, numpy, the case, two launches) and one refused run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from esapi_helpers import ROOT, build_dir
from esapi_helpers.hosted import case_spec

from agent.eclipse_entry import AGENT_CODE_EVENT
from agent.session.journal import read_journal
from esapi_bridge.dto import MeanDoseObjective
from esapi_bridge.esapi import agent_code
from esapi_bridge.esapi.plugin_setup import plugin_config
from mock_tps.factory import open_mock_session
from mock_tps.session import MockTpsSession

HOST = "Rtplan.PluginTestHost.exe"
ANSWERS = ("approve", "feedback:spare the rectum more", "approve", "approve", "approve")


def _host_dir(tmp: Path, config: dict[str, Any] | None) -> Path:
    """The plugin as installed: its assemblies, the test host and the config next to them."""
    folder = tmp / "plugin"
    folder.mkdir()
    for item in build_dir().iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)
    if config is not None:
        (folder / "RtPlanAgent.config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def _run_host(folder: Path, spec: dict[str, Any]) -> dict[str, Any]:
    (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    run = subprocess.run(
        ["mono", HOST, "spec.json", "result.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result: dict[str, Any] = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    result["stdout"] = run.stdout + run.stderr
    return result


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("plugin-embedded")
    cache = tmp / "dij"
    mock = open_mock_session("prostate-basic", 2, cache_dir=cache)
    assert isinstance(mock, MockTpsSession)
    original = [
        MeanDoseObjective(structure_id="Rectum", dose_gy=30.0, priority=50),
        MeanDoseObjective(structure_id="Bladder", dose_gy=35.0, priority=40),
    ]
    spec = case_spec(
        mock, scenario="prostate-basic", seed=2, cache_dir=cache, tests_dir=ROOT / "tests",
        answers=ANSWERS, original=original, runs=2,
    )  # fmt: skip
    logs = tmp / "logs"
    logs.mkdir()
    config = plugin_config(
        site_template="prostate-basic", log_dir=logs, max_iterations=3,
        venv=Path(sys.prefix).resolve(),
    )  # fmt: skip
    return _run_host(_host_dir(tmp, config), spec), logs


def test_the_embedded_agent_plans_the_copy(embedded: tuple[dict[str, Any], Path]) -> None:
    result, logs = embedded
    first = result["runs"][0]
    assert first["outcome"] == "ok", first["message"]
    assert result["python_started_by_plugin"] is True  # the host has no Python of its own
    # the copies: unique Ids of at most 13 characters in the same course
    assert result["plan_ids"] == ["PROST-PLAN-1", "PROST-PLA_A1", "PROST-PLA_A2"]
    # the agent wrote the template's and the policy's objectives to the copy (in cGy)
    copy = result["copy_objectives"].split(";")
    assert len(copy) >= 5 and all(o.split(":")[0] in {"PTV", "Rectum", "Bladder"} for o in copy)
    assert any(o.startswith("PTV:Lower:") for o in copy)
    # the original's objectives are untouched
    assert result["original_after"] == result["original_before"]
    assert result["original_before"] == "Rectum:Upper::50;Bladder:Upper::40"
    # the window saw the progress, the reviews and the summary (with the copy's Id)
    assert first["progress"][0].startswith("working on a copy of the plan")
    assert [p.split(":")[0] for p in first["progress"][1:]] == [f"iteration {i}" for i in range(4)]
    assert first["reviewed"] == 4  # 3 iterations, one re-asked after the feedback
    (shown,) = first["shown"]
    assert shown.startswith("3 iterations, score ") and "copy PROST-PLA_A1" in shown
    assert len(list(logs.iterdir())) == 2


def test_a_second_launch_reuses_the_engine(embedded: tuple[dict[str, Any], Path]) -> None:
    result, _ = embedded
    second = result["runs"][1]
    assert second["outcome"] == "ok", second["message"]
    assert result["python_initialized"] is True
    # no answers: the clinician's stop at the first proposal, after the template plan
    assert second["reviewed"] == 1 and second["progress"][1].startswith("iteration 0:")
    (shown,) = second["shown"]
    assert "stopped by the clinician" in shown and "copy PROST-PLA_A2" in shown


def test_the_journal_holds_the_code_hash_and_no_ids(
    embedded: tuple[dict[str, Any], Path],
) -> None:
    _, logs = embedded
    session = min(logs.iterdir(), key=lambda p: (p / "journal.jsonl").stat().st_mtime)
    log = read_journal(session)
    assert log.header.config.tps == "esapi" and log.header.config.approve
    events = [e for e in log.events if e.kind == AGENT_CODE_EVENT]
    root, venv = agent_code.code_root(), agent_code.current_venv()
    assert [e.message for e in events] == [
        f"sha256 {agent_code.total_hash(agent_code.manifest(root, venv))}"
    ]
    assert [i.approval.value for i in log.iterations] == ["auto", "approve", "approve", "approve"]
    assert "spare the rectum more" in [i.feedback for i in log.iterations]
    text = "".join(p.read_text(encoding="utf-8") for p in session.iterdir() if p.is_file())
    for identifier in ("PROST-PLAN-1", "PROST-PLA_A1", "PSEUDO-1", 'C1"'):
        assert identifier not in text


def test_without_a_config_the_plugin_says_what_to_create(tmp_path: Path) -> None:
    mock = open_mock_session("prostate-basic", 2, cache_dir=tmp_path / "dij")
    assert isinstance(mock, MockTpsSession)
    spec = case_spec(
        mock, scenario="prostate-basic", seed=2, cache_dir=tmp_path / "dij",
        tests_dir=ROOT / "tests",
    )  # fmt: skip
    result = _run_host(_host_dir(tmp_path, None), spec)
    (run,) = result["runs"]
    assert run["outcome"] == "refused"
    assert "RtPlanAgent.config.json was not found next to the plugin" in run["message"]
    assert result["python_started_by_plugin"] is False
    assert result["plan_ids"] == ["PROST-PLAN-1"]  # nothing copied
