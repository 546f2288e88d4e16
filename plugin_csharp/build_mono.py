"""Mono build of the ESAPI stubs, their test assembly and the PlanBridge (``make plugin``).

The bridge's sources and defines are read from ``Sources.props``, the file the workstation's
``PlanBridge.csproj`` imports, so that both builds compile the same files with the same defines.
The stubs are ESAPI 15.6 stubs: the bridge is compiled with the 15.6 defines against them, which
makes the compilation the check that the bridge uses only 15.6 members.

Usage: ``python plugin_csharp/build_mono.py [--out DIR] [--force]``.
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
FRAMEWORK = ("System.Core.dll", "System.Runtime.Serialization.dll")


@dataclass(frozen=True)
class SharedSources:
    """What ``Sources.props`` says: the bridge's sources and the defines per ESAPI version."""

    bridge_sources: tuple[str, ...]
    bridge_defines: tuple[str, ...]
    version_defines: dict[str, tuple[str, ...]]

    def defines_for(self, version: str) -> tuple[str, ...]:
        """Every define of the bridge for one ESAPI version (``"15_6"``, ``"16_1"``, ``"18_0"``)."""
        return self.bridge_defines + self.version_defines[version]


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(";") if part.strip())


def read_sources(props: Path = HERE / "Sources.props") -> SharedSources:
    """Parse ``Sources.props`` (MSBuild XML without a namespace)."""
    root = ET.parse(props).getroot()
    sources = tuple(item.attrib["Include"] for item in root.iter("BridgeSource"))
    defines: tuple[str, ...] = ()
    versions: dict[str, tuple[str, ...]] = {}
    for group in root.iter("PropertyGroup"):
        for prop in group:
            if prop.tag == "BridgeDefines":
                defines = _split(prop.text)
            elif prop.tag.startswith("EsapiDefines"):
                versions[prop.tag.removeprefix("EsapiDefines")] = _split(prop.text)
    return SharedSources(sources, defines, versions)


def _stub_sources(folder: str) -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in (HERE / "EsapiStubs" / folder).glob("*.cs"))


def commands(out_dir: Path = DEFAULT_OUT) -> list[tuple[Path, list[str], list[str]]]:
    """The ``mcs`` command lines in build order: (output, sources, command)."""
    shared = read_sources()
    dll = {name: out_dir / f"{name}.dll" for name in (TYPES, API, TESTING, BRIDGE)}
    base = ["mcs", "-target:library", "-platform:x64", "-nologo", "-warnaserror+"]

    def refs(*names: str) -> list[str]:
        return [f"-r:{dll[n]}" for n in names] + [f"-r:{f}" for f in FRAMEWORK]

    # the stubs hold fields the tests set through InternalsVisibleTo (CS0649 is expected there)
    stubs = [*base, "-nowarn:649"]
    plan = [
        (dll[TYPES], _stub_sources("Types"), [*stubs, *refs()]),
        (dll[API], _stub_sources("API"), [*stubs, *refs(TYPES)]),
        (dll[TESTING], _stub_sources("Testing"), [*stubs, *refs(TYPES, API)]),
        (
            dll[BRIDGE],
            list(shared.bridge_sources),
            [
                *base,
                f"-define:{';'.join(shared.defines_for(STUB_ESAPI_VERSION))}",
                *refs(TYPES, API),
            ],
        ),
    ]
    return [(out, srcs, [*cmd, f"-out:{out}", *srcs]) for out, srcs, cmd in plan]


def _stale(out: Path, sources: list[str]) -> bool:
    if not out.exists():
        return True
    inputs = [HERE / s for s in sources] + [HERE / "Sources.props", Path(__file__)]
    return any(p.stat().st_mtime > out.stat().st_mtime for p in inputs)


def build(out_dir: Path = DEFAULT_OUT, *, force: bool = False) -> Path:
    """Build what is missing or older than its sources; return the output folder.

    Raises
    ------
    RuntimeError
        ``mcs`` is not installed (``apt-get install -y mono-devel``) or a compilation failed.
    """
    if shutil.which("mcs") is None:
        raise RuntimeError("mcs (Mono's C# compiler) is missing: apt-get install -y mono-devel")
    out_dir.mkdir(parents=True, exist_ok=True)
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
    args = parser.parse_args(argv)
    try:
        out = build(args.out, force=args.force)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"built {TYPES}, {API}, {TESTING} and {BRIDGE} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
