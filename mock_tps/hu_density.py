"""CT numbers (HU) to relative electron density through a calibration curve.

The default curve is a standard bilinear one (water 1.0 at 0 HU, air 0 at -1000 HU, a bone
slope of 0.5 per 1000 HU above water) capped at cortical bone (relative electron density
:data:`mock_tps.phantoms.common.BONE_CORTICAL`, reached at 1600 HU). Dental fillings and
implants reach far beyond cortical bone (an OpenKBP patient reaches about 18,800 HU); a
pencil-beam engine without a metal model would attenuate through them as through lead, so
clinics override them, and the curve caps them instead: the voxels capped are counted.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from mock_tps.phantoms.common import BONE_CORTICAL
from rtplan_common.models import FrozenModel

_Finite = Annotated[float, Field(allow_inf_nan=False)]


class HuDensityCurve(FrozenModel):
    """A piecewise-linear HU -> relative electron density curve, capped at ``max_density``.

    ``hu`` must increase strictly; below the first point the first density holds, above the
    last point the last one; every density is clipped to ``[0, max_density]``.
    """

    hu: Annotated[list[_Finite], Field(min_length=2)]
    relative_density: Annotated[
        list[Annotated[_Finite, Field(ge=0.0, le=20.0)]], Field(min_length=2)
    ]
    max_density: Annotated[float, Field(gt=0.0, le=20.0)] = BONE_CORTICAL

    @model_validator(mode="after")
    def _check(self) -> HuDensityCurve:
        if len(self.hu) != len(self.relative_density):
            raise ValueError(
                f"hu has {len(self.hu)} points and relative_density {len(self.relative_density)}: "
                "give one density per CT number"
            )
        if any(b <= a for a, b in zip(self.hu, self.hu[1:], strict=False)):
            raise ValueError(f"hu must increase strictly, got {self.hu}")
        return self

    @property
    def cap_hu(self) -> float:
        """The CT number from which the curve is capped at ``max_density`` (inf if never)."""
        dens = np.minimum(np.asarray(self.relative_density), self.max_density)
        hit = np.flatnonzero(dens >= self.max_density)
        if hit.size == 0:
            return float("inf")
        i = int(hit[0])
        if i == 0:
            return float(self.hu[0])
        h0, h1 = self.hu[i - 1], self.hu[i]
        d0, d1 = self.relative_density[i - 1], self.relative_density[i]
        return float(h0 + (self.max_density - d0) * (h1 - h0) / (d1 - d0))

    def density(self, hu: NDArray[np.floating]) -> NDArray[np.float32]:
        """Relative electron density of every CT number (same shape)."""
        red = np.interp(np.asarray(hu, dtype=np.float64), self.hu, self.relative_density)
        return np.clip(red, 0.0, self.max_density).astype(np.float32)

    def n_capped(self, hu: NDArray[np.floating]) -> int:
        """How many CT numbers lie above :attr:`cap_hu` (their density was capped)."""
        return int(np.count_nonzero(np.asarray(hu) > self.cap_hu))


#: The default curve: air -1000 HU -> 0, water 0 HU -> 1, bone slope 0.5 / 1000 HU, capped
#: at cortical bone (1.8 at 1600 HU).
DEFAULT_CURVE = HuDensityCurve(
    hu=[-1000.0, 0.0, 1600.0, 3000.0],
    relative_density=[0.0, 1.0, 1.8, 2.5],
    max_density=BONE_CORTICAL,
)
