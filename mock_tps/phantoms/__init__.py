"""Parametric 3D phantoms of the planning scenarios (see docs PROTOCOLS.md), seeded."""

from mock_tps.phantoms.registry import (
    DEFAULT_SPACING_MM,
    PHANTOM_VERSION,
    SCENARIOS,
    SPACING_RANGE_MM,
    list_scenarios,
    make_case,
)

__all__ = [
    "DEFAULT_SPACING_MM",
    "PHANTOM_VERSION",
    "SCENARIOS",
    "SPACING_RANGE_MM",
    "list_scenarios",
    "make_case",
]
