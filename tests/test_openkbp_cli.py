"""``rtplan plan --openkbp PATIENT_DIR`` (#13): one case source, the OpenKBP templates by dose
levels, no case label and no folder name anywhere in the session; a few iterations planned
on the vendored patient (tests/data/openkbp, OpenKBP pt_1, MIT)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import agent.cli.main as cli
from agent.cli.case_source import SourceKind, choose_case
from agent.cli.errors import CliError
from agent.report import build_report
from agent.templates import load_template, match_structures
from esapi_bridge.dto import DvhCurve
from mock_tps.openkbp import load_openkbp

PATIENT = Path(__file__).resolve().parent / "data" / "openkbp" / "pt_1"
runner = CliRunner()


def _outside_pct(name: str) -> float:
    """Share (%) of a structure's voxels outside possible_dose_mask, from the raw CSV files."""
    idx = {}
    for stem in (name, "possible_dose_mask"):
        with gzip.open(PATIENT / f"{stem}.csv.gz", "rt") as f:
            idx[stem] = np.loadtxt(f, delimiter=",", skiprows=1, usecols=0, ndmin=1)
    return 100.0 * float(np.mean(~np.isin(idx[name], idx["possible_dose_mask"])))


def test_openkbp_is_one_case_source_with_its_template() -> None:
    case = choose_case(openkbp=PATIENT)
    assert case.source.kind is SourceKind.OPENKBP and case.source.is_patient
    assert case.template_name == "head-and-neck-openkbp-3level"  # pt_1 has a PTV63
    assert case.source.label == "openkbp" and case.notes == ()
    two = choose_case(openkbp=PATIENT, template="head-and-neck-openkbp")
    assert two.template_name == "head-and-neck-openkbp"
    assert two.notes == (
        "the patient has a PTV63, which template head-and-neck-openkbp does not plan: "
        "use head-and-neck-openkbp-3level",
    )
    with pytest.raises(CliError, match="give one case source, not --scenario liver and --openkbp"):
        choose_case(scenario="liver", openkbp=PATIENT)
    with pytest.raises(CliError, match="an OpenKBP patient has none: drop --seed"):
        choose_case(openkbp=PATIENT, seed=1)
    with pytest.raises(CliError, match="not a directory"):
        choose_case(openkbp=PATIENT / "ct.csv.gz")
    with pytest.raises(CliError, match="add --openkbp PATIENT_DIR"):
        choose_case(template="head-and-neck-openkbp")
    with pytest.raises(CliError, match=r"drop --openkbp"):
        choose_case(openkbp=PATIENT, template="prostate-basic")


def test_two_level_patients_get_the_two_level_template(tmp_path: Path) -> None:
    folder = tmp_path / "two"
    shutil.copytree(PATIENT, folder)
    (folder / "PTV63.csv.gz").unlink()
    assert choose_case(openkbp=folder).template_name == "head-and-neck-openkbp"


def test_openkbp_names_match_the_template_aliases() -> None:
    case = load_openkbp(PATIENT).case
    tpl = load_template("head-and-neck-openkbp-3level")
    found = match_structures(tpl, list(case.structures))
    assert {k: found[k] for k in ("Parotid_L", "Parotid_R", "Bone_Mandible", "SpinalCord")} == {
        "Parotid_L": "LeftParotid",
        "Parotid_R": "RightParotid",
        "Bone_Mandible": "Mandible",
        "SpinalCord": "SpinalCord",
    }
    assert {"Esophagus", "Larynx", "Cavity_Oral"}.isdisjoint(found)  # pt_1 lacks them


