"""The simulated TPS behind the stubs when the plugin's test host (C#) runs the agent embedded.

The host (``plugin_csharp/TestHost/PluginTestHost.cs``) imports this module inside the CPython
the plugin started and calls :func:`backend_for` with its spec; the returned
:class:`esapi_helpers.MockBackend` answers the stubs' optimizer, dose and DVH callbacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from esapi_bridge.dto import Objective
from esapi_helpers import MockBackend
from mock_tps.factory import open_mock_session
from mock_tps.session import MockTpsSession


def case_spec(
    mock: MockTpsSession,
    *,
    scenario: str,
    seed: int,
    cache_dir: Path,
    tests_dir: Path,
    approval_status: str = "UnApproved",
    answers: tuple[str, ...] = (),
    original: list[Objective] | None = None,
    runs: int = 1,
) -> dict[str, Any]:
    """The host's spec of a stub plan that mirrors ``mock`` (structures, prescription, beams);
    ``runs`` launches of the plugin in the same process (later ones without answers)."""
    info = mock.plan_info()
    objectives = original or []
    return {
        "scenario": scenario,
        "seed": seed,
        "cache_dir": str(cache_dir),
        "tests_dir": str(tests_dir),
        "plan_id": "PROST-PLAN-1",
        "dose_unit": "cGy",
        "dose_per_fraction_gy": float(info.dose_per_fraction_gy),
        "fractions": int(info.fractions),
        "beam_count": int(info.beam_count),
        "approval_status": approval_status,
        "answers": list(answers),
        "runs": runs,
        "structures": [s.model_dump(mode="json") for s in mock.structures()],
        "original_objectives": [o.model_dump(mode="json") for o in objectives],
    }


def backend_for(spec_json: str) -> MockBackend:
    """A simulated TPS for the spec's case (its dose-influence cache is the spec's)."""
    spec = json.loads(spec_json)
    mock = open_mock_session(spec["scenario"], spec["seed"], cache_dir=Path(spec["cache_dir"]))
    assert isinstance(mock, MockTpsSession)
    return MockBackend(mock, target_id=mock.case.prescription.target_id)
