"""A planning case of the simulated TPS: grid, densities, structures, prescription, beams."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from esapi_bridge.dto import Technique
from esapi_bridge.errors import EmptyStructure, InvalidInput, UnknownStructure
from mock_tps.grid import Grid
from rtplan_common.models import MAX_ID_CHARS, check_identifier

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Beam:
    """One static field or one VMAT control point (gantry and couch angles in degrees, IEC 61217)."""

    gantry_deg: float
    couch_deg: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("gantry_deg", self.gantry_deg), ("couch_deg", self.couch_deg)):
            if not math.isfinite(value) or not -360.0 <= value <= 360.0:
                raise InvalidInput(f"beam {name} must be finite within -360..360, got {value}")


@dataclass(frozen=True)
class BeamSet:
    """The beams of a plan: IMRT fields or the control points of VMAT arcs (6 MV photons)."""

    technique: Technique
    beams: tuple[Beam, ...]
    isocenter_mm: tuple[float, float, float]
    beamlet_size_mm: float = 5.0
    target_margin_mm: float = 5.0
    source_axis_distance_mm: float = 1000.0

    def __post_init__(self) -> None:
        if not self.beams:
            raise InvalidInput("a beam set needs at least one beam")
        if not 1.0 <= self.beamlet_size_mm <= 20.0:
            raise InvalidInput(
                f"beamlet_size_mm must be within 1..20 mm, got {self.beamlet_size_mm}"
            )
        if not 0.0 <= self.target_margin_mm <= 50.0:
            raise InvalidInput(
                f"target_margin_mm must be within 0..50 mm, got {self.target_margin_mm}"
            )

    @classmethod
    def imrt(
        cls,
        n_fields: int,
        isocenter_mm: tuple[float, float, float],
        start_deg: float = 0.0,
        couch_deg: float = 0.0,
        **kwargs: float,
    ) -> BeamSet:
        """``n_fields`` equispaced coplanar fields starting at ``start_deg`` (0, 360/n, ...)."""
        if n_fields < 1:
            raise InvalidInput(f"n_fields must be >= 1, got {n_fields}")
        angles = [(start_deg + i * 360.0 / n_fields) % 360.0 for i in range(n_fields)]
        beams = tuple(Beam(a, couch_deg) for a in angles)
        return cls(Technique.IMRT, beams, isocenter_mm, **kwargs)

    @classmethod
    def vmat(
        cls,
        n_control_points: int,
        isocenter_mm: tuple[float, float, float],
        arcs: int = 1,
        **kwargs: float,
    ) -> BeamSet:
        """Full arcs approximated by ``n_control_points`` equispaced control points in all.

        A second arc is offset by half a control-point spacing so that it adds angles.
        """
        if n_control_points < arcs or arcs < 1:
            raise InvalidInput(
                f"need at least one control point per arc, got {n_control_points} for {arcs} arcs"
            )
        per_arc = n_control_points // arcs
        step = 360.0 / per_arc
        angles = [
            (180.0 + arc * step / arcs + i * step) % 360.0
            for arc in range(arcs)
            for i in range(per_arc)
        ]
        beams = tuple(Beam(a) for a in angles)
        return cls(Technique.VMAT, beams, isocenter_mm, **kwargs)


@dataclass(frozen=True)
class Prescription:
    """Prescribed dose: ``total_dose_gy`` to ``target_id``; more dose levels for SIB plans."""

    total_dose_gy: float
    fractions: int
    target_id: str
    dose_levels_gy: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.total_dose_gy) and self.total_dose_gy > 0):
            raise InvalidInput(f"total_dose_gy must be > 0, got {self.total_dose_gy}")
        if self.fractions < 1:
            raise InvalidInput(f"fractions must be >= 1, got {self.fractions}")

    @property
    def target_levels_gy(self) -> dict[str, float]:
        """Every target with its dose level (the primary target included)."""
        levels = {self.target_id: self.total_dose_gy}
        levels.update(self.dose_levels_gy)
        return levels


@dataclass
class Structure:
    """A delineated structure as a voxel mask on the case grid."""

    structure_id: str
    dicom_type: str
    mask: BoolArray


@dataclass
class Case:
    """Everything the simulated TPS knows about one patient plan."""

    name: str
    grid: Grid
    density: FloatArray  # relative electron density, shape = grid.shape
    structures: dict[str, Structure]
    prescription: Prescription
    beams: BeamSet
    body_id: str = "BODY"
    scenario: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.density.shape != self.grid.shape:
            raise InvalidInput(
                f"density shape {self.density.shape} does not match grid shape {self.grid.shape}"
            )
        for s in self.structures.values():
            _check_structure_id(s.structure_id)
            if s.mask.shape != self.grid.shape:
                raise InvalidInput(
                    f"structure {s.structure_id!r} mask shape {s.mask.shape} "
                    f"does not match grid shape {self.grid.shape}"
                )
        for sid in [self.body_id, *self.prescription.target_levels_gy]:
            self.structure(sid)

    def structure(self, structure_id: str) -> Structure:
        """The structure with this id, or :class:`UnknownStructure` listing the ids there are."""
        try:
            return self.structures[structure_id]
        except KeyError:
            raise UnknownStructure(structure_id, list(self.structures)) from None

    def mask(self, structure_id: str, *, allow_empty: bool = False) -> BoolArray:
        """The voxel mask of a structure; raises :class:`EmptyStructure` if it has no voxel."""
        mask = self.structure(structure_id).mask
        if not allow_empty and not mask.any():
            raise EmptyStructure(
                f"structure {structure_id!r} has no voxel on the {self.grid.spacing_mm} mm grid"
            )
        return mask

    def volume_cm3(self, structure_id: str) -> float:
        """Volume of a structure in cm3 (voxel count x voxel volume)."""
        return float(self.structure(structure_id).mask.sum()) * self.grid.voxel_volume_cm3

    @property
    def body_mask(self) -> BoolArray:
        """Mask of the external contour."""
        return self.mask(self.body_id)

    @property
    def target_mask(self) -> BoolArray:
        """Union of all prescribed targets."""
        out = np.zeros(self.grid.shape, dtype=bool)
        for sid in self.prescription.target_levels_gy:
            out |= self.mask(sid)
        return out

    def geometry_hash(self) -> str:
        """Hash of what the dose-influence matrix depends on: grid, densities, body, targets, beams."""
        h = hashlib.sha256()
        h.update(repr((self.grid, self.beams)).encode())
        h.update(np.ascontiguousarray(self.density, dtype=np.float32).tobytes())
        h.update(np.packbits(self.body_mask).tobytes())
        h.update(np.packbits(self.target_mask).tobytes())
        return h.hexdigest()[:24]

    def content_hash(self) -> str:
        """Hash of the whole case: :meth:`geometry_hash` plus every structure (id, type,
        mask) and the prescription. What a frozen benchmark set pins (organs included)."""
        h = hashlib.sha256(self.geometry_hash().encode())
        for sid in sorted(self.structures):
            s = self.structures[sid]
            h.update(repr((sid, s.dicom_type)).encode())
            h.update(np.packbits(s.mask).tobytes())
        h.update(repr(self.prescription).encode())
        return h.hexdigest()[:24]


def _check_structure_id(structure_id: str) -> None:
    """A structure id the port can carry (1-64 printable characters), else :class:`InvalidInput`."""
    try:
        check_identifier(structure_id)
    except ValueError as exc:
        raise InvalidInput(f"structure id {structure_id!r}: {exc}; rename the structure") from None
    if not 1 <= len(structure_id) <= MAX_ID_CHARS:
        raise InvalidInput(
            f"structure id {structure_id!r} has {len(structure_id)} characters; "
            f"1 to {MAX_ID_CHARS} are allowed"
        )
