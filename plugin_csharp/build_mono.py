"""Mono build of the ESAPI stubs, the PlanBridge, the stubs' test assembly, the plugin
(``RtPlanAgent.esapi.dll``) and its test host (``make plugin``).

The bridge's and the plugin's sources and defines are read from ``Sources.props``, the file the
workstation's ``PlanBridge.csproj`` and ``RtPlanAgent.csproj`` import, so that both builds compile
the same files with the same defines (the workstation adds ``RTPLAN_WPF`` for the WPF window).
The stubs are ESAPI 15.6 stubs: the bridge and the plugin are compiled with the 15.6 defines
against them, which makes the compilation the check that they use only 15.6 members.

The plugin embeds the hashes of the approved agent code (``esapi_bridge.esapi.agent_code``):
the generated ``BuildManifest.g.cs`` is rewritten when a hashed file changed, which rebuilds
the plugin. ``Python.Runtime.dll`` is copied from the installed pythonnet.

Usage: ``python plugin_csharp/build_mono.py [--out DIR] [--force] [--policies rule,...]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "bin" / "mono"
#: The ESAPI version the stubs model (and the bridge is compiled for in the Mono build).
STUB_ESAPI_VERSION = "15_6"
TYPES = "VMS.TPS.Common.Model.Types"
API = "VMS.TPS.Common.Model.API"
TESTING = "Rtplan.EsapiStubs.Testing"
BRIDGE = "Rtplan.PlanBridge"
PLUGIN = "RtPlanAgent.esapi"
TEST_HOST = "Rtplan.PluginTestHost"
PYTHON_RUNTIME = "Python.Runtime"
FRAMEWORK = ("System.Core.dll", "System.Runtime.Serialization.dll")
#: What Python.Runtime.dll (netstandard2.0) needs at compile time on Mono (ESAPI.md).
EMBEDDING = ("Microsoft.CSharp.dll", "/usr/lib/mono/4.5/Facades/netstandard.dll")
MANIFEST = "BuildManifest.g.cs"
#: The policies and providers a default build allows (the plugin refuses others).
DEFAULT_POLICIES = ("rule",)
DEFAULT_PROVIDERS: tuple[str, ...] = ()


@dataclass(frozen=True)
class SharedSources:
    """What ``Sources.props`` says: the bridge's sources and the defines per ESAPI version."""

    bridge_sources: tuple[str, ...]
    bridge_defines: tuple[str, ...]
    version_defines: dict[str, tuple[str, ...]]
    plugin_sources: tuple[str, ...] = ()
    plugin_defines: tuple[str, ...] = ()

    def defines_for(self, version: str) -> tuple[str, ...]:
        """Every define of the bridge for one ESAPI version (``"15_6"``, ``"16_1"``, ``"18_0"``)."""
        return self.bridge_defines + self.version_defines[version]


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(";") if part.strip())


def read_sources(props: Path = HERE / "Sources.props") -> SharedSources:
    """Parse ``Sources.props`` (MSBuild XML without a namespace)."""
    root = ET.parse(props).getroot()
    sources = tuple(item.attrib["Include"] for item in root.iter("BridgeSource"))
    plugin = tuple(item.attrib["Include"] for item in root.iter("PluginSource"))
    defines: tuple[str, ...] = ()
    plugin_defines: tuple[str, ...] = ()
    versions: dict[str, tuple[str, ...]] = {}
    for group in root.iter("PropertyGroup"):
        for prop in group:
            if prop.tag == "BridgeDefines":
                defines = _split(prop.text)
            elif prop.tag == "PluginDefines":
                plugin_defines = _split(prop.text)
            elif prop.tag.startswith("EsapiDefines"):
                versions[prop.tag.removeprefix("EsapiDefines")] = _split(prop.text)
    return SharedSources(sources, defines, versions, plugin, plugin_defines)


def _stub_sources(folder: str) -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in (HERE / "EsapiStubs" / folder).glob("*.cs"))


def python_runtime_dll() -> Path:
    """``Python.Runtime.dll`` of the installed pythonnet (the one the plugin embeds CPython with)."""
    import pythonnet  # the dev extra installs it

    return Path(pythonnet.__file__).resolve().parent / "runtime" / f"{PYTHON_RUNTIME}.dll"


def write_manifest(
    out_dir: Path,
    *,
    policies: tuple[str, ...] = DEFAULT_POLICIES,
    providers: tuple[str, ...] = DEFAULT_PROVIDERS,
) -> Path:
    """Generate ``BuildManifest.g.cs`` (rewritten only when its content changes)."""
    from esapi_bridge.esapi.agent_code import write_csharp

    path = out_dir / "obj" / MANIFEST
    write_csharp(path, policies=policies, providers=providers)
    return path


