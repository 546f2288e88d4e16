"""The dicompyler-core peer of the DVH cross-check: its own small venv, driven as a subprocess.

dicompyler-core's last release (0.5.6) does not import with pydicom 3, which the project
uses, so it lives in a venv of its own: ``$RTPLAN_DICOMPYLER_VENV``, default
``~/.cache/rtplan/dicompyler-venv``. :func:`ensure_venv` creates it (about a minute, with
pip from the configured package index) or reuses it when its stamp and import check pass;
pip failing is an error naming the command and pip's last lines, not a skip.
``tests/dicompyler/dvh_stats.py`` runs inside it (as ``bench/peer_pyradplan.py`` runs in the
pyRadPlan peer's venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VENV_ENV = "RTPLAN_DICOMPYLER_VENV"
#: What the venv holds: the last dicompyler-core release and the versions it works with.
REQUIREMENTS = ("dicompyler-core==0.5.6", "pydicom==2.4.5", "numpy==1.26.4", "matplotlib==3.11.2")
STAMP = "rtplan-requirements.txt"
SCRIPT = Path(__file__).resolve().parent / "dicompyler" / "dvh_stats.py"


class DicompylerSetupError(RuntimeError):
    """The dicompyler venv could not be created or does not work."""


def venv_dir() -> Path:
    """Where the venv is (``$RTPLAN_DICOMPYLER_VENV`` or ``~/.cache/rtplan/dicompyler-venv``)."""
    configured = os.environ.get(VENV_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "rtplan" / "dicompyler-venv"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _works(python: Path) -> bool:
    check = "import dicompylercore.dvhcalc, pydicom; assert pydicom.__version__.startswith('2.')"
    done = subprocess.run([str(python), "-c", check], capture_output=True, timeout=120)
    return done.returncode == 0


def _run(cmd: list[str], what: str, timeout_s: float) -> None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DicompylerSetupError(f"{what} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise DicompylerSetupError(
            f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}\n"
            f"(set {VENV_ENV} to another folder, or check the package index pip uses)"
        )


def ensure_venv(timeout_s: float = 900.0) -> Path:
    """The venv's Python, after creating or repairing the venv if needed.

    Raises
    ------
    DicompylerSetupError
        ``venv`` or ``pip install`` failed, or the installed venv does not import
        dicompyler-core with pydicom 2.
    """
    venv = venv_dir()
    python = _python(venv)
    stamp = venv / STAMP
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted and _works(python):
        return python
    if not python.is_file():
        _run([sys.executable, "-m", "venv", str(venv)], "creating the dicompyler venv", 300)
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          *REQUIREMENTS], "pip install of dicompyler-core", timeout_s)  # fmt: skip
    if not _works(python):
        raise DicompylerSetupError(
            f"the dicompyler venv at {venv} was installed but does not import dicompyler-core "
            f"with pydicom 2; delete it and run again"
        )
    stamp.write_text(wanted)
    return python


def dicompyler_dvh(python: Path, rtstruct: Path, rtdose: Path) -> dict[str, dict[str, float]]:
    """dicompyler-core's DVH statistics per ROI name (see ``tests/dicompyler/dvh_stats.py``)."""
    done = subprocess.run(
        [str(python), str(SCRIPT), str(rtstruct), str(rtdose)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"dicompyler-core failed (exit {done.returncode}):\n{done.stderr}")
    result: dict[str, dict[str, float]] = json.loads(done.stdout)
    return result
