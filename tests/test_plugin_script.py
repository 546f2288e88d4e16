"""The plugin's checks, in this process through pythonnet (Mono): every plan status but
UnApproved refused before anything changes, the copy's Id, each bad config entry's message,
the approved-code check naming what changed, and the clinician's window scripted (approve,
edit, stop, feedback, cancel) behind the agent's approver."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from esapi_helpers import ROOT, build_dir, plugin_assemblies, stub_namespace

from agent.eclipse_entry import WindowApprover, WindowProgress
from agent.session.negotiation import SessionAborted
from agent.session.records import (
    ApprovalAction,
    GuardVerdict,
    IterationRecord,
    Proposal,
    StopReason,
    VerdictStatus,
)
from esapi_bridge.dto import MeanDoseObjective, ObjectiveOperator, PointObjective
from esapi_bridge.esapi import agent_code
from esapi_bridge.esapi.plugin_setup import base_python_dll, plugin_config

LOCKED = [
    "Rejected",
    "Reviewed",
    "PlanningApproved",
    "TreatmentApproved",
    "CompletedEarly",
    "Completed",
    "Retired",
    "UnPlannedTreatment",
    "ExternallyApproved",
    "Unknown",
]


def _ns() -> tuple[Any, Any, Any]:
    """The stubs' test namespace, ``Rtplan.Bridge`` and ``Rtplan.Plugin``."""
    plugin_assemblies()
    from Rtplan import Bridge, Plugin

    return stub_namespace(), Bridge, Plugin


def _stub(plan_id: str = "PROSTATE-IMRT", status: str = "UnApproved") -> Any:
    ns = stub_namespace()
    p = ns.StubFactory.CreatePlan(plan_id, False, "Gy", 2.0, 30, 5)
    ns.StubFactory.AddStructure(p, "PTV", "PTV", 100.0, False)
    ns.StubFactory.SetApprovalStatus(p, status)
    return p


@pytest.mark.parametrize("status", LOCKED)
def test_every_status_but_unapproved_is_refused_naming_it(status: str) -> None:
    ns, _, plugin = _ns()
    p = _stub(status=status)
    window = plugin.ScriptedClinicianWindow([])
    from System import Func

    plugin.ClinicianWindows.Factory = Func[plugin.IClinicianWindow](lambda: window)
    try:
        from VMS.TPS import Script

        with pytest.raises(Exception) as caught:
            Script().Execute(ns.ContextFactory.CreateContext(p, "physicist"))
    finally:
        plugin.ClinicianWindows.Factory = None
    assert type(caught.value).__name__ == "PluginRefusedException"
    message = str(caught.value)
    assert f"the plan is {status}" in message and "UnApproved" in message
    assert list(window.Shown) == [f"RtPlanAgent did not run: {caught.value.Message}"]
    # nothing was begun or copied
    assert not p.Patient.CanModifyData()
    assert list(ns.ContextFactory.PlanIds(p)) == ["PROSTATE-IMRT"]


def test_the_copy_gets_a_unique_id_of_at_most_13_characters() -> None:
    ns, bridge, _ = _ns()
    p = _stub("PROSTATE-IMRT")
    first = bridge.WorkingCopy.Prepare(ns.ContextFactory.CreateContext(p, "u"))
    second = bridge.WorkingCopy.Prepare(ns.ContextFactory.CreateContext(p, "u"))
    assert (first.CopyId, second.CopyId) == ("PROSTATE-_A1", "PROSTATE-_A2")
    assert all(len(i) <= 13 for i in ns.ContextFactory.PlanIds(p))
    assert len(set(ns.ContextFactory.PlanIds(p))) == 3 and p.Patient.CanModifyData()
    # the copy is the one that is written; the original keeps its (empty) objectives
    bridge_over_copy = first.NewBridge("IMRT")
    answer = json.loads(str(bridge_over_copy.PlanInfo()))
    assert answer["value"]["plan_id"] == "PROSTATE-_A1"
    assert list(p.Plan.OptimizationSetup.Objectives) == []


def test_a_context_without_an_external_plan_is_refused() -> None:
    ns, bridge, _ = _ns()
    with pytest.raises(Exception, match="open an external beam plan"):
        bridge.WorkingCopy.Check(ns.ContextFactory.CreateContextWithoutPlan(_stub()))


