"""Shared helpers of the benchmarks: repeated timing, peak memory, tables and JSON results."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger
from rich.console import Console
from rich.table import Table

from rtplan_common.atomic_io import write_text_atomic

RESULTS_DIR = Path(__file__).resolve().parent / "results"
T = TypeVar("T")
console = Console()

# Benchmarks print tables; the TPS's debug log would drown them (set RTPLAN_BENCH_LOG=DEBUG to see it).
logger.remove()
logger.add(sys.stderr, level=os.environ.get("RTPLAN_BENCH_LOG", "WARNING"))


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Run ``fn`` once; return (wall seconds, its result)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def median_runs(fn: Callable[[], T], runs: int = 3) -> tuple[float, list[float], T]:
    """Run ``fn`` ``runs`` times; return (median seconds, every run's seconds, last result)."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    times: list[float] = []
    out: T | None = None
    for _ in range(runs):
        dt, out = timed(fn)
        times.append(dt)
    assert out is not None or runs >= 1
    return statistics.median(times), times, out  # type: ignore[return-value]


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with machine info) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    data = {"benchmark": name, "machine": machine_info(), **payload}
    write_text_atomic(path, json.dumps(data, indent=2, default=float) + "\n")
    return path


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    out: Console | None = None,
) -> None:
    """Print a rich table (floats formatted compactly) on ``out`` (default: the shared console)."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row])
    (out or console).print(table)
