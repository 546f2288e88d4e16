"""Loader of an OpenKBP head-and-neck patient folder as a :class:`Case`, with its clinical dose.

OpenKBP (A. Babier et al., Med. Phys. 48:5549, 2021; MIT license) gives each patient as
sparse CSV files on a 128 x 128 x 128 grid (first line ``,data``; ``flat_index,value`` in
C order): ``ct.csv`` (CT number + 1024), ``dose.csv`` (the delivered plan, Gy), one mask per
structure (``PTV70.csv``, ``LeftParotid.csv``, ...) and ``voxel_dimensions.csv`` (mm).
Files may also be gzipped (``ct.csv.gz``).

Orientation, established from the anatomy of the six shared patients and tested
(``tests/test_openkbp_loader.py``): file axis 0 runs anterior -> posterior (the spinal cord
lies at larger indices than the PTVs, the mandible at smaller), axis 1 runs from the
patient's right to left (``LeftParotid`` at larger indices), axis 2 runs superior ->
inferior (the brainstem at smaller indices than the cord; the slice axis: 2.5 mm on four
of the six shared patients, 3 mm on two; in-plane 2.7-4.8 mm). Our arrays are
``[x right->left, y anterior->posterior, z inferior->superior]`` (see :mod:`mock_tps.grid`),
so a file array ``a`` becomes ``a.transpose(1, 0, 2)[:, :, ::-1]``.

The body is the largest connected region above :data:`BODY_THRESHOLD_HU`, holes filled per
axial slice (the airway is inside the body), joined with every clinical contour (masks are
kept exactly as given, so that OpenKBP's metrics use its own voxels). The grid is cropped to the body's bounding box
plus :data:`CROP_PAD_VOXELS`. OpenKBP's PTVs are mutually exclusive (no voxel in two of
them); nothing here assumes nesting. Folder names never reach the case: its name is
``openkbp``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from esapi_bridge.errors import InvalidInput
from mock_tps.case import BeamSet, Case, Prescription, Structure
from mock_tps.grid import Grid
from mock_tps.hu_density import DEFAULT_CURVE, HuDensityCurve
from mock_tps.phantoms.shapes import centroid_mm, expand

GRID_SIZE = 128
RX_GY = 70.0
FRACTIONS = 35
N_FIELDS = 9  # the head-and-neck phantom's and template's 9 coplanar IMRT fields
BODY_THRESHOLD_HU = -400.0
CROP_PAD_VOXELS = 3
FAR_MARGIN_MM = 10.0
#: OpenKBP's structure names: the targets with their dose levels, then the organs at risk.
TARGET_LEVELS_GY: dict[str, float] = {"PTV70": 70.0, "PTV63": 63.0, "PTV56": 56.0}
ORGANS: tuple[str, ...] = (
    "Brainstem",
    "SpinalCord",
    "RightParotid",
    "LeftParotid",
    "Esophagus",
    "Larynx",
    "Mandible",
)
#: Derived structures of the head-and-neck hot-spot goals (ids of the templates).
PTV56_FAR_ID = "PTV56-PTV70+10mm"
BODY_MINUS_PTV_ID = "BODY-PTV"
_WHERE = (
    "expected an OpenKBP patient folder (ct.csv, dose.csv, voxel_dimensions.csv, PTV70.csv "
    "and organ masks, as in the OpenKBP repository's provided-data/train-pats/<patient>/)"
)

IntArray = NDArray[np.int64]
_T = TypeVar("_T", bound=np.generic)


@dataclass(frozen=True)
class OpenKbpPatient:
    """An OpenKBP patient: the case to plan, the clinical dose on its grid, how it was read.

    ``clinical_dose_gy`` is the delivered plan's dose (a clinical TPS's, not our engine's)
    on ``case.grid``; ``voxel_volume_mm3`` is OpenKBP's voxel volume (its D0.1cc uses it);
    ``capped_voxels`` counts CT voxels above the curve's cap (their density was capped);
    ``content_hash`` is the sha256 of the files' contents (never their folder);
    ``ct_hu`` is the CT (HU) on ``case.grid`` (what ``rtplan export-case`` writes).
    """

    case: Case
    clinical_dose_gy: NDArray[np.float32]
    possible_dose_mask: NDArray[np.bool_]
    curve: HuDensityCurve
    capped_voxels: int
    max_hu: float
    content_hash: str
    ct_hu: NDArray[np.float32] | None = None

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm3."""
        return self.case.grid.voxel_volume_cm3 * 1000.0

    @property
    def levels(self) -> int:
        """Number of dose levels (2: PTV70 + PTV56; 3 with PTV63)."""
        return len(self.case.prescription.target_levels_gy)


