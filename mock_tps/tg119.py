"""Loader of the AAPM TG-119 C-shape phantom (matRad ``TG119.mat``) as a :class:`Case`.

The file is the one shipped in the pyradplan 0.5.0 wheel (``pyRadPlan/data/phantoms/TG119.mat``):
MATLAB v5 with ``ct.cube`` (relative electron density, one cell), ``ct.resolution``
(x, y, z in mm) and ``cst`` (one row per structure: index, name, type, voxel indices, ...).
matRad cubes are indexed ``[row = y, column = x, slice = z]`` and ``cst`` holds 1-based,
column-major linear indices into the cube; our arrays are ``[ix, iy, iz]``.

Densities are kept as in the file (outside the body included). By default the grid is
cropped to the body's bounding box plus :data:`CROP_PAD_VOXELS` voxels, which changes
neither the voxel size nor any structure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import io as sio
from scipy import ndimage

from esapi_bridge.errors import InvalidInput
from mock_tps.case import BeamSet, Case, Prescription, Structure
from mock_tps.grid import Grid
from mock_tps.tg119_fetch import resolve_tg119_path

RX_GY = 50.0
FRACTIONS = 25
N_FIELDS = 7
BEAMLET_SIZE_MM = 5.0
CROP_PAD_VOXELS = 4
#: matRad structure name -> (our id, DICOM type).
STRUCTURES: dict[str, tuple[str, str]] = {
    "OuterTarget": ("OuterTarget", "PTV"),
    "Core": ("Core", "ORGAN"),
    "BODY": ("BODY", "EXTERNAL"),
}
_WHERE = (
    "expected the AAPM TG-119 phantom as a MATLAB v5 file with ct.cube, ct.resolution and cst "
    "(structures OuterTarget, Core, BODY), as shipped in the pyradplan 0.5.0 wheel at "
    "pyRadPlan/data/phantoms/TG119.mat; pass its path or set RTPLAN_TG119"
)


def default_tg119_path() -> Path:
    """The file :func:`load_tg119` reads by default: :func:`resolve_tg119_path` with no path.

    ``$RTPLAN_TG119``, else the verified cached copy, else ``<repo>/../shared/data/tg119``,
    else a pip fetch of the pyradplan 0.5.0 wheel into the cache (see
    :mod:`mock_tps.tg119_fetch`).
    """
    return resolve_tg119_path()


def _get(obj: Any, name: str, what: str) -> Any:
    """Attribute ``name`` of a loaded MATLAB struct, or :class:`InvalidInput` naming ``what``."""
    if not hasattr(obj, name):
        raise InvalidInput(f"TG-119 file: {what} is missing; {_WHERE}")
    return getattr(obj, name)


_Read = tuple[
    NDArray[np.float64],
    tuple[float, float, float],
    tuple[float, float, float],
    dict[str, NDArray[np.int64]],
]


def _read(path: Path) -> _Read:
    """Cube (matRad order), resolution (x, y, z), origin (x, y, z) and cst voxel indices."""
    if not path.is_file():
        raise InvalidInput(f"TG-119 file not found at {str(path)!r}; {_WHERE}")
    try:
        mat = sio.loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as exc:  # scipy raises several types on non-MAT input
        raise InvalidInput(
            f"TG-119 file {str(path)!r} is not a readable MATLAB v5 file ({exc}); {_WHERE}"
        ) from None
    if "ct" not in mat or "cst" not in mat:
        raise InvalidInput(
            f"TG-119 file {str(path)!r} lacks the variables 'ct' and 'cst'; {_WHERE}"
        )
    ct = mat["ct"]
    cube = _get(ct, "cube", "ct.cube")
    while isinstance(cube, np.ndarray) and cube.dtype == object and cube.size == 1:
        cube = cube.flat[0]
    try:
        cube = np.asarray(cube, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"TG-119 file: ct.cube must be a numeric 3D array; {_WHERE}") from None
    if cube.ndim != 3:
        raise InvalidInput(
            f"TG-119 file: ct.cube must be a 3D array, got shape {cube.shape}; {_WHERE}"
        )
    res = _get(ct, "resolution", "ct.resolution")
    try:
        rx, ry, rz = (float(_get(res, a, f"ct.resolution.{a}")) for a in ("x", "y", "z"))
    except (TypeError, ValueError):
        raise InvalidInput(
            f"TG-119 file: ct.resolution must hold scalars x, y, z; {_WHERE}"
        ) from None
    origin: list[float] = []
    for axis, n in (("x", cube.shape[1]), ("y", cube.shape[0]), ("z", cube.shape[2])):
        coords = np.atleast_1d(np.asarray(getattr(ct, axis, []), dtype=np.float64))
        origin.append(float(coords[0]) if coords.size == n else 0.0)
    cst = np.asarray(mat["cst"], dtype=object)
    if cst.ndim != 2 or cst.shape[1] < 4:
        raise InvalidInput(
            f"TG-119 file: cst must be a cell array with >= 4 columns, got shape {cst.shape}; {_WHERE}"
        )
    indices: dict[str, NDArray[np.int64]] = {}
    for row in cst:
        try:
            indices[str(row[1])] = np.atleast_1d(np.asarray(row[3], dtype=np.int64))
        except (TypeError, ValueError):
            raise InvalidInput(
                f"TG-119 file: cst voxel indices of {row[1]!r} are not integers; {_WHERE}"
            ) from None
    return cube, (rx, ry, rz), (origin[0], origin[1], origin[2]), indices


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A 3D array shape as a typed triple."""
    return int(shape[0]), int(shape[1]), int(shape[2])


