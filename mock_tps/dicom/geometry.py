"""The DICOM geometry of a case grid: where its voxels lie in patient coordinates.

The interface between DICOM import and export. A case imported with
:func:`mock_tps.dicom.case_from_dicom.load_dicom` carries one (``DicomImport.geometry``);
an RT Dose written for it uses the same frame of reference and grid.

Axis mapping (head-first supine, axial images with ``ImageOrientationPatient``
``[1, 0, 0, 0, 1, 0]``, the only ones the import accepts): the case grid's axes
``[ix, iy, iz]`` are the DICOM patient axes ``x`` (patient's right -> left), ``y``
(anterior -> posterior) and ``z`` (inferior -> superior), each increasing with the index
(see :mod:`mock_tps.grid`). A DICOM multi-frame image (RT Dose) stores
``[frame, row, column]`` = ``[iz, iy, ix]``: :meth:`DicomGeometry.to_frames` transposes.

For an RT Dose on this grid: ``ImagePositionPatient`` = :attr:`origin_mm` (the centre of
voxel ``(0, 0, 0)``), ``ImageOrientationPatient`` = :attr:`image_orientation_patient`,
``PixelSpacing`` = :attr:`pixel_spacing_mm` (row spacing = ``y``, column spacing = ``x``),
``GridFrameOffsetVector`` = :meth:`frame_offsets_mm`, ``Rows`` x ``Columns`` x
``NumberOfFrames`` = ``ny`` x ``nx`` x ``nz``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from mock_tps.grid import Grid
from rtplan_common.models import FrozenModel

_Mm = Annotated[float, Field(allow_inf_nan=False)]
_SpacingMm = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=1)]
_Uid = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]

#: Row and column direction cosines of an axial head-first-supine image.
AXIAL_HFS: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class DicomGeometry(FrozenModel):
    """A case grid in DICOM patient coordinates, with the CT's frame of reference.

    ``origin_mm`` is the patient position (mm) of the centre of voxel ``(0, 0, 0)``;
    ``spacing_mm`` and ``shape`` are along the grid's ``(x, y, z)`` axes, which are the
    patient axes (module docstring). ``frame_of_reference_uid`` and ``study_instance_uid``
    are the source CT's (``None`` for a case that came from no DICOM); they are UIDs, not
    patient identifiers, but stay out of prompts and reports.
    """

    origin_mm: tuple[_Mm, _Mm, _Mm]
    spacing_mm: tuple[_SpacingMm, _SpacingMm, _SpacingMm]
    shape: tuple[_Count, _Count, _Count]
    patient_position: Literal["HFS"] = "HFS"
    image_orientation_patient: tuple[_Mm, _Mm, _Mm, _Mm, _Mm, _Mm] = AXIAL_HFS
    frame_of_reference_uid: _Uid | None = None
    study_instance_uid: _Uid | None = None

    @classmethod
    def from_grid(
        cls,
        grid: Grid,
        frame_of_reference_uid: str | None = None,
        study_instance_uid: str | None = None,
    ) -> DicomGeometry:
        """The geometry of a case grid (whose axes are the patient axes, HFS)."""
        return cls(
            origin_mm=grid.origin_mm,
            spacing_mm=grid.spacing_mm,
            shape=grid.shape,
            frame_of_reference_uid=frame_of_reference_uid,
            study_instance_uid=study_instance_uid,
        )

    def grid(self) -> Grid:
        """The case grid this geometry describes."""
        return Grid(shape=self.shape, spacing_mm=self.spacing_mm, origin_mm=self.origin_mm)

    @property
    def pixel_spacing_mm(self) -> tuple[float, float]:
        """DICOM ``PixelSpacing``: (row spacing = ``y``, column spacing = ``x``) in mm."""
        return (self.spacing_mm[1], self.spacing_mm[0])

    def frame_offsets_mm(self) -> list[float]:
        """DICOM ``GridFrameOffsetVector``: each frame's ``z`` relative to the first (mm)."""
        return [float(k * self.spacing_mm[2]) for k in range(self.shape[2])]

    def slice_positions_mm(self) -> list[tuple[float, float, float]]:
        """``ImagePositionPatient`` of every axial slice ``iz`` (for a CT series)."""
        x0, y0, z0 = self.origin_mm
        return [(x0, y0, z0 + k * self.spacing_mm[2]) for k in range(self.shape[2])]

    def to_frames(self, array: NDArray[np.generic]) -> NDArray[np.generic]:
        """A grid array ``[ix, iy, iz]`` as DICOM frames ``[frame, row, column]``."""
        if tuple(array.shape) != self.shape:
            raise ValueError(f"array shape {array.shape} is not the grid's {self.shape}")
        return np.ascontiguousarray(array.transpose(2, 1, 0))

    def from_frames(self, frames: NDArray[np.generic]) -> NDArray[np.generic]:
        """DICOM frames ``[frame, row, column]`` as a grid array ``[ix, iy, iz]``."""
        nx, ny, nz = self.shape
        if tuple(frames.shape) != (nz, ny, nx):
            raise ValueError(f"frames shape {frames.shape} is not (nz, ny, nx) = {(nz, ny, nx)}")
        return np.ascontiguousarray(frames.transpose(2, 1, 0))
