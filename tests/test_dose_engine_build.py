"""How the dose-influence operator is built: progress, memory layout and the broad columns.

The physics of the result is tested in ``test_dose_engine.py`` (against the point-dose API) and
``test_beam_model.py`` (against measured data).
"""

from __future__ import annotations

import numpy as np
import pytest
from water_phantoms import field_10x10_case, four_field_box

from mock_tps.case import Case
from mock_tps.dose_engine import compute_dose_influence
from mock_tps.dose_influence import DoseInfluence
from mock_tps.scatter import beam_groups


@pytest.fixture(scope="module")
def field_dij() -> tuple[Case, DoseInfluence]:
    case = field_10x10_case()
    return case, compute_dose_influence(case)


def test_progress_reports_every_beam_then_every_broad_group() -> None:
    case = four_field_box()
    calls: list[tuple[str, int, int]] = []
    compute_dose_influence(case, progress=lambda *call: calls.append(call))
    assert calls[:4] == [("primary", k, 4) for k in (1, 2, 3, 4)]
    # four static fields 90 deg apart: one broad group each
    assert calls[4:] == [("broad", k, 4) for k in (1, 2, 3, 4)]


def test_arc_control_points_within_the_group_span_share_broad_columns() -> None:
    # a 6-degree arc (cervix) is grouped in pairs within arc_group_deg = 10; static fields
    # 40 degrees apart and a couch change never are
    assert beam_groups([180.0, 186.0, 192.0, 198.0], [0.0] * 4, 10.0) == [[0, 1], [2, 3]]
    assert beam_groups([0.0, 2.0, 4.0, 6.0], [0.0, 0.0, 90.0, 90.0], 10.0) == [[0, 1], [2, 3]]
    assert beam_groups([0.0, 40.0, 80.0], [0.0] * 3, 10.0) == [[0], [1], [2]]
    assert beam_groups([0.0, 2.0], [0.0] * 2, 0.0) == [[0], [1]]


def test_broad_columns_are_squares_of_2x2_beamlets(field_dij: tuple[Case, DoseInfluence]) -> None:
    _, dij = field_dij
    assert dij.broad is not None
    # 20 x 20 beamlets of 5 mm: 10 x 10 broad columns of 10 mm (broad_column_mm), each
    # beamlet on the square that holds it; the dose tests above hold with them
    assert dij.broad.values.shape[1] == 100
    block = dij.beamlet_ij // 2
    code = (block[:, 0] + 5) * 10 + (block[:, 1] + 5)
    for c in np.unique(dij.broad.column_of):
        assert np.unique(code[dij.broad.column_of == c]).size == 1
    assert np.bincount(dij.broad.column_of).tolist() == [4] * 100


def test_cold_build_through_the_cache_logs_progress_per_beam(
    tmp_path: object, field_dij: tuple[Case, DoseInfluence]
) -> None:
    from loguru import logger

    from mock_tps.dij_cache import cached_dose_influence

    case, _ = field_dij
    records: list[dict[str, object]] = []
    sink = logger.add(lambda m: records.append(m.record), level="INFO")
    try:
        cached_dose_influence(case, None, tmp_path)  # type: ignore[arg-type]
    finally:
        logger.remove(sink)
    # bound progress=True: the CLI's progress sink shows it
    lines = [str(r["message"]) for r in records if r["extra"].get("progress")]  # type: ignore[union-attr]
    assert any("beam 1/1 (100 %)" in line for line in lines), lines
    assert any("scatter group 1/1" in line for line in lines), lines


def test_primary_entries_are_float32_while_the_matrix_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mock_tps.dose_engine as engine

    built: list[object] = []
    original = engine.beam_entries

    def spy(*args: object) -> object:
        entries = original(*args)  # type: ignore[arg-type]
        built.append(entries)
        return entries

    monkeypatch.setattr(engine, "beam_entries", spy)
    compute_dose_influence(field_10x10_case())
    # the per-beam arrays held until the CSR assembly: 4-byte values, 2-byte beamlet columns
    assert [e.vals.dtype for e in built] == [np.float32]  # type: ignore[attr-defined]
    assert [e.cols.dtype for e in built] == [np.uint16]  # type: ignore[attr-defined]
