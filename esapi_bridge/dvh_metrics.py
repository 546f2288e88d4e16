"""Plan-quality indices computed from DVH curves (so that any backend's DVHs serve).

Definitions follow ``PROTOCOLS.md``: HI (ICRU 83) = (D2% - D98%) / D50%;
Paddick CI = TV_PIV^2 / (TV x PIV); RTOG CI = PIV / TV; gradient index =
PIV_50% / PIV_100%. PIV (prescription isodose volume) is read from the body's DVH.
"""

from __future__ import annotations

from esapi_bridge.dto import DvhCurve


def homogeneity_index(target: DvhCurve) -> float:
    """ICRU 83 homogeneity index (D2 - D98) / D50 of a target (0 is ideal)."""
    d50 = target.dose_at_volume_pct(50.0)
    if d50 <= 0.0:
        raise ValueError(f"{target.structure_id}: D50 is zero, the homogeneity index is undefined")
    return (target.dose_at_volume_pct(2.0) - target.dose_at_volume_pct(98.0)) / d50


def paddick_ci(target: DvhCurve, body: DvhCurve, prescription_gy: float) -> float:
    """Paddick conformity index TV_PIV^2 / (TV x PIV) at ``prescription_gy`` (1 is ideal)."""
    piv = body.volume_cm3_at_dose(prescription_gy)
    if piv <= 0.0:
        return 0.0
    tv_piv = target.volume_cm3_at_dose(prescription_gy)
    return tv_piv**2 / (target.volume_cm3 * piv)


def rtog_ci(target: DvhCurve, body: DvhCurve, prescription_gy: float) -> float:
    """RTOG conformity index PIV / TV (1 is ideal)."""
    return body.volume_cm3_at_dose(prescription_gy) / target.volume_cm3


def gradient_index(body: DvhCurve, prescription_gy: float) -> float:
    """Gradient index PIV(50 % Rx) / PIV(100 % Rx); infinite when nothing receives Rx."""
    piv100 = body.volume_cm3_at_dose(prescription_gy)
    if piv100 <= 0.0:
        return float("inf")
    return body.volume_cm3_at_dose(0.5 * prescription_gy) / piv100
