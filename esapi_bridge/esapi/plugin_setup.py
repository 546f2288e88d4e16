"""Set-up helpers of the Eclipse plugin, run with the virtual environment's Python.

``python -m esapi_bridge.esapi.plugin_setup python-dll`` prints the base interpreter's Python
DLL (from its ``sysconfig`` LIBDIR and LDLIBRARY; on Windows the ``pythonXY.dll`` next to the
base interpreter), which is what ``Runtime.PythonDLL`` must be: never a name looked up on the
library search path, where another CPython may be found first.
``python -m esapi_bridge.esapi.plugin_setup config --site-template NAME --log-dir DIR --out FILE``
writes ``RtPlanAgent.config.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

CONFIG_FILENAME = "RtPlanAgent.config.json"


def base_python_dll() -> Path:
    """The Python DLL of the base interpreter of the running (virtual) environment.

    Raises
    ------
    RuntimeError
        The interpreter was built without a shared library (no ``LDLIBRARY``/``LIBDIR``).
    """
    if sys.platform == "win32":
        name = f"python{sys.version_info.major}{sys.version_info.minor}.dll"
        return Path(sys.base_prefix) / name
    libdir, ldlibrary = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if not libdir or not ldlibrary or not str(ldlibrary).endswith((".so", ".dylib")):
        raise RuntimeError(
            f"this Python has no shared library (LDLIBRARY={ldlibrary!r}): build it with "
            "--enable-shared to embed it in the plugin"
        )
    return Path(str(libdir)) / str(ldlibrary)


def plugin_config(
    *,
    site_template: str,
    log_dir: Path,
    policy: str = "rule",
    approve: str = "each",
    max_iterations: int = 10,
    venv: Path | None = None,
    python_dll: Path | None = None,
) -> dict[str, Any]:
    """The config entries for this environment (see ``plugin_csharp/Plugin/PluginConfig.cs``)."""
    return {
        "python_dll": str(python_dll or base_python_dll()),
        "venv": str(venv or Path(sys.prefix).resolve()),
        "site_template": site_template,
        "policy": policy,
        "provider": None,
        "approve": approve,
        "max_iterations": max_iterations,
        "log_dir": str(Path(log_dir).resolve()),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("python-dll", help="print the base interpreter's Python DLL")
    cfg = sub.add_parser("config", help=f"write {CONFIG_FILENAME}")
    cfg.add_argument("--site-template", required=True)
    cfg.add_argument("--log-dir", type=Path, required=True)
    cfg.add_argument("--policy", default="rule")
    cfg.add_argument("--approve", choices=["each", "auto"], default="each")
    cfg.add_argument("--max-iterations", type=int, default=10)
    cfg.add_argument("--out", type=Path, default=Path(CONFIG_FILENAME))
    args = parser.parse_args(argv)
    if args.command == "python-dll":
        print(base_python_dll())
        return 0
    data = plugin_config(
        site_template=args.site_template,
        log_dir=args.log_dir,
        policy=args.policy,
        approve=args.approve,
        max_iterations=args.max_iterations,
    )
    args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
