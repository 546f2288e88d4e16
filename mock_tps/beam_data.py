"""Measured 6 MV water data (TrueBeam 6X golden beam data) and the model's values to compare.

Used by the beam fit (``bench/fit_beam.py``) and the physics tests. The data file is the copy in
``tests/data/beam-6x/`` (see its README for the citation). All lengths in mm; fields are square or
rectangular at SSD 100 cm, defined at the surface (the isocenter plane), with 5 mm beamlets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.errors import InvalidInput
from mock_tps.engine_params import EngineParams
from mock_tps.water import OpenField, SlabPhantom, depth_dose_gy, profile_gy

F64 = NDArray[np.float64]
DATA_FILE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "data"
    / "beam-6x"
    / ("truebeam_6x_golden_beam_data.json")
)
#: Jaw settings (cm) of the output-factor table, in order.
ROF_SIZES_CM: tuple[int, ...] = (3, 4, 5, 7, 10, 15, 20, 30, 40)
SAD_MM = 1000.0
#: The held-out test set of #9 (never fitted): square fields with measured depth doses and
#: output factors, those with measured profiles, and the depths the tests compare at.
TEST_FIELDS_CM = (3, 6, 20, 40)
PROFILE_FIELDS_CM = (3, 6, 20)
TEST_DEPTHS_CM = (5.0, 10.0, 20.0)
#: Distances beyond the geometric field edge of the out-of-field checks.
OUTSIDE_CM = (1.0, 2.0, 3.0, 4.9)


@dataclass(frozen=True)
class MeasuredBeam:
    """The measured tables, lengths converted to mm."""

    pdd_depth_mm: F64
    pdd: dict[int, F64]  # field side (cm) -> % depth dose
    rof: dict[int, tuple[float, ...]]  # u jaw (cm) -> output at v jaw = ROF_SIZES_CM
    profile_offset_mm: dict[float, F64]  # depth (cm) -> off-axis (mm, at depth)
    profile: dict[tuple[float, int], F64]  # (depth cm, field cm) -> % of the axis (nan = none)

    def dmax_mm(self, side_cm: int) -> float:
        """Depth of the measured maximum (mean of the depths within 0.1 point of it)."""
        v = self.pdd[side_cm]
        return float(self.pdd_depth_mm[v >= v.max() - 0.1].mean())

    def output(self, u_cm: int, v_cm: int) -> float:
        """Output factor of a ``u x v`` cm field (u: the table's first jaw pair)."""
        return float(self.rof[u_cm][ROF_SIZES_CM.index(v_cm)])

    def pdd_at(self, side_cm: int, depth_mm: float) -> float:
        """Measured % depth dose at ``depth_mm`` (linear interpolation in the 1 mm table)."""
        return float(np.interp(depth_mm, self.pdd_depth_mm, self.pdd[side_cm]))

    def profile_points(self, depth_cm: float, side_cm: int) -> tuple[F64, F64]:
        """Measured off-axis positions (mm) and values (%) where the table has a value."""
        x = self.profile_offset_mm[depth_cm]
        v = self.profile[(depth_cm, side_cm)]
        ok = np.isfinite(v)
        return x[ok], v[ok]


@lru_cache(maxsize=4)
def load_measured(path: Path = DATA_FILE) -> MeasuredBeam:
    """Read the golden-beam-data JSON (raises :class:`InvalidInput` naming a missing file)."""
    if not path.is_file():
        raise InvalidInput(f"beam data file {path} not found: it ships in tests/data/beam-6x/")
    raw = json.loads(path.read_text())
    pdd = raw["6MV PDD"]
    profile_offset: dict[float, F64] = {}
    profile: dict[tuple[float, int], F64] = {}
    for key, table in raw.items():
        if not key.startswith("6MV profile "):
            continue
        depth_cm = float(key.removeprefix("6MV profile ").removesuffix("cm"))
        profile_offset[depth_cm] = 10.0 * np.asarray(table["Off Axis"], dtype=np.float64)
        for fs, values in table["FS"].items():
            profile[(depth_cm, int(fs.removesuffix("cm")))] = np.asarray(values, dtype=np.float64)
    return MeasuredBeam(
        pdd_depth_mm=10.0 * np.asarray(pdd["Depth"], dtype=np.float64),
        pdd={
            int(k.removesuffix("cm")): np.asarray(v, dtype=np.float64) for k, v in pdd["FS"].items()
        },
        rof={
            int(k.removesuffix("cm")): tuple(float(x) for x in v)
            for k, v in raw["6MV ROF"]["FS"].items()
        },
        profile_offset_mm=profile_offset,
        profile=profile,
    )


def field_edge_mm(side_cm: float, depth_mm: float) -> float:
    """Geometric field edge (half width) at ``depth_mm`` of a field of ``side_cm`` at SSD 100."""
    return 5.0 * side_cm * (SAD_MM + depth_mm) / SAD_MM


_DEPTHS_MM = np.arange(0.0, 400.5, 0.5)


def model_depth_dose(
    u_cm: float, v_cm: float | None = None, p: EngineParams | None = None
) -> tuple[F64, F64]:
    """(depths, dose in Gy per unit weight) on the axis, 0-400 mm in 0.5 mm steps."""
    field = OpenField.rectangle(10.0 * u_cm, 10.0 * (v_cm if v_cm is not None else u_cm))
    return _DEPTHS_MM, depth_dose_gy(_DEPTHS_MM, field, SlabPhantom(), p)


def peak(depth_mm: F64, dose: F64) -> tuple[float, float]:
    """Depth and value of the maximum (parabola through the highest sample and its neighbours)."""
    k = int(np.argmax(dose))
    k = min(max(k, 1), dose.size - 2)
    y0, y1, y2 = dose[k - 1], dose[k], dose[k + 1]
    denom = y0 - 2 * y1 + y2
    shift = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
    h = float(depth_mm[1] - depth_mm[0])
    return float(depth_mm[k] + shift * h), float(y1 - 0.25 * (y0 - y2) * shift)


def model_pdd(side_cm: float, depths_mm: F64, p: EngineParams | None = None) -> F64:
    """Model % depth dose (100 at the maximum) of a square field."""
    d, dose = model_depth_dose(side_cm, None, p)
    _, top = peak(d, dose)
    return np.asarray(100.0 * np.interp(depths_mm, d, dose) / top, dtype=np.float64)


def model_output(u_cm: float, v_cm: float, p: EngineParams | None = None) -> float:
    """Model output factor at the maximum relative to 10 x 10 cm."""
    _, top = peak(*model_depth_dose(u_cm, v_cm, p))
    _, ref = peak(*model_depth_dose(10.0, 10.0, p))
    return top / ref


def model_profile(
    side_cm: float, depth_cm: float, offsets_mm: F64, p: EngineParams | None = None
) -> F64:
    """Model lateral profile (% of the axis) of a square field at ``depth_cm``."""
    field = OpenField.square(10.0 * side_cm)
    x = np.concatenate([[0.0], np.asarray(offsets_mm, dtype=np.float64)])
    dose = profile_gy(x, 10.0 * depth_cm, field, SlabPhantom(), p)
    return np.asarray(100.0 * dose[1:] / dose[0], dtype=np.float64)


def penumbra_80_20_mm(x_mm: F64, percent: F64) -> float:
    """Distance between the 80 % and 20 % points of a falling edge (``x`` ascending)."""
    below = np.flatnonzero(percent < 50.0)
    if below.size == 0 or below[0] == 0:
        raise InvalidInput("the profile has no falling edge through 50 %")
    k = int(below[0])
    lo, hi = max(k - 400, 0), min(k + 400, x_mm.size)
    xs, ps = x_mm[lo:hi][::-1], percent[lo:hi][::-1]  # increasing dose for np.interp
    order = np.argsort(ps, kind="stable")
    return float(np.interp(20.0, ps[order], xs[order]) - np.interp(80.0, ps[order], xs[order]))


def dta_failures(
    x_mm: F64, measured: F64, model_x_mm: F64, model: F64, dose_pts: float, dist_mm: float
) -> F64:
    """Measured points failing ``dose_pts`` / ``dist_mm`` distance-to-agreement (their x)."""
    fails = []
    for xi, di in zip(x_mm, measured, strict=True):
        if abs(float(np.interp(xi, model_x_mm, model)) - di) <= dose_pts:
            continue
        near = np.abs(model_x_mm - xi) <= dist_mm
        if near.any() and model[near].min() <= di <= model[near].max():
            continue
        fails.append(xi)
    return np.asarray(fails, dtype=np.float64)
