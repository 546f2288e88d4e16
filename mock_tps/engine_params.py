"""Physics parameters of the 6 MV pencil-beam engine (see :mod:`mock_tps.kernel`).

The defaults of the fitted fields (21, :data:`FITTED_FIELDS`) come from ``bench/fit_beam.py``
(least squares on the measured TrueBeam 6X depth doses and profiles of the 4 x 4, 10 x 10 and
30 x 30 cm fields, their output factors and the 15 x 15 cm one; result in
``bench/results/beam_fit.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from esapi_bridge.errors import InvalidInput

_RANGES: dict[str, tuple[float, float]] = {
    "surface_dose_fraction": (0.0, 1.0),
    "buildup_coefficient_per_mm": (0.01, 5.0),
    "attenuation_coefficient_per_mm": (0.0, 0.05),
    "softening_at_10cm": (-1.0, 2.0),
    "sigma_at_surface_mm": (0.3, 20.0),
    "sigma_growth_mm_per_mm": (0.0, 0.2),
    "source_sigma_mm": (0.0, 5.0),
    "detector_sigma_mm": (0.0, 5.0),
    "scatter_near_per_10cm": (0.0, 5.0),
    "scatter_near_sigma_mm": (1.0, 300.0),
    "scatter_near_growth_mm_per_mm": (0.0, 2.0),
    "scatter_far_per_10cm": (0.0, 5.0),
    "scatter_far_length_mm": (1.0, 500.0),
    "scatter_far_length_growth_mm_per_mm": (0.0, 3.0),
    "scatter_buildup_coefficient_per_mm": (0.001, 10.0),
    "scatter_depth_offset_mm": (0.0, 300.0),
    "extra_focal_fraction": (0.0, 1.0),
    "extra_focal_sigma_mm": (1.0, 300.0),
    "extra_focal_aspect": (0.2, 5.0),
    "extra_focal_broad_fraction": (0.0, 1.0),
    "extra_focal_broad_sigma_mm": (1.0, 500.0),
    "horn_at_10cm": (-0.5, 1.0),
    "contamination_fraction": (0.0, 2.0),
    "contamination_depth_mm": (0.5, 100.0),
    "contamination_sigma_mm": (1.0, 300.0),
    "collimator_transmission": (0.0, 0.1),
    "output_gy_per_unit_weight": (1e-6, 1e6),
    "dose_cutoff_fraction": (0.0, 0.1),
    "ray_step_fraction": (0.1, 2.0),
    "broad_grid_mm": (2.0, 40.0),
    "broad_column_mm": (0.0, 40.0),
    "arc_group_deg": (0.0, 30.0),
    "density_length_mm": (0.0, 50.0),
    "max_lateral_scale": (1.0, 10.0),
}

#: Fields fitted to the measured beam data by ``bench/fit_beam.py`` (the model's fitted parameters).
FITTED_FIELDS: tuple[str, ...] = (
    "surface_dose_fraction",
    "buildup_coefficient_per_mm",
    "attenuation_coefficient_per_mm",
    "softening_at_10cm",
    "sigma_at_surface_mm",
    "sigma_growth_mm_per_mm",
    "scatter_near_per_10cm",
    "scatter_near_growth_mm_per_mm",
    "scatter_far_per_10cm",
    "scatter_far_length_mm",
    "scatter_far_length_growth_mm_per_mm",
    "scatter_buildup_coefficient_per_mm",
    "scatter_depth_offset_mm",
    "extra_focal_fraction",
    "extra_focal_sigma_mm",
    "extra_focal_broad_fraction",
    "extra_focal_broad_sigma_mm",
    "horn_at_10cm",
    "contamination_fraction",
    "contamination_depth_mm",
    "contamination_sigma_mm",
)


@dataclass(frozen=True)
class EngineParams:
    """Physics and engineering knobs of the pencil-beam engine (6 MV). ``repr`` feeds the cache key.

    Per unit fluence of one beamlet, at water-equivalent depth ``d`` (mm), the dose is a sum of
    lateral Gaussians (convolved with the square beamlet) times depth amplitudes
    (:mod:`mock_tps.kernel` has the formulas):

    - primary: ``[1 - (1 - surface_dose_fraction) exp(-buildup d)] exp(-mu d (1 + softening r^2))``
      with sigma ``hypot(source_sigma_mm, detector_sigma_mm, (sigma_at_surface_mm +
      sigma_growth d) * s)``, where ``s = 1 / rho_eff`` (the density over the last
      ``density_length_mm`` of the ray, at most ``max_lateral_scale``): the electrons' lateral
      spread widens in lung, the source's and the detector's blur do not. ``detector_sigma_mm``
      (1.73 mm, not fitted) is the CC13 chamber of the measured data (6 mm cavity: 6 / sqrt 12);
    - phantom scatter, near and far: ``per_10cm (d + scatter_depth_offset_mm) / 100 mm *
      (1 - exp(-scatter_buildup d))`` times the primary attenuation (the offset is the scatter,
      backscatter included, that reaches the depth of maximum), sigma
      ``scatter_*_sigma_mm + growth d``; the far one is ``exp(-r / lambda) / r`` with
      ``lambda = scatter_far_length_mm + growth d``;
    - head scatter: an extra-focal fluence ``extra_focal_fraction`` around each beamlet (Gaussian,
      ``extra_focal_sigma_mm`` in the isocenter plane across the leaves, ``extra_focal_aspect``
      times that along them), and a broad one (the flattening filter, ``extra_focal_broad_*``),
      carried by the same components;
    - every broad component carries its beamlet's off-axis softening (the scatter that reaches
      the axis from the edge of a large field left it with the edge's softer spectrum);
    - electron contamination: ``contamination_fraction exp(-d / contamination_depth_mm)``, sigma
      ``contamination_sigma_mm``.

    ``r`` is the off-axis distance in the isocenter plane in units of 10 cm; each beamlet's fluence
    carries the horn ``1 + horn_at_10cm r^2``. ``collimator_transmission``: the fraction of the
    beam's mean fluence that reaches closed beamlets of the beam through the MLC (1.6 %: Kim et al,
    Med Phys 28:2497 (2001), Varian 120-leaf MLC at 6 MV, leakage dose at 5 cm depth for a
    10 x 10 cm field, measured within 0.1 % of it). ``extra_focal_aspect`` (1.6) is the ratio of
    the magnifications of the extra-focal source through the upper and the lower jaws (not
    fitted: squares cannot tell it; the rectangular output factors test it).

    Absolute scale: unit weight on every beamlet of a 10 x 10 cm field at SSD 100 cm gives
    ``output_gy_per_unit_weight * (SAD / (SAD + dmax))^2`` at the central-axis maximum.

    Engineering: entries of the primary below ``dose_cutoff_fraction`` of their beamlet's maximum
    are dropped (their dose given back to the kept entries of the voxel); the broad components are
    computed on a grid of about ``broad_grid_mm`` and interpolated, for columns of about
    ``broad_column_mm`` (squares of beamlets; 0: one per beamlet); control points of an arc
    within ``arc_group_deg`` share their broad columns (0: never); ``ray_step_fraction`` sets the
    radiological-depth ray lattice (fraction of the smallest voxel spacing).
    """

    surface_dose_fraction: float = 0.301
    buildup_coefficient_per_mm: float = 0.2318
    attenuation_coefficient_per_mm: float = 0.00471
    softening_at_10cm: float = 0.0519
    sigma_at_surface_mm: float = 1.969
    sigma_growth_mm_per_mm: float = 0.001827
    source_sigma_mm: float = 1.0
    detector_sigma_mm: float = 1.73
    scatter_near_per_10cm: float = 0.05333
    scatter_near_sigma_mm: float = 20.0
    scatter_near_growth_mm_per_mm: float = 0.1858
    scatter_far_per_10cm: float = 0.2537
    scatter_far_length_mm: float = 80.0
    scatter_far_length_growth_mm_per_mm: float = 0.2441
    scatter_buildup_coefficient_per_mm: float = 0.07512
    scatter_depth_offset_mm: float = 34.07
    extra_focal_fraction: float = 0.1057
    extra_focal_sigma_mm: float = 12.74
    extra_focal_aspect: float = 1.6
    extra_focal_broad_fraction: float = 0.2132
    extra_focal_broad_sigma_mm: float = 230.9
    horn_at_10cm: float = 0.07003
    contamination_fraction: float = 0.3343
    contamination_depth_mm: float = 8.494
    contamination_sigma_mm: float = 51.9
    collimator_transmission: float = 0.016
    output_gy_per_unit_weight: float = 1.0
    dose_cutoff_fraction: float = 1e-3
    ray_step_fraction: float = 1.0
    broad_grid_mm: float = 10.0
    broad_column_mm: float = 10.0
    arc_group_deg: float = 10.0
    density_length_mm: float = 10.0
    max_lateral_scale: float = 4.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            lo, hi = _RANGES[f.name]
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and lo <= value <= hi):
                raise InvalidInput(
                    f"EngineParams.{f.name} must be within {lo:g}..{hi:g}, got {value!r}"
                )

    def fitted(self) -> dict[str, float]:
        """The fitted parameters (:data:`FITTED_FIELDS`) and their values."""
        return {name: float(getattr(self, name)) for name in FITTED_FIELDS}
