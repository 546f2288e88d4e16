"""The .NET side of the ESAPI adapter: the only module that imports pythonnet and ``clr``.

Two entry paths:

- standalone (research, batch, tests): :func:`load_standalone` loads a .NET runtime with
  ``pythonnet.load`` (``"mono"`` on Linux, ``"netfx"`` on Windows) and then adds the ESAPI
  assemblies (Types included: pythonnet loads nothing implicitly) and the bridge;
- hosted inside the Eclipse plugin (#9): the plugin has already started the runtime and loaded
  the assemblies, so :func:`attach_hosted` never calls ``load()``; it only adds the references.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esapi_bridge.errors import TpsUnavailable
from esapi_bridge.esapi.error_map import dotnet_boundary

TYPES_ASSEMBLY = "VMS.TPS.Common.Model.Types"
API_ASSEMBLY = "VMS.TPS.Common.Model.API"
BRIDGE_ASSEMBLY = "Rtplan.PlanBridge"


@dataclass(frozen=True)
class BridgeAssemblies:
    """The loaded bridge: its ``PlanBridge`` class and the runtime it runs on."""

    plan_bridge_type: Any
    runtime: str
    runtime_warnings: tuple[str, ...] = ()

    def new_bridge(self, patient: Any, plan: Any, technique: str) -> Any:
        """A ``PlanBridge`` over an ESAPI patient and external-beam plan (.NET objects).

        The bridge belongs to the calling thread: every later call must come from it.
        """
        with dotnet_boundary("PlanBridge(patient, plan, technique)"):
            return self.plan_bridge_type(patient, plan, technique)

    def standalone_host(self, script_name: str) -> Any:
        """Start ``Rtplan.Bridge.StandaloneHost``: its STA thread and the process's one ESAPI
        ``Application`` (``CustomScriptExecutable.CreateApplication``); ``Dispose()`` it on exit.

        Raises
        ------
        TpsUnavailable
            ``CreateApplication`` failed or an Application was already created in this process.
        """
        from Rtplan.Bridge import StandaloneHost

        with dotnet_boundary("StandaloneHost.Start(scriptName)"):
            return StandaloneHost.Start(script_name)

    def plan_locator(self, type_name: str) -> Any:
        """A new instance of the .NET class ``type_name`` (full name, in a loaded assembly) that
        implements ``Rtplan.Bridge.IPlanLocator``.

        Raises
        ------
        TpsUnavailable
            No loaded assembly defines the type, it has no public parameterless constructor,
            or it does not implement ``IPlanLocator``.
        """
        import clr
        from Rtplan.Bridge import IPlanLocator
        from System import Activator, AppDomain

        found = [
            t
            for t in (asm.GetType(type_name) for asm in AppDomain.CurrentDomain.GetAssemblies())
            if t is not None
        ]
        if not found:
            raise TpsUnavailable(
                f"plan locator {type_name!r}: no loaded assembly defines this type; give its "
                "full name (Namespace.Class) and load its assembly with --esapi-assembly NAME"
            )
        if not clr.GetClrType(IPlanLocator).IsAssignableFrom(found[0]):
            raise TpsUnavailable(
                f"plan locator {type_name!r} does not implement Rtplan.Bridge.IPlanLocator"
            )
        try:
            return IPlanLocator(Activator.CreateInstance(found[0]))
        except Exception as exc:  # System.MissingMethodException and the like
            raise TpsUnavailable(
                f"plan locator {type_name!r} cannot be created (a public parameterless "
                f"constructor is needed): {exc}"
            ) from exc


def default_runtime() -> str:
    """``netfx`` on Windows (Eclipse's .NET Framework), ``mono`` elsewhere."""
    return "netfx" if sys.platform == "win32" else "mono"


def _add_references(assembly_dir: Path | None, names: Sequence[str]) -> None:
    import clr

    if assembly_dir is not None:
        folder = str(Path(assembly_dir).resolve())
        if folder not in sys.path:
            sys.path.append(folder)
    for name in names:
        try:
            clr.AddReference(name)
        except Exception as exc:  # pythonnet raises System.IO.FileNotFoundException
            where = f" in {assembly_dir}" if assembly_dir is not None else ""
            raise TpsUnavailable(f"cannot load the .NET assembly {name}{where}: {exc}") from exc


def _bridge(runtime: str, runtime_warnings: tuple[str, ...] = ()) -> BridgeAssemblies:
    from Rtplan.Bridge import PlanBridge

    return BridgeAssemblies(PlanBridge, runtime, runtime_warnings)


def load_standalone(
    assembly_dir: str | Path,
    *,
    runtime: str | None = None,
    extra_assemblies: Sequence[str] = (),
) -> BridgeAssemblies:
    """Start a .NET runtime in this process (once) and load the ESAPI assemblies and the bridge.

    Parameters
    ----------
    assembly_dir
        Folder holding ``VMS.TPS.Common.Model.API.dll``, ``...Types.dll`` and
        ``Rtplan.PlanBridge.dll`` (on Linux: the stubs of ``make plugin``).
    runtime
        ``"mono"`` or ``"netfx"`` (default: :func:`default_runtime`). Ignored when a runtime
        is already loaded in this process.
    extra_assemblies
        Further assemblies to reference (the tests' stub factory).

    Raises
    ------
    TpsUnavailable
        pythonnet is not installed, the runtime does not start or an assembly is missing.
    """
    try:
        import pythonnet
    except ImportError as exc:
        raise TpsUnavailable(
            "pythonnet is not installed: pip install 'rtplan-agent[esapi]'"
        ) from exc
    kind = runtime or default_runtime()
    info = pythonnet.get_runtime_info()
    seen: list[warnings.WarningMessage] = []
    if info is None:
        try:
            # clr_loader warns that Mono before 6.12 is "known to be problematic": kept as evidence
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                pythonnet.load(kind)
        except Exception as exc:
            raise TpsUnavailable(f"cannot start the .NET runtime {kind!r}: {exc}") from exc
    else:
        kind = info.kind.lower()
    _add_references(
        Path(assembly_dir), [TYPES_ASSEMBLY, API_ASSEMBLY, BRIDGE_ASSEMBLY, *extra_assemblies]
    )
    return _bridge(kind, tuple(str(w.message) for w in seen))


def attach_hosted() -> BridgeAssemblies:
    """Inside the Eclipse plugin: the runtime and the assemblies are already loaded; no ``load()``."""
    _add_references(None, [TYPES_ASSEMBLY, API_ASSEMBLY, BRIDGE_ASSEMBLY])
    return _bridge("hosted")


def current_managed_thread_id() -> int:
    """Managed thread id of the calling Python thread (to tell which thread owns a bridge)."""
    from System.Threading import Thread

    return int(Thread.CurrentThread.ManagedThreadId)