# ------------------------------------------------------------------ config
def _good(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "logs").mkdir(exist_ok=True)
    return plugin_config(
        site_template="prostate-basic",
        log_dir=tmp_path / "logs",
        venv=Path(sys.prefix).resolve(),
    )


def _problems(tmp_path: Path, data: Any, *, raw: str | None = None) -> list[str]:
    _, _, plugin = _ns()
    path = tmp_path / "RtPlanAgent.config.json"
    path.write_text(raw if raw is not None else json.dumps(data), encoding="utf-8")
    try:
        plugin.PluginConfig.Load(str(path), ["rule"], [])
    except Exception as exc:
        assert type(exc).__name__ == "PluginConfigException"
        return [str(p) for p in exc.Problems]
    return []


def test_a_good_config_loads_with_the_base_interpreters_dll(tmp_path: Path) -> None:
    _, _, plugin = _ns()
    data = _good(tmp_path)
    assert _problems(tmp_path, data) == []
    config = plugin.PluginConfig.Load(str(tmp_path / "RtPlanAgent.config.json"), ["rule"], [])
    assert config.PythonDll == str(base_python_dll()) and Path(config.PythonDll).is_file()
    assert Path(config.BasePrefix) == Path(sys.base_prefix).resolve()
    assert (config.MaxIterations, config.Approve, config.Policy) == (10, "each", "rule")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("python_dll", None, "python_dll: missing: set it to the absolute path of the Python DLL"),
        ("python_dll", "libpython3.11.so", "is not an absolute path"),
        ("python_dll", "/nowhere/libpython3.11.so", "does not exist"),
        ("python_dll", "/bin/sh", "is not the base interpreter's"),
        ("venv", None, "venv: missing: set it to the absolute path of the agent's virtual"),
        ("venv", "/tmp", "is not a virtual environment (no pyvenv.cfg)"),
        ("site_template", None, "site_template: missing: set it to a bundled site template"),
        ("site_template", "Prostate Basic!", "is neither a template name nor an absolute .yaml"),
        ("site_template", "/nowhere/t.yaml", "site_template: /nowhere/t.yaml does not exist"),
        ("policy", None, "policy: missing: set it to one of the policies this plugin build"),
        (
            "policy",
            "llm",
            'policy: "llm" is not one of the policies this plugin build allows (rule)',
        ),
        ("provider", "anthropic", "provider: only the llm policy takes a provider"),
        ("approve", "yes", 'approve: "yes" is not one of "each"'),
        ("approve", None, "approve: missing"),
        ("max_iterations", None, "max_iterations: missing: set it to a whole number"),
        ("max_iterations", 0, "max_iterations: 0 is not a whole number of iterations from 1 to 50"),
        ("max_iterations", 2.5, "max_iterations: 2.5 is not a whole number"),
        ("max_iterations", "5", 'max_iterations: "5" is not a whole number'),
        ("log_dir", None, "log_dir: missing: set it to the absolute path of an existing folder"),
        ("log_dir", "logs", "log_dir: logs is not an existing absolute folder"),
        ("colour", "blue", "colour: unknown entry: remove it"),
    ],
)
def test_each_bad_entry_gets_its_message(
    tmp_path: Path, key: str, value: Any, expected: str
) -> None:
    data = _good(tmp_path)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    problems = _problems(tmp_path, data)
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_missing_or_broken_file_says_what_to_do(tmp_path: Path) -> None:
    _, _, plugin = _ns()
    with pytest.raises(Exception) as caught:
        plugin.PluginConfig.Load(str(tmp_path / "RtPlanAgent.config.json"), ["rule"], [])
    assert "was not found next to the plugin" in str(caught.value)
    assert "plugin_setup config" in str(caught.value)
    assert "not valid JSON" in _problems(tmp_path, None, raw='{"venv": ')[0]
    assert "one JSON object" in _problems(tmp_path, None, raw="[1, 2]")[0]
    # several problems: one line each
    assert len(_problems(tmp_path, {"approve": "never"})) == 7


