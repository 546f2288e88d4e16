"""The DICOM geometry of a case grid (#13): the import/export interface."""

from __future__ import annotations

import numpy as np
import pytest

from mock_tps.dicom.geometry import AXIAL_HFS, DicomGeometry
from mock_tps.grid import Grid


def test_geometry_round_trips_a_grid_and_its_frames() -> None:
    grid = Grid(shape=(4, 3, 2), spacing_mm=(2.0, 2.5, 3.0), origin_mm=(-10.0, 5.0, 100.0))
    geo = DicomGeometry.from_grid(grid, frame_of_reference_uid="1.2.3", study_instance_uid="1.2.4")
    assert geo.grid() == grid
    assert geo.pixel_spacing_mm == (2.5, 2.0)  # (row = y, column = x)
    assert geo.frame_offsets_mm() == [0.0, 3.0]
    assert geo.slice_positions_mm()[1] == (-10.0, 5.0, 103.0)
    assert geo.image_orientation_patient == AXIAL_HFS
    a = np.arange(24).reshape(4, 3, 2)
    frames = geo.to_frames(a)
    assert frames.shape == (2, 3, 4) and frames[1, 2, 3] == a[3, 2, 1]
    assert np.array_equal(geo.from_frames(frames), a)
    with pytest.raises(ValueError, match="not the grid's"):
        geo.to_frames(a.T)
    assert DicomGeometry.model_validate_json(geo.model_dump_json()) == geo