def commands(out_dir: Path = DEFAULT_OUT) -> list[tuple[Path, list[str], list[str]]]:
    """The ``mcs`` command lines in build order: (output, sources, command)."""
    shared = read_sources()
    dll = {name: out_dir / f"{name}.dll" for name in (TYPES, API, TESTING, BRIDGE, PLUGIN)}
    dll[PYTHON_RUNTIME] = out_dir / f"{PYTHON_RUNTIME}.dll"
    host = out_dir / f"{TEST_HOST}.exe"
    base = ["-platform:x64", "-nologo", "-warnaserror+"]
    library = ["mcs", "-target:library", *base]

    def refs(*names: str, extra: tuple[str, ...] = ()) -> list[str]:
        return [f"-r:{dll[n]}" for n in names] + [f"-r:{f}" for f in (*FRAMEWORK, *extra)]

    # the stubs hold fields the tests set through InternalsVisibleTo (CS0649 is expected there)
    stubs = [*library, "-nowarn:649"]
    esapi_defines = shared.defines_for(STUB_ESAPI_VERSION)
    plugin_defines = (*shared.plugin_defines, *shared.version_defines[STUB_ESAPI_VERSION])
    manifest = str(out_dir / "obj" / MANIFEST)
    plan = [
        (dll[TYPES], _stub_sources("Types"), [*stubs, *refs()]),
        (dll[API], _stub_sources("API"), [*stubs, *refs(TYPES)]),
        (
            dll[BRIDGE],
            list(shared.bridge_sources),
            [*library, f"-define:{';'.join(esapi_defines)}", *refs(TYPES, API)],
        ),
        (dll[TESTING], _stub_sources("Testing"), [*stubs, *refs(TYPES, API, BRIDGE)]),
        (
            dll[PLUGIN],
            [*shared.plugin_sources, manifest],
            [
                *library,
                f"-define:{';'.join(plugin_defines)}",
                *refs(TYPES, API, BRIDGE, PYTHON_RUNTIME, extra=EMBEDDING),
            ],
        ),
        (
            host,
            ["TestHost/PluginTestHost.cs"],
            [
                "mcs",
                "-target:exe",
                *base,
                *refs(TYPES, API, BRIDGE, TESTING, PLUGIN, PYTHON_RUNTIME, extra=EMBEDDING),
            ],
        ),
    ]
    return [(out, srcs, [*cmd, f"-out:{out}", *srcs]) for out, srcs, cmd in plan]


def _stale(out: Path, sources: list[str]) -> bool:
    if not out.exists():
        return True
    inputs = [HERE / s for s in sources] + [HERE / "Sources.props", Path(__file__)]
    return any(p.stat().st_mtime > out.stat().st_mtime for p in inputs)


def build(
    out_dir: Path = DEFAULT_OUT,
    *,
    force: bool = False,
    policies: tuple[str, ...] = DEFAULT_POLICIES,
    providers: tuple[str, ...] = DEFAULT_PROVIDERS,
) -> Path:
    """Build what is missing or older than its sources; return the output folder.

    Raises
    ------
    RuntimeError
        ``mcs`` is not installed (``apt-get install -y mono-devel``) or a compilation failed.
    """
    if shutil.which("mcs") is None:
        raise RuntimeError("mcs (Mono's C# compiler) is missing: apt-get install -y mono-devel")
    out_dir.mkdir(parents=True, exist_ok=True)
    runtime = python_runtime_dll()
    copied = out_dir / runtime.name
    if not copied.exists() or copied.read_bytes() != runtime.read_bytes():
        shutil.copyfile(runtime, copied)
    write_manifest(out_dir, policies=policies, providers=providers)
    rebuilt = force
    for out, sources, command in commands(out_dir):
        if not (rebuilt or _stale(out, sources)):
            continue
        rebuilt = True  # everything after a rebuilt assembly is rebuilt too
        run = subprocess.run(command, cwd=HERE, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"mcs failed for {out.name}:\n{run.stdout}{run.stderr}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """Command line of ``make plugin``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES))
    parser.add_argument("--providers", default=",".join(DEFAULT_PROVIDERS))
    args = parser.parse_args(argv)
    try:
        out = build(
            args.out,
            force=args.force,
            policies=tuple(n.strip() for n in args.policies.split(",") if n.strip()),
            providers=tuple(n.strip() for n in args.providers.split(",") if n.strip()),
        )
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"built {TYPES}, {API}, {BRIDGE}, {TESTING}, {PLUGIN} and {TEST_HOST} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
