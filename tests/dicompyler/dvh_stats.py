"""DVH statistics of an RT Dose with an RT Structure Set, computed by dicompyler-core.

Runs in the dicompyler venv (dicompyler-core 0.5.6 does not import with pydicom 3; see
``tests/dicompyler_env.py``), never in the project's. Prints one JSON object: per ROI name
``{"volume_cm3", "mean_gy", "max_gy", "D95_gy", "D50_gy", "D2_gy", "cumulative_pct"}`` from
``dicompylercore.dvhcalc.get_dvh`` with its defaults (1 cGy bins, no interpolation):
``D<x>_gy`` are dicompyler's own statistics, ``cumulative_pct[i]`` the % of the volume
receiving at least ``i`` cGy.

Usage: python dvh_stats.py RTSTRUCT RTDOSE [ROI_NAME ...]
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from dicompylercore import dicomparser, dvhcalc

    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    rtstruct, rtdose, wanted = argv[0], argv[1], set(argv[2:])
    structures = dicomparser.DicomParser(rtstruct).GetStructures()
    out = {}
    for number, s in structures.items():
        name = s["name"]
        if wanted and name not in wanted:
            continue
        dvh = dvhcalc.get_dvh(rtstruct, rtdose, number)
        out[name] = {
            "volume_cm3": float(dvh.volume),
            "mean_gy": float(dvh.mean),
            "max_gy": float(dvh.max),
            "D95_gy": float(dvh.statistic("D95").value),
            "D50_gy": float(dvh.statistic("D50").value),
            "D2_gy": float(dvh.statistic("D2").value),
            "cumulative_pct": [round(float(v), 6) for v in dvh.relative_volume.counts],
        }
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