def _file(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_sparse(path: Path, with_values: bool) -> tuple[IntArray, NDArray[np.float64]]:
    """Flat indices (and values) of one sparse OpenKBP CSV file."""
    try:
        data = np.loadtxt(
            path,
            delimiter=",",
            skiprows=1,
            ndmin=2,
            usecols=(0, 1) if with_values else (0,),
            dtype=np.float64,
        )
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"OpenKBP file {path.name}: unreadable ({exc}); {_WHERE}") from None
    if data.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    idx = data[:, 0].astype(np.int64)
    n = GRID_SIZE**3
    if idx.min() < 0 or idx.max() >= n or not np.array_equal(idx, data[:, 0]):
        raise InvalidInput(
            f"OpenKBP file {path.name}: flat indices must be integers within 0..{n - 1}; {_WHERE}"
        )
    return idx, (data[:, 1] if with_values else np.ones(len(idx)))


def _dense(idx: IntArray, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 128^3 array in file order (``np.put`` into zeros, as OpenKBP's loader does)."""
    out = np.zeros(GRID_SIZE**3, dtype=np.float64)
    out[idx] = values
    return out.reshape((GRID_SIZE,) * 3)


def to_patient_axes(array: NDArray[_T]) -> NDArray[_T]:
    """A file-order array in our ``[x R->L, y A->P, z I->S]`` order (see the module docstring)."""
    return np.ascontiguousarray(array.transpose(1, 0, 2)[:, :, ::-1])


def _body(hu: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Largest connected region above the threshold, holes filled in every axial slice."""
    labels, n = ndimage.label(hu > BODY_THRESHOLD_HU)
    if n == 0:
        raise InvalidInput(f"OpenKBP CT has no voxel above {BODY_THRESHOLD_HU} HU; {_WHERE}")
    sizes = np.bincount(labels.ravel())[1:]
    body = labels == int(np.argmax(sizes)) + 1
    for k in range(body.shape[2]):
        body[:, :, k] = ndimage.binary_fill_holes(body[:, :, k])
    return body


def _crop_box(body: NDArray[np.bool_]) -> tuple[slice, slice, slice]:
    box: list[slice] = []
    for axis in range(3):
        hit = np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != axis)))
        lo = max(0, int(hit[0]) - CROP_PAD_VOXELS)
        box.append(slice(lo, min(body.shape[axis], int(hit[-1]) + 1 + CROP_PAD_VOXELS)))
    return box[0], box[1], box[2]


def _spacing(folder: Path) -> tuple[float, float, float]:
    """Our (x, y, z) spacing from ``voxel_dimensions.csv`` (file axes 0, 1, 2)."""
    path = _file(folder, "voxel_dimensions")
    if path is None:
        raise InvalidInput(f"OpenKBP folder has no voxel_dimensions.csv; {_WHERE}")
    try:
        dims = np.loadtxt(path, dtype=np.float64).ravel()
    except ValueError as exc:
        raise InvalidInput(f"voxel_dimensions.csv unreadable ({exc}); {_WHERE}") from None
    if dims.size != 3:
        raise InvalidInput(f"voxel_dimensions.csv must hold 3 numbers, got {dims.size}; {_WHERE}")
    return float(dims[1]), float(dims[0]), float(dims[2])


def content_hash(folder: str | Path) -> str:
    """sha256 over the names and bytes of the patient's CSV files (not the folder's name)."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.name.endswith((".csv", ".csv.gz")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def derived_structures(
    masks: dict[str, NDArray[np.bool_]], body: NDArray[np.bool_], grid: Grid
) -> dict[str, NDArray[np.bool_]]:
    """The derived structures of the head-and-neck templates (no nesting assumed).

    ``PTV56-PTV70+10mm``: PTV56 beyond 10 mm of every higher-level PTV (PTV70, and PTV63
    when present); ``BODY-PTV``: the body outside every PTV. Empty ones are left out.
    """
    targets = [t for t in TARGET_LEVELS_GY if t in masks]
    out: dict[str, NDArray[np.bool_]] = {}
    if "PTV56" in masks:
        higher = np.zeros(grid.shape, dtype=bool)
        for t in targets:
            if TARGET_LEVELS_GY[t] > TARGET_LEVELS_GY["PTV56"]:
                higher |= masks[t]
        far = masks["PTV56"] & ~expand(higher, grid, FAR_MARGIN_MM)
        if far.any():
            out[PTV56_FAR_ID] = far
    union = np.zeros(grid.shape, dtype=bool)
    for t in targets:
        union |= masks[t]
    out[BODY_MINUS_PTV_ID] = body & ~union
    return out


def load_openkbp(folder: str | Path, curve: HuDensityCurve = DEFAULT_CURVE) -> OpenKbpPatient:
    """Load an OpenKBP patient folder.

    Parameters
    ----------
    folder
        The patient folder (``ct.csv``, ``dose.csv``, ``voxel_dimensions.csv``, masks).
    curve
        HU -> relative electron density curve (default: :data:`DEFAULT_CURVE`, capped at
        cortical bone).

    Returns
    -------
    OpenKbpPatient
        The case (structures under OpenKBP's names plus ``BODY`` and the derived ones;
        70 Gy / 35 fx to PTV70, 63 and 56 Gy levels where present; 9 coplanar IMRT fields
        with the isocenter at the PTV70 centroid), the clinical dose and the capping count.

    Raises
    ------
    InvalidInput
        Not a folder, a required file missing or unreadable, indices out of range, no
        PTV70, or an anatomy contradicting the orientation (see :func:`orientation_problems`).
    """
    path = Path(folder)
    if not path.is_dir():
        raise InvalidInput(f"OpenKBP patient folder not found: {str(path)!r}; {_WHERE}")
    files = {stem: _file(path, stem) for stem in ("ct", "dose", "PTV70")}
    for stem, file in files.items():
        if file is None:
            raise InvalidInput(f"OpenKBP folder has no {stem}.csv; {_WHERE}")
    spacing = _spacing(path)
    ct_file, dose_file = files["ct"], files["dose"]
    assert ct_file is not None and dose_file is not None
    hu = to_patient_axes(_dense(*_read_sparse(ct_file, True)) - 1024.0)

    def mask(stem: str) -> NDArray[np.bool_] | None:
        file = _file(path, stem)
        if file is None:
            return None
        idx, values = _read_sparse(file, False)
        return to_patient_axes(_dense(idx, values) > 0)

    full = {name: m for name in (*TARGET_LEVELS_GY, *ORGANS) if (m := mask(name)) is not None}
    full = {k: m for k, m in full.items() if m.any()}
    if "PTV70" not in full:
        raise InvalidInput(f"OpenKBP PTV70 mask is missing or empty; {_WHERE}")
    body_full = _body(hu)
    for m in full.values():  # the clinical contours lie inside the patient, as given
        body_full |= m
    box = _crop_box(body_full)
    hu = hu[box]
    body = np.ascontiguousarray(body_full[box])
    grid = Grid(shape=(hu.shape[0], hu.shape[1], hu.shape[2]), spacing_mm=spacing)
    masks = {k: np.ascontiguousarray(m[box]) for k, m in full.items()}
    structures = {
        k: Structure(k, "PTV" if k in TARGET_LEVELS_GY else "ORGAN", m) for k, m in masks.items()
    }
    for k, m in derived_structures(masks, body, grid).items():
        structures[k] = Structure(k, "CONTROL", m)
    structures["BODY"] = Structure("BODY", "EXTERNAL", body)
    levels = {t: g for t, g in TARGET_LEVELS_GY.items() if t in masks and t != "PTV70"}
    rx = Prescription(RX_GY, FRACTIONS, "PTV70", dose_levels_gy=levels)
    iso = centroid_mm(masks["PTV70"], grid)
    density = np.where(body, curve.density(hu), np.float32(0.0)).astype(np.float32)
    case = Case(
        name="openkbp",
        grid=grid,
        density=density,
        structures=structures,
        prescription=rx,
        beams=BeamSet.imrt(N_FIELDS, iso),
        body_id="BODY",
        scenario="openkbp",
        seed=None,
    )
    problems = orientation_problems(case)
    if problems:
        raise InvalidInput(f"OpenKBP anatomy contradicts the orientation: {'; '.join(problems)}")
    dose = to_patient_axes(_dense(*_read_sparse(dose_file, True)))[box].astype(np.float32)
    pdm = mask("possible_dose_mask")
    pdm = body.copy() if pdm is None else np.ascontiguousarray(pdm[box])
    return OpenKbpPatient(
        case=case,
        clinical_dose_gy=np.ascontiguousarray(dose),
        possible_dose_mask=pdm,
        curve=curve,
        capped_voxels=curve.n_capped(hu[body]),
        max_hu=float(hu.max()),
        content_hash=content_hash(path),
        ct_hu=hu.astype(np.float32),
    )


def orientation_problems(case: Case) -> list[str]:
    """What in the anatomy contradicts our axes (empty when all agrees).

    Checked where the structures exist: the spinal cord posterior to (larger ``y`` than)
    PTV70, ``LeftParotid`` on the patient's left (larger ``x``) of ``RightParotid``, the
    brainstem superior to (larger ``z`` than) the cord.
    """
    have = case.structures

    def c(sid: str) -> tuple[float, float, float]:
        return centroid_mm(have[sid].mask, case.grid)

    out: list[str] = []
    if "SpinalCord" in have and c("SpinalCord")[1] <= c("PTV70")[1]:
        out.append("the spinal cord is not posterior to PTV70")
    if {"LeftParotid", "RightParotid"} <= set(have) and c("LeftParotid")[0] <= c("RightParotid")[0]:
        out.append("LeftParotid is not on the patient's left of RightParotid")
    if {"Brainstem", "SpinalCord"} <= set(have) and c("Brainstem")[2] <= c("SpinalCord")[2]:
        out.append("the brainstem is not superior to the spinal cord")
    return out
