"""The final plan's 3D dose, kept with its session as ``dose_final.npz``.

What an export needs and the journal does not hold: the dose (Gy) on the case grid, the
grid's geometry, the structures' masks (for our DVHs and a structure set of a phantom), the
prescription, the beams and the case source (a kind and a content hash; never a path or a
patient identifier). Written at the end of a session by the composition root
(:mod:`agent.cli.export`), read by ``rtplan export``.

File layout (``numpy.savez_compressed``, read with ``allow_pickle=False``): ``dose_gy``
(float32 ``[ix, iy, iz]``), ``mask_<k>`` (``numpy.packbits`` of structure ``k``'s mask in C
order) and ``meta`` (the JSON of :class:`FinalDoseMeta`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, ValidationError

from esapi_bridge.dto import CaseSource, Technique
from esapi_bridge.errors import DoseUnavailable, InvalidInput
from mock_tps.case import Case
from mock_tps.grid import Grid
from mock_tps.session import MockTpsSession
from rtplan_common.models import FrozenModel

#: The file name of the final dose in a session directory.
FINAL_DOSE_FILENAME = "dose_final.npz"

_Mm = Annotated[float, Field(allow_inf_nan=False)]
_Deg = Annotated[float, Field(ge=-360.0, le=360.0, allow_inf_nan=False)]


class BeamMeta(FrozenModel):
    """One field (or VMAT control point): gantry and couch angles (degrees, IEC 61217)."""

    gantry_deg: _Deg
    couch_deg: _Deg = 0.0


class StructureMeta(FrozenModel):
    """A structure's id and DICOM type (``PTV``, ``ORGAN``, ``EXTERNAL``, ``CONTROL``)."""

    structure_id: str
    dicom_type: str


class FinalDoseMeta(FrozenModel):
    """Everything of ``dose_final.npz`` but the arrays."""

    format_version: Literal[1] = 1
    plan_id: str
    origin_mm: tuple[_Mm, _Mm, _Mm]
    spacing_mm: tuple[_Mm, _Mm, _Mm]
    shape: tuple[int, int, int]
    total_dose_gy: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    fractions: Annotated[int, Field(ge=1)]
    target_id: str
    technique: Technique
    isocenter_mm: tuple[_Mm, _Mm, _Mm]
    beams: tuple[BeamMeta, ...]
    structures: tuple[StructureMeta, ...]
    body_id: str
    case_source: CaseSource | None = None

    def grid(self) -> Grid:
        """The case grid of the dose."""
        return Grid(shape=self.shape, spacing_mm=self.spacing_mm, origin_mm=self.origin_mm)


@dataclass(frozen=True)
class FinalDose:
    """A session's final dose with its grid, structures, prescription, beams and source."""

    meta: FinalDoseMeta
    dose_gy: NDArray[np.float32]
    masks: dict[str, NDArray[np.bool_]]

    def __post_init__(self) -> None:
        if tuple(self.dose_gy.shape) != self.meta.shape:
            raise InvalidInput(
                f"final dose shape {self.dose_gy.shape} is not the grid's {self.meta.shape}"
            )
        for sid, mask in self.masks.items():
            if tuple(mask.shape) != self.meta.shape:
                raise InvalidInput(f"mask of {sid!r} has shape {mask.shape}, not the grid's")

    @property
    def grid(self) -> Grid:
        """The case grid."""
        return self.meta.grid()


def final_dose_of(session: MockTpsSession) -> FinalDose:
    """The current plan's dose of a simulated-TPS session (raises :class:`DoseUnavailable`)."""
    backend = session.plan_info().backend
    return final_dose_from_case(
        session.case, session.dose_grid(), None if backend is None else backend.case_source
    )


def final_dose_from_case(
    case: Case, dose_gy: NDArray[np.floating], case_source: CaseSource | None
) -> FinalDose:
    """A dose on a case's grid with the case's structures, prescription and beams."""
    grid, beams, rx = case.grid, case.beams, case.prescription
    meta = FinalDoseMeta(
        plan_id=case.name,
        origin_mm=grid.origin_mm,
        spacing_mm=grid.spacing_mm,
        shape=grid.shape,
        total_dose_gy=rx.total_dose_gy,
        fractions=rx.fractions,
        target_id=rx.target_id,
        technique=beams.technique,
        isocenter_mm=beams.isocenter_mm,
        beams=tuple(BeamMeta(gantry_deg=b.gantry_deg, couch_deg=b.couch_deg) for b in beams.beams),
        structures=tuple(
            StructureMeta(structure_id=sid, dicom_type=s.dicom_type)
            for sid, s in case.structures.items()
        ),
        body_id=case.body_id,
        case_source=case_source,
    )
    masks = {sid: np.asarray(s.mask, dtype=bool) for sid, s in case.structures.items()}
    dose = np.ascontiguousarray(dose_gy, dtype=np.float32)
    return FinalDose(meta=meta, dose_gy=dose, masks=masks)


def save_final_dose(final: FinalDose, path: str | Path) -> Path:
    """Write ``final`` to ``path`` (atomically: a temporary file renamed into place)."""
    out = Path(path)
    arrays: dict[str, NDArray[np.generic]] = {
        "dose_gy": final.dose_gy,
        "meta": np.array(final.meta.model_dump_json()),
    }
    for k, s in enumerate(final.meta.structures):
        arrays[f"mask_{k}"] = np.packbits(final.masks[s.structure_id].ravel())
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, out)
    return out


def load_final_dose(path: str | Path) -> FinalDose:
    """Read a ``dose_final.npz``.

    Raises
    ------
    DoseUnavailable
        The file does not exist.
    InvalidInput
        The file is not a readable final dose of this format.
    """
    file = Path(path)
    if not file.is_file():
        raise DoseUnavailable(
            f"no final dose ({file.name}) in the session directory: sessions planned before "
            "the export existed, or that ended without a plan, have none; plan the case again"
        )
    try:
        with np.load(file, allow_pickle=False) as data:
            meta = FinalDoseMeta.model_validate_json(str(data["meta"]))
            dose = np.asarray(data["dose_gy"], dtype=np.float32)
            n = int(np.prod(meta.shape))
            masks = {
                s.structure_id: np.unpackbits(data[f"mask_{k}"], count=n)
                .astype(bool)
                .reshape(meta.shape)
                for k, s in enumerate(meta.structures)
            }
    except (OSError, ValueError, KeyError, ValidationError) as exc:
        raise InvalidInput(
            f"{file.name} is not a readable final dose ({type(exc).__name__}: {exc}); "
            "plan the case again to write a new one"
        ) from None
    return FinalDose(meta=meta, dose_gy=dose, masks=masks)