# -------------------------------------------------------------- agent code
def _copy_code(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    for package in agent_code.PACKAGES:
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def test_the_csharp_and_python_hashes_agree(tmp_path: Path) -> None:
    _, _, plugin = _ns()
    root = _copy_code(tmp_path)
    venv = Path(sys.prefix).resolve()
    python_side = agent_code.manifest(root, venv)
    csharp_side = plugin.AgentCode.Compute(str(root), str(venv))
    assert {str(k): str(csharp_side[k]) for k in csharp_side.Keys} == python_side
    assert str(plugin.AgentCode.Total(csharp_side)) == agent_code.total_hash(python_side)
    keys = list(python_side)
    assert "code/agent/session/loop.py" in keys and "code/agent/eclipse_entry.py" in keys
    assert any(k.startswith("venv/") and k.endswith(".dist-info/RECORD") for k in keys)
    assert any("numpy-" in k for k in keys) and not any("__pycache__" in k for k in keys)


def test_a_changed_agent_file_is_refused_with_its_name(tmp_path: Path) -> None:
    _, _, plugin = _ns()
    root = _copy_code(tmp_path)
    venv = str(Path(sys.prefix).resolve())
    approved = plugin.AgentCode.Compute(str(root), venv)
    assert plugin.AgentCode.Verify(approved, str(root), venv) == plugin.AgentCode.Total(approved)
    loop = root / "agent" / "session" / "loop.py"
    loop.write_text(loop.read_text(encoding="utf-8") + "\n# patched\n", encoding="utf-8")
    (root / "agent" / "extra.py").write_text("x = 1\n", encoding="utf-8")
    (root / "site_templates" / "liver.yaml").unlink()
    with pytest.raises(Exception) as caught:
        plugin.AgentCode.Verify(approved, str(root), venv)
    assert type(caught.value).__name__ == "AgentCodeChangedException"
    assert list(caught.value.Differences) == [
        "changed: code/agent/session/loop.py",
        "removed: code/site_templates/liver.yaml",
        "added: code/agent/extra.py",
    ]
    assert "build and approve a new plugin version" in str(caught.value)


def test_the_build_compiles_the_manifest_and_the_allowed_choices() -> None:
    _, _, plugin = _ns()
    build_dir()
    manifest = plugin.BuildManifest
    assert list(manifest.Policies) == ["rule"] and list(manifest.Providers) == []
    assert Path(str(manifest.CodeRoot)) == ROOT
    built = plugin.AgentCode.Built()
    assert built.Count == len(manifest.Files) // 2 > 100
    assert str(manifest.Total) == str(plugin.AgentCode.Total(built))


# ------------------------------------------------------ clinician's window
def _proposal() -> tuple[Proposal, list[Any], GuardVerdict]:
    applied = [MeanDoseObjective(structure_id="OAR", dose_gy=18.0, priority=60)]
    return (
        Proposal(objectives=applied, rationale="lower the OAR mean"),
        applied,
        GuardVerdict(status=VerdictStatus.ACCEPTED),
    )


def test_the_scripted_window_approves_edits_gives_feedback_and_stops() -> None:
    _, _, plugin = _ns()
    edit = [
        PointObjective(
            structure_id="PTV", operator=ObjectiveOperator.LOWER, dose_gy=59.0,
            volume_pct=98.0, priority=120,
        ).model_dump(mode="json")
    ]  # fmt: skip
    window = plugin.ScriptedClinicianWindow(
        ["approve", "edit:" + json.dumps(edit), "feedback:spare the OAR", "stop"]
    )
    approver = WindowApprover(window)
    proposal, applied, verdict = _proposal()
    decisions = [approver.review(i, proposal, applied, applied, verdict) for i in range(1, 6)]
    assert [d.action for d in decisions] == [
        ApprovalAction.APPROVE,
        ApprovalAction.EDIT,
        ApprovalAction.FEEDBACK,
        ApprovalAction.STOP,
        ApprovalAction.STOP,  # the script ran out: the clinician's stop
    ]
    assert decisions[1].objectives is not None
    assert decisions[1].objectives[0].model_dump(mode="json") == edit[0]
    assert decisions[2].feedback == "spare the OAR"
    shown = json.loads(str(window.Reviewed[0]))
    assert shown["rationale"] == "lower the OAR mean" and shown["proposed"][0]["dose_gy"] == 18.0
    approver.edit_rejected(2, GuardVerdict(status=VerdictStatus.REJECTED, reasons=["PTV dose"]))
    assert list(window.Rejections) == ["iteration 2: PTV dose"]


def test_cancel_is_the_clinicians_stop() -> None:
    _, _, plugin = _ns()
    window = plugin.ScriptedClinicianWindow(["cancel"])
    approver = WindowApprover(window)
    proposal, applied, verdict = _proposal()
    assert approver.review(1, proposal, applied, applied, verdict).action is ApprovalAction.APPROVE
    assert approver.review(2, proposal, applied, applied, verdict).action is ApprovalAction.STOP
    assert len(window.Reviewed) == 1  # after Cancel the window is not asked again
    # in auto mode, the progress callback stops the session after the iteration
    auto = plugin.ScriptedClinicianWindow([])
    auto.CancelAfterProgress = 2
    progress = WindowProgress(auto)
    record = IterationRecord.model_construct(iteration=1, evaluation=None)
    progress(record)
    with pytest.raises(SessionAborted) as stopped:
        progress(record)
    assert stopped.value.reason is StopReason.CLINICIAN_STOP
    assert list(auto.ProgressLines) == ["iteration 1: score n/a"] * 2


def test_an_invalid_answer_is_reported_and_asked_again() -> None:
    _, _, plugin = _ns()
    window = plugin.ScriptedClinicianWindow(
        ['edit:[{"kind": "point", "structure_id": "PTV"}]', "edit:not json", "approve"]
    )
    proposal, applied, verdict = _proposal()
    decision = WindowApprover(window).review(3, proposal, applied, applied, verdict)
    assert decision.action is ApprovalAction.APPROVE and len(window.Reviewed) == 3
    rejections = list(window.Rejections)
    assert len(rejections) == 2 and all(
        r.startswith("iteration 3: the answer was not applied") for r in rejections
    )
    assert "ValidationError" in rejections[0] and "JSONDecodeError" in rejections[1]


# ------------------------------------------------------- workstation build
def test_the_plugin_csproj_shares_the_sources_and_adds_wpf_only_there() -> None:
    import xml.etree.ElementTree as ET

    from esapi_helpers import build_module

    build = build_module()
    shared = build.read_sources()
    root = ET.parse(ROOT / "plugin_csharp" / "RtPlanAgent.csproj").getroot()
    assert [i.attrib["Project"] for i in root.iter("Import")] == ["Sources.props"]
    compiled = [c.attrib["Include"] for c in root.iter("Compile")]
    assert compiled == ["@(PluginSource)", "$(BuildManifestFile)"]
    props = {p.tag: (p.text or "").strip() for g in root.iter("PropertyGroup") for p in g}
    assert props["AssemblyName"] == "RtPlanAgent.esapi" and props["UseWPF"] == "true"
    assert (props["TargetFramework"], props["PlatformTarget"]) == ("net48", "x64")
    assert props["DefineConstants"] == "$(PluginDefines);$(EsapiDefines);RTPLAN_WPF"
    assert "esapi_bridge.esapi.agent_code" in next(iter(root.iter("Exec"))).attrib["Command"]
    # the Mono build compiles the same plugin sources (the WPF file too, empty without the symbol)
    outputs = {out.name: (srcs, cmd) for out, srcs, cmd in build.commands()}
    sources, command = outputs["RtPlanAgent.esapi.dll"]
    assert sources[:-1] == list(shared.plugin_sources) and sources[-1].endswith(
        "BuildManifest.g.cs"
    )
    assert "Plugin/WpfClinicianWindow.cs" in shared.plugin_sources
    defines = next(c for c in command if c.startswith("-define:")).removeprefix("-define:")
    assert defines.split(";") == [*shared.plugin_defines, *shared.version_defines["15_6"]]
    assert "RTPLAN_WPF" not in defines
    _, _, plugin = _ns()
    assert not hasattr(plugin, "WpfClinicianWindow")


def test_the_assembly_version_follows_the_agent_code() -> None:
    _, _, plugin = _ns()
    from System.Reflection import Assembly

    name = Assembly.Load("RtPlanAgent.esapi").GetName()
    assert str(name.Version) == agent_code.assembly_version(str(plugin.BuildManifest.Total))
    assert agent_code.assembly_version("0" * 64) == "0.12.0.0"
    assert agent_code.assembly_version("ffff" * 16) == "0.12.0.0"  # 65535 is not a valid part
