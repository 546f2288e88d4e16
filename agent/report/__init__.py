"""Reports of planning sessions: plan snapshots (DVHs, dose planes) and the HTML/CSV/JSON report."""

from agent.report.artifacts import (
    PlanSnapshot,
    SnapshotError,
    load_plan_snapshot,
    save_plan_snapshot,
)
from agent.report.build import build_report
from agent.report.data import ReportError

__all__ = [
    "PlanSnapshot",
    "ReportError",
    "SnapshotError",
    "build_report",
    "load_plan_snapshot",
    "save_plan_snapshot",
]
