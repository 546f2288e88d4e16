"""The frozen benchmark set (#9): the engine, phantoms and templates the calibration and the
cohort in ``bench/results`` were measured on must be the ones the tree builds."""

from __future__ import annotations

from bench.freeze import current_set, differences, load_frozen


def test_the_tree_builds_the_frozen_benchmark_set() -> None:
    found = differences(load_frozen(), current_set())
    assert found == [], (
        "the engine, a phantom or a template changed since the calibration and the cohort "
        "were measured: bump the version, re-run them, then python -m bench.freeze --write: "
        + "; ".join(found)
    )


def test_differences_name_what_changed() -> None:
    frozen = {
        "engine_version": "e1",
        "phantom_version": "p1",
        "tg119_sha256": "x",
        "templates": {"liver": "aa", "cervix": "bb"},
        "phantoms": {"liver": {"0": "h0", "1": "h1"}},
    }
    now = {
        **frozen,
        "engine_version": "e2",
        "templates": {"liver": "aa", "cervix": "cc"},
        "phantoms": {"liver": {"0": "h0", "1": "changed"}},
    }
    assert differences(frozen, frozen) == []
    assert differences(frozen, now) == [
        "engine_version: frozen 'e1', now 'e2'",
        "templates cervix: frozen 'bb', now 'cc'",
        "phantoms liver: seeds 1 differ",
    ]
