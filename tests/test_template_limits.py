"""Template values no plan can have, NaN and infinity, control characters (issue #8, 9 and 13).

Each refusal names the field as the YAML writes it (``goals[3].limit``), the reason and the
offending value, and never shows a pydantic link.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_template_schema import _raw, _write, assert_template_error

from agent.templates import load_template


def assert_refused(tmp_path: Path, data: dict[str, Any], field: str, *needles: str) -> None:
    """The file is refused naming ``field`` with every needle in its reason, and no link."""
    err = assert_template_error(tmp_path, data, field, needles[0])
    reason = next(r for f, r in err.problems if f == field)
    for needle in needles:
        assert needle in reason, reason
    assert "pydantic" not in str(err) and "http" not in str(err)


def test_a_nan_limit_in_the_yaml_is_refused_at_load(tmp_path: Path) -> None:
    data = _raw("liver")
    data["goals"][3]["limit"] = float("nan")
    assert ".nan" in yaml.safe_dump(data)  # what a user writes
    assert_refused(tmp_path, data, "goals[3].limit", "finite number", "got nan")
    data = _raw("liver")
    data["goals"][3]["variation"] = float("inf")
    assert_refused(tmp_path, data, "goals[3].variation", "finite number", "got inf")


@pytest.mark.parametrize(
    ("mutate", "field", "needles"),
    [
        # a dose limit of -5 Gy, whichever the comparator
        (lambda d: d["goals"][3].update(limit="-5 Gy"), "goals[3].limit", ("negative", "-5 Gy")),
        (
            lambda d: d["goals"][1].update(limit="-0.1 Rx"),  # a >= goal
            "goals[1].limit",
            ("negative", "-0.1 Rx (= -5 Gy)"),
        ),
        # a >= volume above 100 %, a <= volume below 0 %, a strict < 0
        (lambda d: d["goals"][0].update(limit=120), "goals[0].limit", ("0..100", "got 120 %")),
        (lambda d: d["goals"][4].update(limit=-1), "goals[4].limit", ("0..100", "got -1 %")),
        (
            lambda d: d["goals"][4].update(limit=0, comparator="<"),
            "goals[4].limit",
            ("V60%Rx < 0 % is impossible",),
        ),
        (lambda d: d["objectives"][2].update(dose="-5 Gy"), "objectives[2].dose", ("negative",)),
        (
            lambda d: d["objectives"][0]["range"].update(dose=["-0.1 Rx", "1.02 Rx"]),
            "objectives[0].range.dose[0]",
            ("negative",),
        ),
        (
            lambda d: d["objectives"][3]["range"].update(volume_pct=[0, 120]),
            "objectives[3].range.volume_pct[1]",
            ("less than or equal to 100", "got 120"),
        ),
        (
            lambda d: d["objectives"][0].update(priority=float("inf")),
            "objectives[0].priority",
            ("finite", "got inf"),
        ),
        (
            lambda d: d["objectives"][6].update(fall_off=20),
            "objectives[6].fall_off",
            ("less than or equal to 10", "got 20"),
        ),
        (
            lambda d: d["prescription"]["normalization"].update(value="0 Rx"),
            "prescription.normalization.value",
            ("must be > 0",),
        ),
        (
            lambda d: d["score"]["criteria"][2].update(full=-3),
            "score.criteria[2].full",
            ("no plan can reach", "got -3 %"),
        ),
        (
            lambda d: d["prescription"].update(dose_gy=float("nan")),
            "prescription.dose_gy",
            ("finite", "got nan"),
        ),
    ],
)
def test_limits_no_plan_can_meet_are_refused(
    tmp_path: Path, mutate: Any, field: str, needles: tuple[str, ...]
) -> None:
    data = copy.deepcopy(_raw("liver"))
    mutate(data)
    assert_refused(tmp_path, data, field, *needles)


def test_a_paddick_ci_above_one_is_refused(tmp_path: Path) -> None:
    data = _raw("head-and-neck")
    i = next(i for i, g in enumerate(data["goals"]) if g["metric"] == "CI_paddick")
    data["goals"][i]["limit"] = 1.2
    assert_refused(tmp_path, data, f"goals[{i}].limit", "0..1", "got 1.2")


def test_a_geud_parameter_the_port_refuses_is_named_as_written(tmp_path: Path) -> None:
    data = _raw("liver")
    data["objectives"][2] = {
        "kind": "geud",
        "structure": "Liver-PTV",
        "operator": "upper",
        "dose": "0.45 Rx",
        "parameter_a": 0,
        "priority": 20,
    }
    assert_refused(tmp_path, data, "objectives[2].parameter_a", "non-zero")


def test_control_characters_in_names_are_refused_and_stripped_from_text(tmp_path: Path) -> None:
    data = _raw("liver")
    data["structures"][0]["aliases"].append("\x1b[2JPTV")  # clears the screen when printed
    n = len(data["structures"][0]["aliases"]) - 1
    assert "\\e[2J" in yaml.safe_dump(data)  # the YAML escape a user (or a tool) writes
    assert_refused(tmp_path, data, f"structures[0].aliases[{n}]", "U+001B (ESC)", "\\x1b[2JPTV")
    data = _raw("liver")
    data["goals"][0]["structure"] = "PTV\x07"
    assert_refused(tmp_path, data, "goals[0].structure", "control character")
    data = _raw("liver")
    data["description"] = "Liver \x1b[31mred\x1b[0m SBRT\n"
    data["goals"][0]["note"] = "bell\x07"
    t = load_template(_write(tmp_path, data))
    assert t.description == "Liver [31mred[0m SBRT " and t.goals[0].note == "bell"
    data = _raw("liver")
    data["structures"][1]["id"] = "L" * 65
    assert_refused(tmp_path, data, "structures[1].id", "at most 64 characters")