def test_plan_openkbp_from_the_cli(tmp_path: Path) -> None:
    copy = tmp_path / "pt_1"  # the folder's name must reach no file of the session
    shutil.copytree(PATIENT, copy)
    out = tmp_path / "session"
    result = runner.invoke(
        cli.app,
        ["plan", "--openkbp", str(copy), "--out", str(out), "--max-iterations", "2",
         "--cache-dir", str(tmp_path / "cache"), "--no-report", "--json"],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    header = json.loads((out / "journal.jsonl").read_text().splitlines()[0])
    assert header["case"]["case_label"] is None
    assert header["case_source"]["kind"] == "openkbp" and header["case_source"]["name"] is None
    assert header["template_name"] == "head-and-neck-openkbp-3level"
    summary = json.loads((out / "summary.json").read_text())
    final = summary["final_evaluation"]
    assert {"larynx_mean", "esophagus_mean", "oral_mean"} <= set(final["skipped_goals"])
    assert next(g for g in final["goals"] if g["goal_id"] == "ptv70_d95")["value"] == (
        pytest.approx(70.0, abs=0.05)
    )  # normalized to PTV70 D95 = Rx
    ref = summary["clinical_reference"]  # the clinical plan beside the agent's
    assert ref["clinical_ptv70_d95_gy"] == pytest.approx(68.65, abs=0.05)  # as delivered
    assert ref["rescale_factor"] == pytest.approx(ref["agent_ptv70_d95_gy"] / 68.65, abs=1e-3)
    delivered = {g["goal_id"]: g for g in ref["delivered"]["goals"]}
    rescaled = {g["goal_id"]: g for g in ref["rescaled"]["goals"]}
    assert delivered["ptv70_d95"]["value"] == pytest.approx(ref["clinical_ptv70_d95_gy"])
    assert rescaled["ptv70_d95"]["value"] == pytest.approx(ref["agent_ptv70_d95_gy"], abs=0.02)
    assert rescaled["cord_max"]["value"] == pytest.approx(
        delivered["cord_max"]["value"] * ref["rescale_factor"], rel=1e-3
    )
    assert len(ref["criteria"]) == 3 * 3 + 5 * 2  # 3 PTVs x D99/D95/D1, 5 organs x D0.1cc/mean
    assert "clinical TPS" in ref["source_note"] and ref["agent_mu_proxy"] > 1.0
    assert (ref["ct_capped_voxels"], ref["ct_cap_hu"]) == (
        load_openkbp(PATIENT).capped_voxels,
        1600,
    )
    cord = [c for c in ref["criteria"] if c["structure_id"] == "SpinalCord"]
    assert [c["outside_dose_region_pct"] for c in cord] == pytest.approx(
        [_outside_pct("SpinalCord")] * 2
    )  # pt_1's cord lies partly outside OpenKBP's dose region
    assert "clinical plan rescaled" in result.stderr + result.stdout
    curves = ref["clinical_dvhs"]  # the rescaled clinical DVHs for the report's overlay
    assert {"PTV70", "SpinalCord", "LeftParotid"} <= set(curves)
    ptv70 = DvhCurve.model_validate(curves["PTV70"])
    # rescaled to the agent's PTV70 D95 (tolerance: one 0.1 Gy bin of the kept curve)
    assert ptv70.dose_at_volume_pct(95.0) == pytest.approx(ref["agent_ptv70_d95_gy"], abs=0.1)
    html = build_report(out).read_text()  # the clinical plan beside the agent's in the report
    assert 'id="clinical-reference"' in html and "from a clinical TPS" in html
    assert "clinical plan, rescaled, dotted" in html
    assert html.count('<tr data-goal="') == len(final["goals"])  # one row per evaluated goal
    assert html.count('<tr class="criterion-row">') == len(ref["criteria"])  # one per criterion
    for path in out.rglob("*"):
        if path.is_file():
            assert "pt_1" not in path.read_bytes().decode("utf-8", "replace"), path.name
    assert "pt_1" not in result.stdout
    replay = runner.invoke(cli.app, ["replay", str(out), "--out", str(tmp_path / "replay")])
    assert replay.exit_code != 0 and "plan it again with --openkbp PATIENT_DIR" in replay.output
