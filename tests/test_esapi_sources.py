"""The C# layer's sources and builds: 15.6-only members, one source list for both builds, the
stubs' shape (declaring classes, enum values, constructors) read by reflection on Mono."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from esapi_helpers import ROOT, build_module, stub_assemblies

PLUGIN = ROOT / "plugin_csharp"
BRIDGE_SOURCES = sorted((PLUGIN / "PlanBridge").glob("*.cs"))
PLUGIN_SOURCES = sorted((PLUGIN / "Plugin").glob("*.cs"))
#: The plugin's entry file names these ESAPI types only (the bridge does the rest).
SCRIPT_API_NAMES = {"ScriptContext", "ESAPIScript"}

#: Members that docs/ESAPI.md lists as NOT in ESAPI 15.6 (using one breaks the 15.6 build).
NOT_IN_15_6 = {
    "AddProtonNormalTissueObjective (16.1)": r"\bAddProtonNormalTissueObjective\b",
    "AddAutomaticSbrtNormalTissueObjective (18.0)": r"\bAddAutomaticSbrtNormalTissueObjective\b",
    "DVHData.MinDosePosition (16.1)": r"\bMinDosePosition\b",
    "DVHData.MaxDosePosition (16.1)": r"\bMaxDosePosition\b",
    "SetTargetStructureIfNoDose (16.1)": r"\bSetTargetStructureIfNoDose\b",
    "CopyPlanSetup with an Image (16.1)": r"\bCopyPlanSetup\s*\([^()]*,",
    "AddExternalPlanSetup with a target and reference point (16.1)": (
        r"\bAddExternalPlanSetup\s*\([^()]*,"
    ),
    "AddReferencePoint (signature changed in 16.1)": r"\bAddReferencePoint\b",
    "ScriptContext constructor (differs by version)": r"\bnew\s+ScriptContext\b",
}


def _code(path: Path) -> str:
    """C# source without comments (so that a comment may name a member it avoids)."""
    text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _violations(sources: list[Path]) -> list[str]:
    return [
        f"{path.name}: {name}"
        for path in sources
        for name, pattern in NOT_IN_15_6.items()
        if re.search(pattern, _code(path))
    ]


def test_the_bridge_and_the_plugin_use_no_member_that_15_6_lacks() -> None:
    assert len(BRIDGE_SOURCES) >= 4 and len(PLUGIN_SOURCES) >= 5
    assert _violations(BRIDGE_SOURCES + PLUGIN_SOURCES) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "Bad.cs"
    bad.write_text(
        "// AddProtonNormalTissueObjective in a comment is fine\n"
        "var d = dvh.MaxDosePosition;\n"
        "course.CopyPlanSetup(plan, image, log);\n"
        "setup.AddAutomaticSbrtNormalTissueObjective(100);\n",
        encoding="utf-8",
    )
    found = _violations([bad])
    assert len(found) == 3 and not any("Proton" in f for f in found)


def test_only_the_bridge_touches_the_esapi_objects(api: dict[str, object]) -> None:
    users = sorted(
        str(p.relative_to(PLUGIN))
        for p in PLUGIN.rglob("*.cs")
        if not {"EsapiStubs", "TestHost"} & set(p.parts)
        and "using VMS.TPS.Common.Model.API;" in _code(p)
    )
    bridge = sorted(str(p.relative_to(PLUGIN)) for p in BRIDGE_SOURCES if "API" in _code(p))
    assert users == sorted([*bridge, "Plugin/Script.cs"]) and bridge
    # the entry names ScriptContext and the ESAPIScript attribute, nothing else of the API
    script = _code(PLUGIN / "Plugin" / "Script.cs")
    named = {
        n.removesuffix("Attribute")
        for n in api
        if re.search(rf"\b{n.removesuffix('Attribute')}\b", script)
    }
    assert named == SCRIPT_API_NAMES
    assert "[assembly: ESAPIScript(IsWriteable = true)]" in script
    assert "public void Execute(ScriptContext context)" in script and "namespace VMS.TPS" in script


