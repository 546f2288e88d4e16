"""TG-119 C-shape loader: voxel counts, index conventions, geometry, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from numpy.typing import ArrayLike

from esapi_bridge.dto import Technique
from esapi_bridge.errors import InvalidInput
from mock_tps.case import Case
from mock_tps.tg119 import default_tg119_path, load_tg119
from mock_tps.tg119_fetch import SHA256

#: Voxel counts stated in shared/data/tg119/README.md.
README_COUNTS = {"Core": 1_320, "OuterTarget": 7_458, "BODY": 601_736}


@pytest.fixture(scope="module")
def case(tg119_file: Path) -> Case:
    return load_tg119(tg119_file)


def _write_mat(path: Path, cube: np.ndarray, structures: dict[str, ArrayLike]) -> None:
    """A small matRad-style file: ct struct with cube cell and resolution, cst cell array."""
    cst = np.empty((len(structures), 6), dtype=object)
    for i, (name, idx) in enumerate(structures.items()):
        cst[i] = [i, name, "OAR", np.asarray(idx, dtype=np.float64).reshape(-1, 1), {}, {}]
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = cube
    ct = {
        "cube": cell,
        "resolution": {"x": 3.0, "y": 3.0, "z": 2.5},
        "x": np.arange(cube.shape[1]) * 3.0 - 9.0,
        "y": np.arange(cube.shape[0]) * 3.0 - 6.0,
        "z": np.arange(cube.shape[2]) * 2.5,
    }
    sio.savemat(str(path), {"ct": ct, "cst": cst})


def test_voxel_counts_match_the_readme(case: Case) -> None:
    for sid, n in README_COUNTS.items():
        assert int(case.structure(sid).mask.sum()) == n, sid
    assert case.grid.spacing_mm == (3.0, 3.0, 2.5)
    assert {k: s.dicom_type for k, s in case.structures.items()} == {
        "OuterTarget": "PTV",
        "Core": "ORGAN",
        "BODY": "EXTERNAL",
    }


def test_plan_setup(case: Case) -> None:
    assert (case.prescription.total_dose_gy, case.prescription.fractions) == (50.0, 25)
    assert case.prescription.target_id == "OuterTarget"
    assert case.beams.technique == Technique.IMRT and case.beams.beamlet_size_mm == 5.0
    assert [b.gantry_deg for b in case.beams.beams] == pytest.approx(
        [i * 360 / 7 for i in range(7)]
    )
    centre = case.grid.centres_mm(np.flatnonzero(case.mask("OuterTarget"))).mean(axis=0)
    assert np.allclose(case.beams.isocenter_mm, centre, atol=1e-9)


def test_core_sits_in_the_concavity_of_the_c(case: Case) -> None:
    target, core = case.mask("OuterTarget"), case.mask("Core")
    assert not (target & core).any()
    target_slices = np.flatnonzero(target.any(axis=(0, 1)))
    central = range(target_slices[0] + 4, target_slices[-1] - 3)
    for iz in central:
        vox = np.argwhere(core[:, :, iz])
        assert len(vox) > 0
        t = target[:, :, iz]
        # Every core voxel has target anterior to it (smaller y) in its column; nearly all
        # have target on both sides (left and right) in their row: the C wraps the core
        # and opens posteriorly.
        assert all(t[ix, :iy].any() for ix, iy in vox)
        both_sides = [t[:ix, iy].any() and t[ix + 1 :, iy].any() for ix, iy in vox]
        assert np.mean(both_sides) >= 0.9
        assert not any(t[ix, iy + 1 :].any() for ix, iy in vox)


def test_body_is_wider_than_deep(case: Case) -> None:
    # The phantom is ~30 cm wide (x) and ~15 cm deep (y): checks cube rows map to y.
    pts = case.grid.centres_mm(np.flatnonzero(case.body_mask))
    width, depth = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
    assert width == pytest.approx(303.0, abs=6.0) and depth == pytest.approx(150.0, abs=6.0)


def test_cropping_keeps_geometry(tg119_file: Path) -> None:
    full = load_tg119(tg119_file, crop_to_body=False)
    cropped = load_tg119(tg119_file)
    assert full.grid.shape == (167, 167, 129)
    assert full.grid.origin_mm == (-250.0, -250.0, -160.0)
    for sid in README_COUNTS:
        a = full.grid.centres_mm(np.flatnonzero(full.mask(sid)))
        b = cropped.grid.centres_mm(np.flatnonzero(cropped.mask(sid)))
        assert np.allclose(np.sort(a, axis=0), np.sort(b, axis=0)), sid
    assert np.allclose(full.beams.isocenter_mm, cropped.beams.isocenter_mm)


def test_matrad_index_convention(tmp_path: Path) -> None:
    # Cube [row=y, col=x, slice=z] of shape (4, 5, 3); 1-based Fortran-order indices.
    cube = np.arange(60, dtype=np.float64).reshape(4, 5, 3) / 60.0 + 0.5
    r, c, s = 1, 3, 2
    one = np.ravel_multi_index((r, c, s), cube.shape, order="F") + 1
    body = np.arange(1, 61)
    path = tmp_path / "mini.mat"
    _write_mat(path, cube, {"Core": [one], "OuterTarget": [one + 1], "BODY": body})
    case = load_tg119(path, crop_to_body=False)
    assert case.grid.shape == (5, 4, 3)  # [x, y, z]
    assert np.argwhere(case.mask("Core")).tolist() == [[c, r, s]]
    assert case.density[c, r, s] == pytest.approx(cube[r, c, s])
    assert case.grid.origin_mm == (-9.0, -6.0, 0.0)
    # Index one + 1 in Fortran order is the next row (y) of the same column and slice.
    assert np.argwhere(case.mask("OuterTarget")).tolist() == [[c, r + 1, s]]


def test_resampling_keeps_volumes(case: Case, tg119_file: Path) -> None:
    iso3 = load_tg119(tg119_file, spacing_mm=3.0)
    assert iso3.grid.spacing_mm == (3.0, 3.0, 3.0)
    for sid in README_COUNTS:
        # Nearest-neighbour resampling from 2.5 to 3 mm slices: volumes within 3 %.
        assert iso3.volume_cm3(sid) == pytest.approx(case.volume_cm3(sid), rel=0.03), sid
    with pytest.raises(InvalidInput, match="spacing_mm must be within 2-5 mm"):
        load_tg119(spacing_mm=1.0)


def test_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RTPLAN_TG119", raising=False)
    found = default_tg119_path()
    assert found.name == "TG119.mat" and found.is_file()
    if found.parts[-4:] != ("shared", "data", "tg119", "TG119.mat"):
        # Not the shared folder: the cached copy, which is only used with the wheel's hash.
        assert hashlib.sha256(found.read_bytes()).hexdigest() == SHA256
    missing = tmp_path / "nowhere" / "TG119.mat"
    monkeypatch.setenv("RTPLAN_TG119", str(missing))
    assert default_tg119_path() == missing
    with pytest.raises(InvalidInput, match="not found") as err:
        load_tg119()
    msg = str(err.value)
    assert str(missing) in msg and "pyradplan 0.5.0" in msg
    assert "pyRadPlan/data/phantoms/TG119.mat" in msg and "ct.cube" in msg


def test_malformed_files_are_explained(tmp_path: Path) -> None:
    not_mat = tmp_path / "junk.mat"
    not_mat.write_bytes(b"this is not a MATLAB file at all" * 10)
    with pytest.raises(InvalidInput, match="not a readable MATLAB v5 file"):
        load_tg119(not_mat)

    wrong_vars = tmp_path / "wrong.mat"
    sio.savemat(str(wrong_vars), {"dose": np.zeros((2, 2))})
    with pytest.raises(InvalidInput, match=r"lacks the variables 'ct' and 'cst'.*pyradplan"):
        load_tg119(wrong_vars)

    no_cube = tmp_path / "nocube.mat"
    cst = np.empty((1, 6), dtype=object)
    cst[0] = [0, "BODY", "OAR", np.ones((1, 1)), {}, {}]
    sio.savemat(str(no_cube), {"ct": {"resolution": {"x": 3, "y": 3, "z": 2.5}}, "cst": cst})
    with pytest.raises(InvalidInput, match=r"ct\.cube is missing"):
        load_tg119(no_cube)

    cube = np.ones((4, 5, 3))
    missing_core = tmp_path / "nocore.mat"
    _write_mat(missing_core, cube, {"OuterTarget": [1], "BODY": np.arange(1, 61)})
    with pytest.raises(InvalidInput, match="structure 'Core' missing from cst"):
        load_tg119(missing_core)

    out_of_range = tmp_path / "range.mat"
    _write_mat(out_of_range, cube, {"Core": [0], "OuterTarget": [1], "BODY": [61]})
    with pytest.raises(InvalidInput, match=r"1-based within 1\.\.60"):
        load_tg119(out_of_range)