def _masks(
    cube_shape: tuple[int, ...], indices: dict[str, NDArray[np.int64]]
) -> dict[str, NDArray[np.bool_]]:
    """Our ``[ix, iy, iz]`` masks from matRad's 1-based column-major indices into ``[y, x, z]``."""
    n = int(np.prod(cube_shape))
    out: dict[str, NDArray[np.bool_]] = {}
    for name in STRUCTURES:
        if name not in indices:
            raise InvalidInput(
                f"TG-119 file: structure {name!r} missing from cst (has {sorted(indices)}); {_WHERE}"
            )
        idx = indices[name]
        if idx.size == 0 or idx.min() < 1 or idx.max() > n:
            raise InvalidInput(
                f"TG-119 file: voxel indices of {name!r} must be 1-based within 1..{n}; {_WHERE}"
            )
        flat = np.zeros(n, dtype=bool)
        flat[idx - 1] = True
        out[name] = flat.reshape(cube_shape, order="F").transpose(1, 0, 2)
    return out


def _resample(
    grid: Grid,
    density: NDArray[np.float32],
    masks: dict[str, NDArray[np.bool_]],
    spacing_mm: float,
) -> tuple[Grid, NDArray[np.float32], dict[str, NDArray[np.bool_]]]:
    """Resample to an isotropic ``spacing_mm`` grid over the same extent."""
    extent = [(n - 1) * s for n, s in zip(grid.shape, grid.spacing_mm, strict=True)]
    shape = tuple(int(np.floor(e / spacing_mm)) + 1 for e in extent)
    new = Grid(shape=_shape3(shape), spacing_mm=(spacing_mm,) * 3, origin_mm=grid.origin_mm)
    axes = [np.arange(n) * spacing_mm / s for n, s in zip(shape, grid.spacing_mm, strict=True)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))
    dens = ndimage.map_coordinates(density, coords, order=1, mode="nearest").astype(np.float32)
    ijk = np.ix_(*(np.rint(a).astype(np.int64) for a in axes))
    return new, dens, {k: m[ijk] for k, m in masks.items()}


def load_tg119(
    path: str | Path | None = None,
    spacing_mm: float | None = None,
    crop_to_body: bool = True,
) -> Case:
    """Load the TG-119 C-shape case.

    Parameters
    ----------
    path
        ``TG119.mat``; default :func:`default_tg119_path` (env, cache, ../shared, pip fetch).
    spacing_mm
        ``None`` keeps the file's CT grid (3 x 3 x 2.5 mm); else an isotropic spacing
        within 2-5 mm (masks nearest-neighbour, density linear).
    crop_to_body
        Crop the grid to the body's bounding box plus a few voxels (default).

    Returns
    -------
    Case
        Structures OuterTarget (PTV), Core (ORGAN), BODY (EXTERNAL); 50 Gy / 25 fx to
        OuterTarget; 7 equispaced coplanar fields (0, 51.4, ...) with 5 mm beamlets,
        isocenter at the target's centroid.

    Raises
    ------
    InvalidInput
        Missing or malformed file (the message says what is expected and where to get it),
        no file found or fetched (the message names every place tried), or a spacing
        outside 2-5 mm.
    """
    if spacing_mm is not None and not 2.0 <= float(spacing_mm) <= 5.0:
        raise InvalidInput(f"spacing_mm must be within 2-5 mm or None, got {spacing_mm!r}")
    file = resolve_tg119_path(path)
    cube, resolution, origin, indices = _read(file)
    masks = _masks(cube.shape, indices)
    density = np.ascontiguousarray(cube.transpose(1, 0, 2), dtype=np.float32)
    try:
        grid = Grid(shape=_shape3(density.shape), spacing_mm=resolution, origin_mm=origin)
    except InvalidInput as exc:
        raise InvalidInput(f"TG-119 file: {exc}; {_WHERE}") from None
    if crop_to_body:
        body = masks["BODY"]
        box = []
        for axis in range(3):
            hit = np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != axis)))
            box.append(
                slice(
                    max(0, hit[0] - CROP_PAD_VOXELS),
                    min(body.shape[axis], hit[-1] + 1 + CROP_PAD_VOXELS),
                )
            )
        sl = (box[0], box[1], box[2])
        density = np.ascontiguousarray(density[sl])
        masks = {k: np.ascontiguousarray(m[sl]) for k, m in masks.items()}
        ox, oy, oz = (
            float(o + b.start * s)
            for o, b, s in zip(grid.origin_mm, box, grid.spacing_mm, strict=True)
        )
        grid = Grid(
            shape=_shape3(density.shape), spacing_mm=grid.spacing_mm, origin_mm=(ox, oy, oz)
        )
    if spacing_mm is not None:
        grid, density, masks = _resample(grid, density, masks, float(spacing_mm))
    structures = {
        sid: Structure(
            sid, dicom_type, masks[name] & masks["BODY"] if name != "BODY" else masks[name]
        )
        for name, (sid, dicom_type) in STRUCTURES.items()
    }
    target = structures["OuterTarget"].mask
    ijk = np.argwhere(target).mean(axis=0)
    iso = tuple(
        float(o + i * s) for o, i, s in zip(grid.origin_mm, ijk, grid.spacing_mm, strict=True)
    )
    beams = BeamSet.imrt(N_FIELDS, (iso[0], iso[1], iso[2]), beamlet_size_mm=BEAMLET_SIZE_MM)
    rx = Prescription(total_dose_gy=RX_GY, fractions=FRACTIONS, target_id="OuterTarget")
    return Case(
        name="tg119",
        grid=grid,
        density=density,
        structures=structures,
        prescription=rx,
        beams=beams,
        body_id="BODY",
        scenario="tg119",
        seed=None,
    )