def test_only_the_runtime_module_imports_pythonnet() -> None:
    importers = []
    for path in sorted((ROOT / "esapi_bridge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in {"pythonnet", "clr"} for n in names):
                importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["esapi_bridge/esapi/runtime.py"]


def _csproj() -> ET.Element:
    return ET.parse(PLUGIN / "PlanBridge.csproj").getroot()


def test_the_csproj_and_the_mono_build_share_sources_and_defines() -> None:
    build = build_module()
    shared = build.read_sources()
    root = _csproj()
    # the csproj compiles exactly the props' list, nothing by default, for net48 on x64
    assert [i.attrib["Project"] for i in root.iter("Import")] == ["Sources.props"]
    assert [c.attrib["Include"] for c in root.iter("Compile")] == ["@(BridgeSource)"]
    props = {p.tag: (p.text or "").strip() for g in root.iter("PropertyGroup") for p in g}
    assert props["EnableDefaultCompileItems"] == "false"
    assert (props["TargetFramework"], props["PlatformTarget"]) == ("net48", "x64")
    assert props["DefineConstants"] == "$(BridgeDefines);$(EsapiDefines)"
    # one configuration per version, each taking the props' defines for it
    per_config = {
        g.attrib["Condition"]: {p.tag: (p.text or "").strip() for p in g}
        for g in root.iter("PropertyGroup")
        if "Configuration" in g.attrib.get("Condition", "") and "== ''" not in g.attrib["Condition"]
    }
    versions = {}
    for condition, values in per_config.items():
        config = re.search(r"'(Esapi\d+_\d+)'", condition)
        assert config is not None, condition
        key = config.group(1).removeprefix("Esapi")
        assert values["EsapiDefines"] == f"$(EsapiDefines{key})"
        versions[key] = values["EsapiVersion"]
    assert versions == {"15_6": "15.6", "16_1": "16.1", "18_0": "18.0"}
    assert set(shared.version_defines) == set(versions)
    assert props["Configurations"].split(";") == [f"Esapi{k}" for k in versions]
    # the reference folder is a property the command line can set
    hints = [h.text or "" for h in root.iter("HintPath")]
    assert hints and all(h.startswith("$(EsapiReferencePath)") for h in hints)
    # the Mono build compiles the same files with the same (15.6) defines
    outputs = {out.name: (srcs, cmd) for out, srcs, cmd in build.commands()}
    sources, command = outputs["Rtplan.PlanBridge.dll"]
    assert sources == list(shared.bridge_sources)
    assert sorted(sources) == sorted(str(p.relative_to(PLUGIN)) for p in BRIDGE_SOURCES)
    defines = next(c for c in command if c.startswith("-define:")).removeprefix("-define:")
    assert defines.split(";") == [*shared.bridge_defines, *shared.version_defines["15_6"]]
    assert "-platform:x64" in command


# ------------------------------------------------------------- the stubs, by reflection
def _types(assembly: str) -> dict[str, object]:
    stub_assemblies()
    from System.Reflection import Assembly

    return {t.Name: t for t in Assembly.Load(assembly).GetExportedTypes()}


@pytest.fixture(scope="module")
def api() -> dict[str, object]:
    return _types("VMS.TPS.Common.Model.API")


@pytest.fixture(scope="module")
def types() -> dict[str, object]:
    return _types("VMS.TPS.Common.Model.Types")


def _declaring(t: object, member: str) -> str:
    found = {m.DeclaringType.Name for m in t.GetMember(member)}  # type: ignore[attr-defined]
    assert len(found) == 1, (member, found)
    return found.pop()


def test_members_are_declared_where_esapi_declares_them(api: dict[str, object]) -> None:
    plan = api["ExternalPlanSetup"]
    where = {
        m: _declaring(plan, m)
        for m in (
            "StructureSet",
            "Dose",
            "GetDVHCumulativeData",
            "GetDoseAtVolume",
            "GetVolumeAtDose",
            "Course",
            "PlanNormalizationValue",
            "OptimizationSetup",
            "OptimizeVMAT",
            "CalculateLeafMotionsAndDose",
        )
    }
    assert where == {
        "StructureSet": "PlanningItem",
        "Dose": "PlanningItem",
        "GetDVHCumulativeData": "PlanningItem",
        "GetDoseAtVolume": "PlanningItem",
        "GetVolumeAtDose": "PlanningItem",
        "Course": "PlanSetup",  # on PlanningItem only from 16.1
        "PlanNormalizationValue": "PlanSetup",
        "OptimizationSetup": "PlanSetup",
        "OptimizeVMAT": "ExternalPlanSetup",
        "CalculateLeafMotionsAndDose": "ExternalPlanSetup",
    }
    point = api["OptimizationPointObjective"]
    assert {m: _declaring(point, m) for m in ("Operator", "Priority", "StructureId", "Volume")} == {
        "Operator": "OptimizationObjective",
        "Priority": "OptimizationObjective",
        "StructureId": "OptimizationObjective",
        "Volume": "OptimizationPointObjective",
    }
    assert api["OptimizerResult"].BaseType.Name == "CalculationResult"  # type: ignore[attr-defined]
    setup = api["OptimizationSetup"]
    for method in ("AddNormalTissueObjective", "AddAutomaticNormalTissueObjective"):
        returns = {m.ReturnType.Name for m in setup.GetMember(method)}  # type: ignore[attr-defined]
        assert returns == {"OptimizationNormalTissueParameter"}


def test_objective_properties_are_read_only_and_constructors_internal(
    api: dict[str, object], types: dict[str, object]
) -> None:
    for name, t in api.items():
        if name == "ESAPIScriptAttribute":  # an attribute is used through its public constructor
            continue
        assert list(t.GetConstructors()) == [], f"{name} has a public constructor"  # type: ignore[attr-defined]
        if name.startswith("Optimization") and name.endswith(("Objective", "Parameter")):
            writable = [p.Name for p in t.GetProperties() if p.GetSetMethod() is not None]  # type: ignore[attr-defined]
            assert writable == [], f"{name}: {writable}"
    with_ctors = {n for n, t in types.items() if list(t.GetConstructors())}  # type: ignore[attr-defined]
    assert with_ctors == {
        "DoseValue",
        "DVHPoint",
        "OptimizationOptionsIMRT",
        "OptimizationOptionsVMAT",
    }
    for absent in ("AddProtonNormalTissueObjective", "AddAutomaticSbrtNormalTissueObjective"):
        assert list(api["OptimizationSetup"].GetMember(absent)) == []  # type: ignore[attr-defined]
    assert list(api["DVHData"].GetMember("MaxDosePosition")) == []  # type: ignore[attr-defined]


def _enum(types: dict[str, object], name: str) -> dict[str, int]:
    from System import Enum

    t = types[name]
    return {str(n): int(Enum.Parse(t, n)) for n in Enum.GetNames(t)}


def test_enum_names_and_values_are_esapi_s(types: dict[str, object]) -> None:
    assert _enum(types, "OptimizationObjectiveOperator") == {
        "Upper": 0,
        "Lower": 1,
        "Exact": 2,
        "None": 99,
    }
    assert _enum(types, "PlanSetupApprovalStatus") == {
        "Rejected": 0,
        "UnApproved": 1,
        "Reviewed": 2,
        "PlanningApproved": 3,
        "TreatmentApproved": 4,
        "CompletedEarly": 5,
        "Completed": 6,
        "Retired": 7,
        "UnPlannedTreatment": 8,
        "ExternallyApproved": 9,
        "Unknown": 999,
    }
    assert _enum(types, "OptimizationOption") == {
        "RestartOptimization": 0,
        "ContinueOptimization": 1,
        "ContinueOptimizationWithPlanDoseAsIntermediateDose": 2,
    }
    assert _enum(types, "OptimizationConvergenceOption") == {
        "NoEarlyTermination": 0,
        "TerminateIfConverged": 1,
    }
    assert list(_enum(types, "DoseValuePresentation")) == ["Relative", "Absolute"]
    assert list(_enum(types, "VolumePresentation")) == ["Relative", "AbsoluteCm3"]
    assert list(_enum(types, "DoseUnit")) == ["Unknown", "Gy", "cGy", "Percent"]
    assert types["DoseUnit"].DeclaringType.Name == "DoseValue"  # type: ignore[attr-defined]
