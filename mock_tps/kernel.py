"""The field-size-agnostic 6 MV pencil-beam kernel: depth amplitudes and lateral widths.

Dose of one square beamlet (side ``s``, centre ``(x_j, y_j)`` in the isocenter plane, unit
weight) at a point with isocenter-plane coordinates ``(X, Y)``, central-axis distance ``L`` from
the source and water-equivalent depth ``d``::

    D = N * (SAD / L)^2 * H(x_j, y_j) * sum_c A_c(d) S_c(d, r_j) F(X - x_j; su_c) F(Y - y_j; sv_c)

with ``F(x; sigma) = [erf((x + s/2) / (sqrt2 sigma)) - erf((x - s/2) / (sqrt2 sigma))] / 2`` (the
beamlet aperture convolved with a Gaussian), ``H = 1 + horn r^2`` the beam's off-axis fluence
(horns), ``S_c = exp(-mu softening d r_j^2)`` the off-axis softening of the beamlet's own spectrum
(for the primary the point's, which is the same place), ``N`` the normalization of
:func:`normalization`, and nine components ``c`` (:class:`mock_tps.engine_params.EngineParams`
lists them): the primary (narrow: the sparse fine matrix of :mod:`mock_tps.pencil_beam`) and
eight broad ones (near scatter, far scatter as three Gaussians, the two extra-focal images, the
flattening-filter source, electron contamination: the coarse operator of :mod:`mock_tps.scatter`).
Nothing here knows a field size: the depth dose, profiles and output factors of a field follow
from the superposition of its beamlets.

Widths are isocenter-plane sigmas (the phantom's widths at depth scaled by ``SAD / L``); the
extra-focal and contamination widths are defined in the isocenter plane.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from mock_tps.engine_params import EngineParams

F64 = NDArray[np.float64]
SAD_MM = 1000.0
#: Number of broad components (rows of :func:`broad_components`).
N_BROAD = 8
#: exp(-r / lambda) / r (the far scatter, normalized over the plane) as three Gaussians: their
#: sigmas in units of lambda and weights (least squares on the radial density out to 8 lambda;
#: weights rescaled to sum 1, the deficit near r = 0 lies under the primary).
FAR_SIGMAS = (0.0597, 0.2706, 0.9309)
FAR_WEIGHTS = (0.0801 / 0.9114, 0.2773 / 0.9114, 0.5540 / 0.9114)
_SQRT2 = math.sqrt(2.0)


def _f(x: NDArray[np.floating]) -> F64:
    return np.asarray(x, dtype=np.float64)


def horn(p: EngineParams, x_mm: NDArray[np.floating], y_mm: NDArray[np.floating]) -> F64:
    """Relative fluence ``1 + horn_at_10cm r^2`` at isocenter-plane position (r in 10 cm)."""
    r2 = (_f(x_mm) ** 2 + _f(y_mm) ** 2) * 1e-4
    return np.asarray(1.0 + p.horn_at_10cm * r2, dtype=np.float64)


def attenuation(p: EngineParams, depth_mm: NDArray[np.floating], r2: NDArray[np.floating]) -> F64:
    """Primary attenuation with off-axis softening (``r2``: off-axis distance^2 in (10 cm)^2)."""
    mu = p.attenuation_coefficient_per_mm * (1.0 + p.softening_at_10cm * _f(r2))
    return np.asarray(np.exp(-mu * _f(depth_mm)), dtype=np.float64)


def primary_amplitude(
    p: EngineParams, depth_mm: NDArray[np.floating], r2: NDArray[np.floating]
) -> F64:
    """Primary depth amplitude (build-up times attenuation), not normalized."""
    d = _f(depth_mm)
    build = 1.0 - (1.0 - p.surface_dose_fraction) * np.exp(-p.buildup_coefficient_per_mm * d)
    return np.asarray(build * attenuation(p, d, r2), dtype=np.float64)


def lateral_scale(p: EngineParams, density_eff: NDArray[np.floating]) -> F64:
    """Factor ``1 / rho_eff`` (at most ``max_lateral_scale``, at least 1/10) on the electron spread."""
    rho = np.maximum(_f(density_eff), 1.0 / p.max_lateral_scale)
    return np.asarray(np.clip(1.0 / rho, 0.1, p.max_lateral_scale), dtype=np.float64)


def primary_sigma_mm(
    p: EngineParams,
    depth_mm: NDArray[np.floating],
    dist_mm: NDArray[np.floating],
    scale: NDArray[np.floating] | float = 1.0,
) -> F64:
    """Isocenter-plane sigma of the primary; ``scale`` (1 / density) widens the electron part
    (the source and the detector blur do not scale)."""
    growth: F64 = p.sigma_growth_mm_per_mm * _f(depth_mm)
    electron: F64 = (p.sigma_at_surface_mm + growth) * np.asarray(scale, dtype=np.float64)
    fixed = math.hypot(p.source_sigma_mm, p.detector_sigma_mm)  # not density-scaled
    at_depth = np.hypot(fixed, electron)
    return np.asarray(at_depth * (SAD_MM / _f(dist_mm)), dtype=np.float64)


def broad_components(
    p: EngineParams,
    depth_mm: NDArray[np.floating],
    dist_mm: NDArray[np.floating],
) -> tuple[F64, F64, F64, F64]:
    """Amplitudes, isocenter-plane sigmas (u, v) and softening of the broad components, each
    of shape (N_BROAD, n).

    Rows: near scatter; far scatter (``exp(-r / lambda) / r`` as three Gaussians, carrying the
    far scatter of the extra-focal fluence too); extra-focal images of the primary and of the
    near scatter; the flattening-filter source; electron contamination (not normalized, as
    :func:`primary_amplitude`). The off-axis softening is the beamlet's, not the point's: the
    dose of a beamlet at isocenter-plane position ``(u, v)`` carries
    ``exp(-soft (u^2 + v^2) / (100 mm)^2)`` on top of the amplitude (the scatter that reaches
    the axis from the edge of a large field left it with the edge's softer spectrum).
    """
    d = _f(depth_mm)
    proj = SAD_MM / _f(dist_mm)
    no_r = np.zeros_like(d)
    att = attenuation(p, d, no_r)
    build = 1.0 - np.exp(-p.scatter_buildup_coefficient_per_mm * d)
    lever = (d + p.scatter_depth_offset_mm) / 100.0
    a_near = att * build * p.scatter_near_per_10cm * lever
    ef = p.extra_focal_fraction
    a_far = att * build * p.scatter_far_per_10cm * lever * (1.0 + ef + p.extra_focal_broad_fraction)
    s_prim = primary_sigma_mm(p, d, dist_mm)
    s_near = (p.scatter_near_sigma_mm + p.scatter_near_growth_mm_per_mm * d) * proj
    lam = (p.scatter_far_length_mm + p.scatter_far_length_growth_mm_per_mm * d) * proj
    a_prim = primary_amplitude(p, d, no_r)
    ef_u, ef_v = p.extra_focal_sigma_mm, p.extra_focal_sigma_mm * p.extra_focal_aspect
    a_cont = p.contamination_fraction * np.exp(-d / p.contamination_depth_mm)
    s_cont = np.full_like(d, p.contamination_sigma_mm)
    far_a = [a_far * w for w in FAR_WEIGHTS]
    far_s = [lam * t for t in FAR_SIGMAS]
    eb = p.extra_focal_broad_fraction
    b_u, b_v = p.extra_focal_broad_sigma_mm, p.extra_focal_broad_sigma_mm * p.extra_focal_aspect
    amp = np.stack([a_near, *far_a, ef * a_prim, ef * a_near, eb * (a_prim + a_near), a_cont])
    sig_u = np.stack(
        [
            s_near,
            *far_s,
            np.hypot(s_prim, ef_u),
            np.hypot(s_near, ef_u),
            np.hypot(s_near, b_u),
            s_cont,
        ]
    )
    sig_v = np.stack(
        [
            s_near,
            *far_s,
            np.hypot(s_prim, ef_v),
            np.hypot(s_near, ef_v),
            np.hypot(s_near, b_v),
            s_cont,
        ]
    )
    soft_row = p.attenuation_coefficient_per_mm * p.softening_at_10cm * d
    soft = np.stack([soft_row] * (N_BROAD - 1) + [np.zeros_like(d)])
    return amp, sig_u, sig_v, soft


def box_factor(x_mm: NDArray[np.floating], half_mm: float, sigma_mm: NDArray[np.floating]) -> F64:
    """A segment of half-width ``half_mm`` convolved with a unit Gaussian, at offset ``x_mm``."""
    s = _SQRT2 * np.maximum(_f(sigma_mm), 1e-6)
    x = _f(x_mm)
    from scipy import special  # local: keeps import time of this module small

    return np.asarray(0.5 * (special.erf((x + half_mm) / s) - special.erf((x - half_mm) / s)))


def field_dose_raw(
    p: EngineParams,
    x_mm: F64,
    y_mm: F64,
    depth_mm: F64,
    dist_mm: F64,
    centres_u_mm: F64,
    centres_v_mm: F64,
    beamlet_mm: float,
    scale: F64 | float = 1.0,
) -> F64:
    """Dose (not normalized) of unit weights on the beamlet grid ``centres_u x centres_v``.

    ``x_mm``, ``y_mm``: isocenter-plane coordinates of the points; the sum over beamlets is exact
    (the horn is a polynomial, so the 2D sum splits into 1D sums).
    """
    half = 0.5 * beamlet_mm
    r2 = (x_mm**2 + y_mm**2) * 1e-4
    amp_b, su_b, sv_b, soft_b = broad_components(p, depth_mm, dist_mm)
    amp = np.vstack([primary_amplitude(p, depth_mm, r2)[None, :], amp_b])
    s_prim = primary_sigma_mm(p, depth_mm, dist_mm, scale)
    su = np.vstack([s_prim[None, :], su_b])
    sv = np.vstack([s_prim[None, :], sv_b])
    soft = np.vstack([np.zeros_like(depth_mm)[None, :], soft_b])[:, :, None] * 1e-4
    cu = centres_u_mm[None, None, :]
    cv = centres_v_mm[None, None, :]
    fu = box_factor(x_mm[None, :, None] - cu, half, su[:, :, None])  # (comp, pts, beamlets)
    fv = box_factor(y_mm[None, :, None] - cv, half, sv[:, :, None])
    fu *= np.exp(-soft * cu**2)
    fv *= np.exp(-soft * cv**2)
    h = p.horn_at_10cm * 1e-4
    su0, sv0 = fu.sum(axis=2), fv.sum(axis=2)
    su2 = (fu * centres_u_mm**2).sum(axis=2)
    sv2 = (fv * centres_v_mm**2).sum(axis=2)
    lateral = su0 * sv0 + h * (su2 * sv0 + su0 * sv2)
    isq = (SAD_MM / dist_mm) ** 2
    return np.asarray((amp * lateral).sum(axis=0) * isq, dtype=np.float64)


def beamlet_centres_mm(lo_mm: float, hi_mm: float, beamlet_mm: float) -> F64:
    """Centres of the beamlets tiling ``[lo, hi]`` (edges on multiples of the beamlet size)."""
    n = round((hi_mm - lo_mm) / beamlet_mm)
    return np.asarray(lo_mm + beamlet_mm * (np.arange(n) + 0.5), dtype=np.float64)


@lru_cache(maxsize=32)
def normalization(p: EngineParams) -> float:
    """Factor making the 10 x 10 cm field at SSD 100 cm (5 mm beamlets) give
    ``output_gy_per_unit_weight * (SAD / (SAD + dmax))^2`` at its central-axis maximum."""
    depth = np.linspace(5.0, 40.0, 351)
    zeros = np.zeros_like(depth)
    centres = beamlet_centres_mm(-50.0, 50.0, 5.0)
    raw = field_dose_raw(p, zeros, zeros, depth, SAD_MM + depth, centres, centres, 5.0)
    k = int(np.argmax(raw))
    dmax = float(depth[k])
    return float(p.output_gy_per_unit_weight * (SAD_MM / (SAD_MM + dmax)) ** 2 / raw[k])
