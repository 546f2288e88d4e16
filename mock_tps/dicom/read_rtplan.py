"""The isocenter and beam angles of an RT Plan (optional in a DICOM case folder).

From the treatment beams of ``BeamSequence`` (``TreatmentDeliveryType`` TREATMENT or absent):
the first control point's ``IsocenterPosition`` (one isocenter for all beams, else refused),
``GantryAngle`` and ``PatientSupportAngle`` (the couch), and whether a beam is an arc
(``GantryRotationDirection`` CW or CC on its first control point). The plan's
``FrameOfReferenceUID`` must be the CT's.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from esapi_bridge.errors import InvalidInput

_FIX = "pass the RT Plan made on this CT, or leave it out (the template's beams are used)"


@dataclass(frozen=True)
class PlanBeams:
    """What the import takes from an RT Plan: isocenter (mm) and (gantry, couch) angles."""

    isocenter_mm: tuple[float, float, float]
    angles_deg: tuple[tuple[float, float], ...]
    has_arcs: bool


def read_plan_beams(rtplan: Dataset, ct_frame_uid: str) -> PlanBeams:
    """Isocenter and beam angles of an RT Plan drawn on the CT of ``ct_frame_uid``.

    Raises
    ------
    InvalidInput
        Another frame of reference, no treatment beam, a beam without isocenter or angle,
        several isocenters.
    """
    frame = str(getattr(rtplan, "FrameOfReferenceUID", ""))
    if frame and frame != ct_frame_uid:
        raise InvalidInput(f"the RT Plan's FrameOfReferenceUID differs from the CT's; {_FIX}")
    isocenters: set[tuple[float, float, float]] = set()
    angles: list[tuple[float, float]] = []
    arcs = False
    for beam in getattr(rtplan, "BeamSequence", []):
        if str(getattr(beam, "TreatmentDeliveryType", "TREATMENT")).upper() != "TREATMENT":
            continue
        points = getattr(beam, "ControlPointSequence", [])
        first = points[0] if len(points) else None
        if first is None or "IsocenterPosition" not in first or "GantryAngle" not in first:
            raise InvalidInput(f"an RT Plan beam has no isocenter or gantry angle; {_FIX}")
        iso = tuple(round(float(v), 3) for v in first.IsocenterPosition)
        if len(iso) != 3:
            raise InvalidInput(f"an RT Plan beam's IsocenterPosition is not x, y, z; {_FIX}")
        isocenters.add((iso[0], iso[1], iso[2]))
        couch = float(getattr(first, "PatientSupportAngle", 0.0) or 0.0)
        angles.append((float(first.GantryAngle), couch))
        rotation = str(getattr(first, "GantryRotationDirection", "NONE")).upper()
        arcs = arcs or rotation in {"CW", "CC"}
    if not angles:
        raise InvalidInput(f"the RT Plan has no treatment beam; {_FIX}")
    if len(isocenters) > 1:
        raise InvalidInput(
            f"the RT Plan has {len(isocenters)} isocenters; the simulated TPS plans one; {_FIX}"
        )
    return PlanBeams(isocenter_mm=isocenters.pop(), angles_deg=tuple(angles), has_arcs=arcs)
