"""The frozen benchmark set: the dose engine, phantoms and site templates the calibration and the
cohort were measured on, pinned by version and content hash.

``bench/frozen_set.json`` holds the engine version, the phantom version, each template's hash
(:func:`agent.session.identity.template_hash`) and each phantom's content hash
(:meth:`mock_tps.case.Case.content_hash`: grid, densities, beams, every structure's mask, the
prescription) for the calibration seeds; TG-119 is pinned by its file's sha256
(:data:`mock_tps.tg119_fetch.SHA256`). A test compares the tree with it, so a change to a
phantom or a template cannot slip under results measured before it: change the version, re-run
the calibration and the cohort, then ``python -m bench.freeze --write``.

Run: ``python -m bench.freeze`` (check, exit 1 on a difference) or ``--write``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rtplan_common.atomic_io import write_text_atomic

FROZEN_PATH = Path(__file__).resolve().parent / "frozen_set.json"
#: Seeds of every calibration and cohort run (``bench.calibration`` default: 10 seeds).
FROZEN_SEEDS = tuple(range(10))


def current_set(seeds: tuple[int, ...] = FROZEN_SEEDS) -> dict[str, Any]:
    """The benchmark set as the tree builds it now: :func:`stamp` plus the phantoms."""
    from mock_tps.phantoms import list_scenarios, make_case
    from mock_tps.tg119_fetch import SHA256 as TG119_SHA256

    return {
        **stamp(),
        "phantoms": {
            scenario: {str(seed): make_case(scenario, seed).content_hash() for seed in seeds}
            for scenario in list_scenarios()
        },
        "tg119_sha256": TG119_SHA256,
    }


def stamp() -> dict[str, Any]:
    """What a calibration or cohort result records of the set it ran on (quick: versions and
    template hashes; the phantoms are pinned by their version and the test of this module)."""
    from agent.session.identity import template_hash
    from agent.templates import list_templates, load_template
    from mock_tps.dose_engine import ENGINE_VERSION
    from mock_tps.phantoms import PHANTOM_VERSION

    return {
        "engine_version": ENGINE_VERSION,
        "phantom_version": PHANTOM_VERSION,
        "templates": {name: template_hash(load_template(name)) for name in list_templates()},
    }


def load_frozen(path: Path = FROZEN_PATH) -> dict[str, Any]:
    """The recorded set (``FileNotFoundError`` if none was written)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def differences(frozen: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two sets, one line each (empty: the same)."""
    out: list[str] = []
    for key in ("engine_version", "phantom_version", "tg119_sha256"):
        if frozen.get(key) != now.get(key):
            out.append(f"{key}: frozen {frozen.get(key)!r}, now {now.get(key)!r}")
    for group in ("templates", "phantoms"):
        old, new = frozen.get(group, {}), now.get(group, {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                if isinstance(old.get(name), dict) and isinstance(new.get(name), dict):
                    seeds = sorted(
                        {
                            s
                            for s in {*old[name], *new[name]}
                            if old[name].get(s) != new[name].get(s)
                        },
                        key=int,
                    )
                    out.append(f"{group} {name}: seeds {', '.join(seeds)} differ")
                else:
                    out.append(f"{group} {name}: frozen {old.get(name)!r}, now {new.get(name)!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Check the tree against ``bench/frozen_set.json`` or (``--write``) record it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="record the current set")
    args = parser.parse_args(argv)
    from loguru import logger

    logger.remove()
    now = current_set()
    if args.write:
        write_text_atomic(FROZEN_PATH, json.dumps(now, indent=2, sort_keys=True) + "\n")
        print(f"wrote {FROZEN_PATH}")
        return 0
    found = differences(load_frozen(), now)
    for line in found:
        print(line)
    print("the tree matches the frozen set" if not found else f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
