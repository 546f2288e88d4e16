"""The phantom scenarios of the simulated TPS and the factory that builds their cases."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from esapi_bridge.errors import InvalidInput
from mock_tps.case import Case
from mock_tps.phantoms.brain import build_brain
from mock_tps.phantoms.cervix import build_cervix
from mock_tps.phantoms.head_neck import build_head_neck
from mock_tps.phantoms.liver import build_liver
from mock_tps.phantoms.prostate import build_prostate

_BUILDERS: dict[str, Callable[[int, float], Case]] = {
    "prostate-basic": partial(build_prostate, vmat=False),
    "prostate-complex": partial(build_prostate, vmat=True),
    "liver": build_liver,
    "head-and-neck": build_head_neck,
    "cervix": build_cervix,
    "brain-srs": build_brain,
}

#: Version of the phantoms' geometry: bump it with any change to a builder, then re-run the
#: calibration and the cohort and re-freeze (``python -m bench.freeze --write``).
PHANTOM_VERSION = "phantoms-1"

#: Scenario names, in the order of docs/PROTOCOLS.md.
SCENARIOS: tuple[str, ...] = tuple(_BUILDERS)

#: Default grid spacing (mm) per scenario: 3 mm; 1.25 mm for the small SRS targets (half the
#: 2.5 mm beamlet of an HD120 MLC, within the 1-1.5 mm SRS practice).
DEFAULT_SPACING_MM: dict[str, float] = {name: 3.0 for name in SCENARIOS} | {"brain-srs": 1.25}

#: Allowed grid spacing (mm) of every scenario not in :data:`FINE_SPACING_RANGE_MM`.
SPACING_RANGE_MM = (2.0, 5.0)

#: Scenarios that accept a finer grid, and their range (mm). A pelvis or a head-and-neck at
#: 1.25 mm would hold about 14 times the voxels of its 3 mm grid (tens of GB of dose matrix);
#: the SRS head at 1.25 mm peaks at about 2 GB (bench numbers in the brain-srs module).
FINE_SPACING_RANGE_MM: dict[str, tuple[float, float]] = {"brain-srs": (1.0, 5.0)}


def spacing_range_mm(scenario: str) -> tuple[float, float]:
    """Allowed grid spacing (mm) of ``scenario``: 1-5 mm for ``brain-srs``, 2-5 mm otherwise."""
    return FINE_SPACING_RANGE_MM.get(scenario, SPACING_RANGE_MM)


def list_scenarios() -> list[str]:
    """Names accepted by :func:`make_case`."""
    return list(SCENARIOS)


def make_case(scenario: str, seed: int = 0, spacing_mm: float | None = None) -> Case:
    """Build the phantom case of ``scenario`` with the anatomical variation of ``seed``.

    Parameters
    ----------
    scenario
        One of :data:`SCENARIOS` (``prostate-basic``, ``liver``, ...).
    seed
        Non-negative integer; the same seed always gives the same case. Seeds vary organ
        sizes (about +-10-15 %), positions (a few mm), shapes and target-OAR overlap.
    spacing_mm
        Isotropic grid spacing within :func:`spacing_range_mm` (2-5 mm; 1-5 mm for
        ``brain-srs``); ``None`` = the scenario's default (:data:`DEFAULT_SPACING_MM`:
        3 mm, 1.25 mm for ``brain-srs``).

    Raises
    ------
    InvalidInput
        Unknown scenario, negative or non-integer seed, spacing outside the scenario's range.
    """
    if scenario not in _BUILDERS:
        raise InvalidInput(
            f"unknown scenario {scenario!r}; known scenarios: {', '.join(SCENARIOS)}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"seed must be an integer >= 0, got {seed!r}")
    spacing = DEFAULT_SPACING_MM[scenario] if spacing_mm is None else spacing_mm
    lo, hi = spacing_range_mm(scenario)
    if isinstance(spacing, bool) or not isinstance(spacing, int | float) or not lo <= spacing <= hi:
        finer = ", ".join(f"{k} {a:g}-{b:g} mm" for k, (a, b) in FINE_SPACING_RANGE_MM.items())
        raise InvalidInput(
            f"spacing_mm must be within {lo:g}-{hi:g} mm for {scenario}, got {spacing_mm!r} "
            f"(finer grids: {finer})"
        )
    return _BUILDERS[scenario](seed, float(spacing))
