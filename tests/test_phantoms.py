"""Parametric phantoms: structure sets, anatomy ranges, derived structures, seeds, beams, errors."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.spatial import cKDTree

from esapi_bridge.dto import Technique
from esapi_bridge.errors import InvalidInput
from mock_tps.beams import HD120
from mock_tps.case import Case
from mock_tps.phantoms import DEFAULT_SPACING_MM, SCENARIOS, list_scenarios, make_case
from mock_tps.phantoms.registry import spacing_range_mm

SEEDS = (0, 1)

#: Exact structure ids and DICOM types per scenario (brain-srs: PTV2/PTV3 depend on the seed).
STRUCTURES: dict[str, dict[str, str]] = {
    "prostate-basic": {
        "PTV": "PTV",
        "Bladder": "ORGAN",
        "Rectum": "ORGAN",
        "Femur_Head_L": "ORGAN",
        "Femur_Head_R": "ORGAN",
        "BODY": "EXTERNAL",
    },
    "liver": {
        "PTV": "PTV",
        "Liver": "ORGAN",
        "Liver-PTV": "ORGAN",
        "SpinalCord": "ORGAN",
        "Stomach": "ORGAN",
        "BODY-PTV": "CONTROL",
        "BODY": "EXTERNAL",
    },
    "head-and-neck": {
        "PTV70": "PTV",
        "PTV56": "PTV",
        "Parotid_L": "ORGAN",
        "Parotid_R": "ORGAN",
        "SpinalCord": "ORGAN",
        "Brainstem": "ORGAN",
        "Cavity_Oral": "ORGAN",
        "Larynx": "ORGAN",
        "Bone_Mandible": "ORGAN",
        "PTV56-PTV70+10mm": "CONTROL",
        "BODY-PTV": "CONTROL",
        "BODY": "EXTERNAL",
    },
    "cervix": {
        "PTV": "PTV",
        "Bladder": "ORGAN",
        "Rectum": "ORGAN",
        "Bowel_Small": "ORGAN",
        "Bone_Marrow": "ORGAN",
        "SpinalCord": "ORGAN",
        "Femur_Head_L": "ORGAN",
        "Femur_Head_R": "ORGAN",
        "R2": "CONTROL",
        "R3": "CONTROL",
        "R4": "CONTROL",
        "BODY": "EXTERNAL",
    },
    "brain-srs": {
        "PTV1": "PTV",
        "Brainstem": "ORGAN",
        "OpticChiasm": "ORGAN",
        "OpticNrv_L": "ORGAN",
        "OpticNrv_R": "ORGAN",
        "Cochlea_L": "ORGAN",
        "Cochlea_R": "ORGAN",
        "Brain": "ORGAN",
        "Brain-PTV": "CONTROL",
        "BODY": "EXTERNAL",
    },
}
STRUCTURES["prostate-complex"] = STRUCTURES["prostate-basic"]

#: Plausible volumes (cm3) at the default grid. Sources: typical adult contoured volumes
#: (prostate PTV 90-160, bladder 90-350 part filled, rectum 50-100, femoral head+neck
#: 50-110, liver 1200-2000, stomach 200-600, liver SBRT PTV 40-250, parotid 15-35,
#: brainstem 20-40, oral cavity 30-100, larynx 15-45, mandible 40-90, cervix PTV with pelvic nodes 600-1500, pelvic bone
#: marrow 700-1300, brain 1200-1700, chiasm 0.2-1, optic nerve 0.5-1.5, cochlea 0.05-0.5,
#: SRS PTVs 0.2-15); ranges are wide enough for the seeded variation.
VOLUME_RANGES_CM3: dict[str, dict[str, tuple[float, float]]] = {
    "prostate-basic": {
        "PTV": (90, 160),
        "Bladder": (90, 350),
        "Rectum": (50, 100),
        "Femur_Head_L": (50, 110),
        "Femur_Head_R": (50, 110),
        "BODY": (8000, 12500),
    },
    "liver": {
        "PTV": (40, 250),
        "Liver": (1200, 2000),
        "SpinalCord": (8, 25),
        "Stomach": (200, 600),
        "BODY": (8000, 12000),
    },
    "head-and-neck": {
        "PTV70": (60, 250),
        "PTV56": (150, 500),
        "Parotid_L": (15, 35),
        "Parotid_R": (15, 35),
        "SpinalCord": (8, 20),
        "Brainstem": (20, 40),
        "Cavity_Oral": (30, 100),
        "Larynx": (15, 45),
        "Bone_Mandible": (40, 90),
        "BODY": (2500, 6000),
    },
    "cervix": {
        "PTV": (600, 1500),
        "Bladder": (90, 350),
        "Rectum": (30, 100),
        "Bowel_Small": (800, 2500),
        "Bone_Marrow": (700, 1300),
        "SpinalCord": (5, 25),
        "Femur_Head_L": (50, 110),
        "Femur_Head_R": (50, 110),
        "BODY": (8000, 12500),
    },
    "brain-srs": {
        "PTV1": (0.2, 15),
        "Brainstem": (20, 45),
        "OpticChiasm": (0.2, 1.0),
        "OpticNrv_L": (0.5, 1.5),
        "OpticNrv_R": (0.5, 1.5),
        "Cochlea_L": (0.05, 0.5),
        "Cochlea_R": (0.05, 0.5),
        "Brain": (1200, 1700),
        "BODY": (2000, 3500),
    },
}
VOLUME_RANGES_CM3["prostate-complex"] = VOLUME_RANGES_CM3["prostate-basic"]

#: Field-of-view budget (body voxels at the default grid) that keeps dose calculation fast;
#: brain-srs: the head at 1.25 mm (1.32-1.49 M on seeds 0-9, peak RSS <= 2.1 GB measured).
MAX_BODY_VOXELS = {"head-and-neck": 300_000, "brain-srs": 1_600_000}


@cache
def case_of(scenario: str, seed: int) -> Case:
    return make_case(scenario, seed)


def _distances(case: Case, from_id: str, to_mask: np.ndarray) -> np.ndarray:
    """Exact distances (mm) from the voxels of ``to_mask`` to the nearest voxel of ``from_id``."""
    tree = cKDTree(case.grid.centres_mm(np.flatnonzero(case.mask(from_id))))
    d, _ = tree.query(case.grid.centres_mm(np.flatnonzero(to_mask)))
    return np.asarray(d)


def _overlap_pct(case: Case, organ: str, target: str) -> float:
    m = case.mask(organ)
    return 100.0 * float((m & case.mask(target)).sum()) / float(m.sum())


def test_scenarios_are_the_documented_ones() -> None:
    assert list_scenarios() == list(SCENARIOS)
    assert set(SCENARIOS) == set(STRUCTURES)
    assert DEFAULT_SPACING_MM["brain-srs"] == 1.25 and DEFAULT_SPACING_MM["liver"] == 3.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_structure_set_volumes_and_densities(scenario: str, seed: int) -> None:
    case = case_of(scenario, seed)
    expected = dict(STRUCTURES[scenario])
    if scenario == "brain-srs":
        expected |= {f"PTV{i}": "PTV" for i in range(2, 2 + seed % 3)}
        expected |= {f"PTV{i}_zone": "CONTROL" for i in range(1, 2 + seed % 3)}  # CI / GI zones
    assert {k: s.dicom_type for k, s in case.structures.items()} == expected
    body = case.body_mask
    for sid, s in case.structures.items():
        assert s.mask.any(), sid
        assert not (s.mask & ~body).any(), f"{sid} leaves the body"
    for sid, (lo, hi) in VOLUME_RANGES_CM3[scenario].items():
        assert lo <= case.volume_cm3(sid) <= hi, (sid, case.volume_cm3(sid))
    assert case.grid.spacing_mm == (DEFAULT_SPACING_MM[scenario],) * 3
    assert int(body.sum()) <= MAX_BODY_VOXELS.get(scenario, 400_000)
    # Densities: air outside, soft tissue 1.0, bone 1.5-1.8 present, nothing else but lung/air.
    dens = case.density
    assert dens.dtype == np.float32 and np.all(dens[~body] == 0.0)
    inside = np.unique(dens[body])
    allowed = np.array([0.0, 0.25, 1.0, 1.5, 1.65, 1.8])
    assert all(np.isclose(v, allowed, atol=1e-6).any() for v in inside), inside
    assert 1.0 in inside and np.any((inside >= 1.5) & (inside <= 1.8))
    assert case.scenario == scenario and case.seed == seed


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_isocenter_is_the_centroid_of_the_targets(scenario: str) -> None:
    case = case_of(scenario, 1)
    centre = case.grid.centres_mm(np.flatnonzero(case.target_mask)).mean(axis=0)
    assert np.allclose(case.beams.isocenter_mm, centre, atol=1e-6)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_seed_same_case_other_seed_other_case(scenario: str) -> None:
    a, b = make_case(scenario, 0), case_of(scenario, 0)
    assert a.geometry_hash() == b.geometry_hash()
    assert a.beams == b.beams and a.prescription == b.prescription
    for sid, s in a.structures.items():
        assert np.array_equal(s.mask, b.structures[sid].mask), sid
    other = case_of(scenario, 1)
    assert other.geometry_hash() != a.geometry_hash()
    shared = set(a.structures) & set(other.structures) - {"BODY"}
    changed = [
        sid
        for sid in shared
        if abs(a.volume_cm3(sid) / other.volume_cm3(sid) - 1.0) > 0.01
        or not np.array_equal(a.mask(sid), other.mask(sid))
    ]
    assert len(changed) >= len(shared) // 2, changed


def test_prescriptions() -> None:
    rx = {s: case_of(s, 0).prescription for s in SCENARIOS}
    assert (rx["prostate-basic"].total_dose_gy, rx["prostate-basic"].fractions) == (79.2, 44)
    assert rx["prostate-complex"] == rx["prostate-basic"]
    assert (rx["liver"].total_dose_gy, rx["liver"].fractions, rx["liver"].target_id) == (
        50,
        5,
        "PTV",
    )
    hn = rx["head-and-neck"]
    assert (hn.total_dose_gy, hn.fractions, hn.target_id) == (70.0, 35, "PTV70")
    assert hn.dose_levels_gy == {"PTV56": 56.0}
    assert (rx["cervix"].total_dose_gy, rx["cervix"].fractions) == (36.0, 20)
    srs = case_of("brain-srs", 1).prescription
    assert (srs.total_dose_gy, srs.fractions, srs.target_id) == (20.0, 1, "PTV1")
    assert srs.dose_levels_gy == {"PTV2": 20.0}


def test_beams() -> None:
    basic = case_of("prostate-basic", 0).beams
    assert basic.technique == Technique.IMRT
    assert [b.gantry_deg for b in basic.beams] == pytest.approx([i * 360 / 7 for i in range(7)])
    complex_ = case_of("prostate-complex", 0).beams
    assert complex_.technique == Technique.VMAT and len(complex_.beams) == 180
    assert len(case_of("liver", 0).beams.beams) == 7
    hn = case_of("head-and-neck", 0).beams
    assert [b.gantry_deg for b in hn.beams] == pytest.approx([i * 40.0 for i in range(9)])
    cx = case_of("cervix", 0).beams
    assert cx.technique == Technique.VMAT and len(cx.beams) == 120
    assert len({b.gantry_deg for b in cx.beams}) == 120  # two interleaved arcs
    srs = case_of("brain-srs", 0).beams
    assert 7 <= len(srs.beams) <= 9
    assert srs.beamlet_size_mm == HD120.central_leaf_width_mm == 2.5
    assert {b.couch_deg for b in srs.beams} == {0.0, 45.0, 315.0}


@pytest.mark.parametrize("seed", SEEDS)
def test_prostate_oars_abut_the_ptv(seed: int) -> None:
    case = case_of("prostate-basic", seed)
    # Bladder and rectum overlap the PTV by some % of their volume (clinical prostate plans:
    # rectum ~5-15 %, a part-filled bladder ~5-20 %); the overlap is what makes the case hard.
    for organ in ("Bladder", "Rectum"):
        assert 3.0 <= _overlap_pct(case, organ, "PTV") <= 20.0, organ
    for head in ("Femur_Head_L", "Femur_Head_R"):
        assert _distances(case, "PTV", case.mask(head)).min() > 20.0
    x_left = case.grid.centres_mm(np.flatnonzero(case.mask("Femur_Head_L")))[:, 0].mean()
    assert x_left > 50.0  # patient left is +x


def test_overlaps_vary_with_the_seed() -> None:
    overlaps = {_overlap_pct(make_case("prostate-basic", s), "Rectum", "PTV") for s in range(4)}
    assert max(overlaps) - min(overlaps) > 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_liver_derived_structure_and_stomach_near_the_ptv(seed: int) -> None:
    case = case_of("liver", seed)
    assert np.array_equal(case.mask("Liver-PTV"), case.mask("Liver") & ~case.mask("PTV"))
    assert _overlap_pct(case, "PTV", "Liver") > 80.0
    assert _distances(case, "PTV", case.mask("Stomach")).min() <= 12.0
    assert np.any(np.isclose(case.density, 0.25))  # lung above the diaphragm


@pytest.mark.parametrize("seed", SEEDS)
def test_head_and_neck_targets_and_heterogeneities(seed: int) -> None:
    case = case_of("head-and-neck", seed)
    # PTV56 keeps > 3 mm (voxel centre to voxel centre) from PTV70.
    assert _distances(case, "PTV70", case.mask("PTV56")).min() > 3.0
    for parotid in ("Parotid_L", "Parotid_R"):
        # Level II nodes reach the parotid tail: 3-40 % of each parotid lies in a PTV.
        in_ptv = _overlap_pct(case, parotid, "PTV56") + _overlap_pct(case, parotid, "PTV70")
        assert 3.0 <= in_ptv <= 40.0, parotid
    assert np.any(case.density[case.body_mask] == 0.0)  # airway
    assert np.all(case.density[case.mask("Bone_Mandible")] >= 1.5)
    assert _distances(case, "PTV70", case.mask("SpinalCord")).min() > 10.0


@pytest.mark.parametrize("seed", SEEDS)
def test_cervix_rings_follow_the_distance_to_the_ptv(seed: int) -> None:
    case = case_of("cervix", seed)
    body = case.body_mask
    d = np.full(case.grid.shape, np.inf)
    d[body] = _distances(case, "PTV", body)
    for ring_id, (inner, outer) in {"R2": (5, 30), "R3": (10, 30), "R4": (15, 30)}.items():
        assert np.array_equal(case.mask(ring_id), body & (d > inner) & (d <= outer)), ring_id
    for organ in ("Bladder", "Rectum", "Bowel_Small"):
        assert _overlap_pct(case, organ, "PTV") > 0.5, organ
    assert not (case.mask("SpinalCord") & case.mask("PTV")).any()
    assert np.all(case.density[case.mask("Bone_Marrow")] >= 1.5)


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_brain_srs_metastases(seed: int) -> None:
    case = case_of("brain-srs", seed)
    ptvs = [f"PTV{i}" for i in range(1, 2 + seed % 3)]
    assert [s for s in case.structures if s.startswith("PTV") and "_" not in s] == ptvs
    union = np.logical_or.reduce([case.mask(p) for p in ptvs])
    assert np.array_equal(case.mask("Brain-PTV"), case.mask("Brain") & ~union)
    volumes = [case.volume_cm3(p) for p in ptvs]
    assert volumes[0] == max(volumes)  # PTV1 is the largest
    for i, a in enumerate(ptvs):
        for b in ptvs[i + 1 :]:
            assert _distances(case, a, case.mask(b)).min() > 10.0
    assert not (union & case.mask("Brainstem")).any()
    assert np.all(case.density[case.mask("Cochlea_L")] == 1.0)


def test_brain_srs_grid_is_the_head_and_holds_every_structure_whole() -> None:
    # The 1.25 mm grid is cropped to the head (body bounding box + 2 mm), down to z = -66 mm
    # where BODY, Brainstem and Brain (it holds the brainstem) end by construction: no other
    # structure reaches a face of the grid, so every DVH counts all of a structure's voxels.
    case = case_of("brain-srs", 1)
    grid = case.grid
    assert grid.spacing_mm == (1.25, 1.25, 1.25)
    assert -66.0 - 1.25 < grid.origin_mm[2] <= -66.0
    faces = {"x-": (0, 0), "x+": (0, -1), "y-": (1, 0), "y+": (1, -1), "z-": (2, 0), "z+": (2, -1)}
    touching = {
        (sid, face)
        for sid, s in case.structures.items()
        for face, (axis, i) in faces.items()
        if np.take(s.mask, i, axis=axis).any()
    }
    ends = {"BODY", "Brainstem", "Brain", "Brain-PTV"}
    zones = {(sid, face) for sid, face in touching if sid.endswith("_zone")}
    assert touching - zones == {(sid, "z-") for sid in ends}
    assert {face for _, face in zones} <= {"z-"}  # the lesions' zones split the body
    # laterally, anteriorly, posteriorly and at the vertex the body stops 1-2 voxels short
    ijk = np.argwhere(case.body_mask)
    assert ijk.min(axis=0)[:2].tolist() in ([1, 1], [1, 2], [2, 1], [2, 2])
    assert (np.asarray(grid.shape) - 1 - ijk.max(axis=0)).min() >= 1


def test_brain_srs_finer_and_coarser_grids() -> None:
    assert spacing_range_mm("brain-srs") == (1.0, 5.0) and spacing_range_mm("liver") == (2.0, 5.0)
    fine, coarse = case_of("brain-srs", 2), make_case("brain-srs", 2, spacing_mm=2.0)
    assert make_case("brain-srs", 2, spacing_mm=1.5).grid.spacing_mm == (1.5, 1.5, 1.5)
    assert fine.grid.n_voxels > 3.5 * coarse.grid.n_voxels  # (2 / 1.25)^3 = 4.1 inside
    # the same analytic shapes voxelized at 1.25 and 2 mm (measured on seeds 0-2: large organs
    # within 1 %, PTVs within 3 %, the chiasm, nerves and cochleae within 10 %)
    for sid in fine.structures:
        rel = 0.02 if fine.volume_cm3(sid) > 20.0 else 0.05 if sid.startswith("PTV") else 0.15
        assert coarse.volume_cm3(sid) == pytest.approx(fine.volume_cm3(sid), rel=rel), sid
    # the metastases are placed on one grid whatever the case's: same centres (the 2 mm and
    # 1.25 mm voxelizations of one ellipsoid: centroids within 0.1 mm measured on seeds 0-19)
    for sid in ("PTV1", "PTV2", "PTV3"):
        centres = [
            c.grid.centres_mm(np.flatnonzero(c.mask(sid))).mean(axis=0) for c in (fine, coarse)
        ]
        assert np.linalg.norm(centres[0] - centres[1]) < 0.25, sid


def test_other_spacing_gives_consistent_volumes() -> None:
    fine, coarse = case_of("prostate-basic", 0), make_case("prostate-basic", 0, spacing_mm=4.0)
    assert coarse.grid.spacing_mm == (4.0, 4.0, 4.0)
    for sid in ("PTV", "Bladder", "Rectum"):
        # Voxelization of the same analytic shapes: within 15 % between 3 and 4 mm grids.
        assert coarse.volume_cm3(sid) == pytest.approx(fine.volume_cm3(sid), rel=0.15), sid


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scenario": "lung"}, "unknown scenario 'lung'; known scenarios: prostate-basic"),
        ({"scenario": "liver", "spacing_mm": 1.5}, "within 2-5 mm for liver, got 1.5 .*brain-srs"),
        ({"scenario": "liver", "spacing_mm": 6.0}, "spacing_mm must be within 2-5 mm"),
        ({"scenario": "brain-srs", "spacing_mm": 0.8}, "within 1-5 mm for brain-srs, got 0.8"),
        ({"scenario": "liver", "seed": -1}, "seed must be an integer >= 0"),
        ({"scenario": "liver", "seed": 1.5}, "seed must be an integer >= 0"),
    ],
)
def test_bad_input_is_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        make_case(**kwargs)
