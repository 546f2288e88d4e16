"""The ``TpsSession`` port: everything the agent may ask of a treatment planning system.

The agent depends on this Protocol only. Adapters (the simulated TPS in
``mock_tps``, Eclipse through ``esapi_bridge.esapi``) implement it and map
their backend's failures to :mod:`esapi_bridge.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from esapi_bridge.dto import (
    DoseSlice,
    DvhCurve,
    NormalizationRule,
    Objective,
    OptimizationResult,
    OptimizeRequest,
    PlanInfo,
    SlicePlane,
    StructureInfo,
)


@runtime_checkable
class TpsSession(Protocol):
    """One open plan in a TPS.

    All doses are absolute, in Gy; all volumes are in % of the structure or cm3
    as the method names say. Methods raise subclasses of
    :class:`esapi_bridge.errors.TpsError` only.
    """

    def plan_info(self) -> PlanInfo:
        """Plan id, technique, prescription, dose unit and approval status; optionally the
        backend (name, dose-engine version, case source) for the session's journal."""
        ...

    def structures(self) -> list[StructureInfo]:
        """Every structure of the plan's structure set."""
        ...

    def get_objectives(self) -> list[Objective]:
        """The current optimization objectives (NTO included, if any)."""
        ...

    def set_objectives(self, objectives: Sequence[Objective]) -> None:
        """Replace all objectives (remove + add, as ESAPI requires). All-or-nothing."""
        ...

    def optimize(self, request: OptimizeRequest) -> OptimizationResult:
        """Run the optimizer (IMRT or VMAT by the plan's technique) and report its result."""
        ...

    def calculate_dose(self) -> None:
        """Calculate the final dose of the current fluence (leaf motions + dose in Eclipse)."""
        ...

    def normalize(self, rule: NormalizationRule) -> float:
        """Scale the dose by the rule; return the normalization factor applied (1.0 = none)."""
        ...

    def get_dvh(self, structure_id: str) -> DvhCurve:
        """Cumulative DVH of a structure (absolute dose, relative volume)."""
        ...

    def dose_slice(self, plane: SlicePlane, index: int | None = None) -> DoseSlice:
        """A dose plane through ``index`` (default: the target centre); optional capability.

        Raises :class:`esapi_bridge.errors.CapabilityUnavailable` where the backend has none.
        """
        ...
