"""``rtplan export`` and ``rtplan export-case`` (#13, item 5): the final dose kept with the
session, the export of a phantom session, identity from the source DICOM after its
content-hash check, and the refusals."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_export_helpers import openkbp_dicom, phantom_session, runner  # noqa: F401 (fixtures)

import agent.cli.main as cli
from esapi_bridge.dto import CaseSource, CaseSourceKind
from mock_tps.dicom.case_from_dicom import load_dicom
from mock_tps.dicom.plan_spec import DicomPlanSpec
from mock_tps.dicom.write_rtdose import read_rtdose_gy
from mock_tps.dvh import dvh_from_doses
from mock_tps.final_dose import (
    FINAL_DOSE_FILENAME,
    final_dose_from_case,
    load_final_dose,
    save_final_dose,
)


@pytest.fixture
def session(phantom_session: Path) -> Path:  # noqa: F811
    return phantom_session


def test_the_session_keeps_its_final_dose(session: Path) -> None:
    final = load_final_dose(session / FINAL_DOSE_FILENAME)
    header = json.loads((session / "journal.jsonl").read_text().splitlines()[0])
    assert final.meta.case_source is not None
    assert final.meta.case_source.model_dump(mode="json") == header["case_source"]
    assert final.meta.total_dose_gy == header["case"]["prescription_gy"]
    assert final.meta.fractions == header["case"]["fractions"]
    # the final plan of the session: its DVHs are the report's final snapshot's (which
    # stores doses rounded to 0.01 Gy: tolerance 0.005 Gy)
    snapshot = json.loads((session / "dvh_final.json").read_text())
    for curve in snapshot["curves"]:
        sid = curve["structure_id"]
        ours = dvh_from_doses(sid, final.dose_gy[final.masks[sid]], final.grid.voxel_volume_cm3)
        assert ours.mean_dose_gy == pytest.approx(curve["mean_dose_gy"], abs=0.005), sid
        assert ours.max_dose_gy == pytest.approx(curve["max_dose_gy"], abs=0.005), sid


def test_export_a_phantom_session(session: Path, tmp_path: Path) -> None:
    rd = tmp_path / "out" / "RD.dcm"
    result = runner.invoke(
        cli.app, ["export", str(session), "--rtdose", str(rd), "--dvh-csv", str(tmp_path / "d.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "anonymous (RTPLAN^ANON)" in result.output and "Eclipse import untested" in result.output
    rp, rs = tmp_path / "out" / "RD-plan.dcm", tmp_path / "out" / "RD-structures.dcm"
    dose, rd_ds, rp_ds, rs_ds = pydicom.dcmread(rd), rd, pydicom.dcmread(rp), pydicom.dcmread(rs)
    assert str(dose.PatientName) == "RTPLAN^ANON" and str(rp_ds.PatientName) == "RTPLAN^ANON"
    assert dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rp_ds.SOPInstanceUID
    assert rp_ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs_ds.SOPInstanceUID
    assert dose.FrameOfReferenceUID == rp_ds.FrameOfReferenceUID == rs_ds.FrameOfReferenceUID
    final = load_final_dose(session / FINAL_DOSE_FILENAME)
    back, geometry = read_rtdose_gy(rd_ds)
    assert geometry.shape == final.grid.shape  # positions as DICOM DS (16 characters): 1e-9 mm
    assert geometry.origin_mm == pytest.approx(final.grid.origin_mm, abs=1e-9)
    assert geometry.spacing_mm == pytest.approx(final.grid.spacing_mm, abs=1e-9)
    assert np.max(np.abs(back - final.dose_gy)) <= float(dose.DoseGridScaling) / 2 + 1e-6
    rows = list(csv.DictReader((tmp_path / "d.csv").open()))
    assert {r["structure_id"] for r in rows} == set(final.masks)
    ptv = [r for r in rows if r["structure_id"] == "PTV"]
    assert float(ptv[0]["dose_gy"]) == 0.0 and float(ptv[0]["volume_pct"]) == 100.0
    assert float(ptv[-1]["volume_pct"]) == 0.0
    assert float(ptv[0]["volume_cm3"]) == pytest.approx(
        final.masks["PTV"].sum() * final.grid.voxel_volume_cm3, abs=1e-3
    )


def test_refusals(session: Path, tmp_path: Path) -> None:
    def export(*args: str) -> str:
        result = runner.invoke(cli.app, ["export", *args, "--rtdose", str(tmp_path / "RD.dcm")])
        assert result.exit_code == 2, result.output
        return " ".join(result.output.split())

    assert "no session directory at" in export(str(tmp_path / "missing"))
    assert "is not a session directory (no journal.jsonl)" in export(str(tmp_path))
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(session / "journal.jsonl", bare / "journal.jsonl")
    assert "no final dose (dose_final.npz)" in export(str(bare))
    assert "not from DICOM: drop --source-dicom" in export(
        str(session), "--source-dicom", str(tmp_path)
    )
    assert not (tmp_path / "RD.dcm").exists()


@pytest.fixture(scope="module")
def dicom_case(openkbp_dicom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """OpenKBP pt_1 as DICOM (``rtplan export-case``), its CT then given a patient name (the
    content hash covers HU, geometry and contours, not the patient attributes)."""
    folder = tmp_path_factory.mktemp("named") / "dicom"
    shutil.copytree(openkbp_dicom, folder)
    for path in folder.glob("CT_*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID = "TEST^PHANTOM", "T-0001"
        ds.save_as(path)
    return folder


def _dicom_session(folder: Path, out: Path) -> Path:
    """A session directory whose final dose is on the DICOM import of ``folder`` (a smooth
    dose, not planned: the export does not care how the dose came about)."""
    imported = load_dicom(folder, DicomPlanSpec(target_id="PTV70", rx_gy=70.0, fractions=35))
    x, y, _ = imported.case.grid.coordinates_mm()
    dose = 70.0 * np.exp(-(((x - x.mean()) / 60.0) ** 2 + ((y - y.mean()) / 60.0) ** 2))
    source = CaseSource(kind=CaseSourceKind.DICOM, content_hash=imported.content_hash)
    out.mkdir(parents=True)
    (out / "journal.jsonl").write_text("{}\n")  # the export reads only dose_final.npz
    save_final_dose(final_dose_from_case(imported.case, dose, source), out / FINAL_DOSE_FILENAME)
    return out


def test_export_with_the_source_dicom(dicom_case: Path, tmp_path: Path) -> None:
    session = _dicom_session(dicom_case, tmp_path / "session")
    rd = tmp_path / "RD.dcm"
    missing = runner.invoke(cli.app, ["export", str(session), "--rtdose", str(rd)])
    assert missing.exit_code == 2
    assert "planned from DICOM: pass --source-dicom DIR" in " ".join(missing.output.split())
    changed = tmp_path / "changed"
    shutil.copytree(dicom_case, changed)
    ct = pydicom.dcmread(changed / "CT_0050.dcm")
    pixels = ct.pixel_array.copy()
    pixels[10, 10] += 100
    ct.PixelData = pixels.tobytes()
    ct.save_as(changed / "CT_0050.dcm")
    refused = runner.invoke(
        cli.app, ["export", str(session), "--rtdose", str(rd), "--source-dicom", str(changed)]
    )
    assert refused.exit_code == 2 and "content hash differs" in " ".join(refused.output.split())
    done = runner.invoke(
        cli.app, ["export", str(session), "--rtdose", str(rd), "--source-dicom", str(dicom_case)]
    )
    assert done.exit_code == 0, done.output
    ct0, rs = pydicom.dcmread(dicom_case / "CT_0001.dcm"), pydicom.dcmread(dicom_case / "RS.dcm")
    dose, plan = pydicom.dcmread(rd), pydicom.dcmread(tmp_path / "RD-plan.dcm")
    for ds in (dose, plan):
        assert ds.FrameOfReferenceUID == ct0.FrameOfReferenceUID
        assert ds.StudyInstanceUID == ct0.StudyInstanceUID
        assert (str(ds.PatientName), ds.PatientID) == ("TEST^PHANTOM", "T-0001")
    assert plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == rs.SOPInstanceUID
    assert not (tmp_path / "RD-structures.dcm").exists()  # the source's structure set is used
    _, geometry = read_rtdose_gy(rd)
    # the dose grid lies in the CT's patient coordinates: its first voxel is the CT's first
    # plus a whole number of dose voxels (the import crops the resampled grid)
    first = np.asarray([float(v) for v in ct0.ImagePositionPatient])
    steps = (np.asarray(geometry.origin_mm) - first) / np.asarray(geometry.spacing_mm)
    assert geometry.spacing_mm == (3.0, 3.0, 3.0)
    assert np.allclose(steps, np.rint(steps), atol=1e-6) and np.all(steps >= 0)


@pytest.mark.slow
def test_plan_from_dicom_then_export(dicom_case: Path, tmp_path: Path) -> None:
    """End to end (about 30 s with a cold dose-influence cache): ``rtplan plan --dicom`` on
    OpenKBP pt_1 as DICOM, then ``rtplan export --source-dicom``, validated by dciodvfy."""
    from mock_tps.dicom.validate import dciodvfy_path, validate_file, validate_rtdose_attributes

    session = tmp_path / "session"
    planned = runner.invoke(
        cli.app,
        ["plan", "--dicom", str(dicom_case), "--template", "head-and-neck-openkbp-3level",
         "--max-iterations", "1", "--no-report", "--out", str(session)],
    )  # fmt: skip
    assert planned.exit_code == 0, planned.output
    rd = tmp_path / "RD.dcm"
    done = runner.invoke(
        cli.app, ["export", str(session), "--rtdose", str(rd), "--source-dicom", str(dicom_case)]
    )
    assert done.exit_code == 0, done.output
    ct0 = pydicom.dcmread(dicom_case / "CT_0001.dcm")
    dose = pydicom.dcmread(rd)
    assert (dose.FrameOfReferenceUID, dose.StudyInstanceUID) == (
        ct0.FrameOfReferenceUID,
        ct0.StudyInstanceUID,
    )
    back, _ = read_rtdose_gy(rd)
    final = load_final_dose(session / FINAL_DOSE_FILENAME)
    assert np.max(np.abs(back - final.dose_gy)) <= float(dose.DoseGridScaling) / 2 + 1e-6
    if dciodvfy_path() is not None:
        assert validate_rtdose_attributes(rd, tmp_path).errors == ()
        assert validate_file(tmp_path / "RD-plan.dcm").errors == ()


def test_a_resumed_session_keeps_its_final_dose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupted at its second optimization (original objectives restored: no final dose),
    then resumed: the resumed session writes dose_final.npz."""
    from agent.cli import backends

    real = backends.mock_session_factory
    interrupt = {"on": True}

    def factory(*args, **kwargs):  # type: ignore[no-untyped-def]
        open_real = real(*args, **kwargs)

        def open_session(config):  # type: ignore[no-untyped-def]
            session = open_real(config)
            if interrupt["on"]:
                optimize, calls = session.optimize, []

                def interrupted(request=None):  # type: ignore[no-untyped-def]
                    calls.append(request)
                    if len(calls) == 2:
                        raise KeyboardInterrupt
                    return optimize(request)

                session.optimize = interrupted  # type: ignore[method-assign]
            return session

        return open_session

    monkeypatch.setattr(backends, "mock_session_factory", factory)
    out = tmp_path / "s"
    args = ["--scenario", "prostate-basic", "--max-iterations", "2", "--no-report"]
    stopped = runner.invoke(cli.app, ["plan", *args, "--out", str(out)])
    assert stopped.exit_code == 130, stopped.output
    assert not (out / FINAL_DOSE_FILENAME).exists()
    interrupt["on"] = False
    resumed = runner.invoke(cli.app, ["resume", str(out), "--no-report"])
    assert resumed.exit_code == 0, resumed.output
    final = load_final_dose(out / FINAL_DOSE_FILENAME)
    curve = next(
        c for c in json.loads((out / "dvh_final.json").read_text())["curves"]
        if c["structure_id"] == "PTV"
    )  # fmt: skip
    ptv = final.dose_gy[final.masks["PTV"]]
    assert float(ptv.mean()) == pytest.approx(curve["mean_dose_gy"], abs=0.005)  # 0.01 Gy rounding
