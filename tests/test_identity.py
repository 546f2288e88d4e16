"""Item 8 of #8: keyed pseudonyms, safe case labels, and nothing identifying in the records."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from fakes import FakeTpsSession
from journal_helpers import run_session
from pydantic import ValidationError

from agent.report import build_report
from agent.session.identity import case_identity, plan_pseudonym
from agent.session.journal import read_journal
from agent.session.records import CaseIdentity, SessionHeader
from agent.session.secret import derive_key, load_secret
from esapi_bridge.dto import CaseSource, CaseSourceKind

PLAN_ID = "PAT0042_SMITH^JOHN_C1"


def test_the_plan_pseudonym_is_an_hmac_with_the_installation_secret() -> None:
    secret = load_secret()
    assert secret is not None
    key = derive_key(secret, "pseudonym")
    expected = hmac.new(key, PLAN_ID.encode(), hashlib.sha256).hexdigest()[:16]
    assert plan_pseudonym(PLAN_ID) == expected
    assert plan_pseudonym(PLAN_ID) != hashlib.sha256(PLAN_ID.encode()).hexdigest()[:16]
    assert plan_pseudonym(PLAN_ID, b"another installation's secret!!") != expected
    info = FakeTpsSession(plan_id=PLAN_ID).plan_info()
    assert case_identity(info, []).plan_pseudonym == expected


def test_no_plan_id_or_unkeyed_digest_reaches_the_session_directory(tmp_path: Path) -> None:
    session_dir = tmp_path / "s"
    run_session(session_dir, FakeTpsSession(plan_id=PLAN_ID))
    build_report(session_dir)
    unkeyed = hashlib.sha256(PLAN_ID.encode()).hexdigest()[:16].encode()
    files = [p for p in session_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"journal.jsonl", "summary.json", "report.html"}
    for file in files:
        data = file.read_bytes()
        for needle in (PLAN_ID.encode(), b"SMITH", b"PAT0042", unkeyed):
            assert needle not in data, f"{needle!r} found in {file.name}"
    assert read_journal(session_dir).header.case.plan_pseudonym == plan_pseudonym(PLAN_ID)


@pytest.mark.parametrize(
    "label", ["prostate-basic/seed0", "tg119/easy", "openkbp/pt_241", "fake/seed0"]
)
def test_case_labels_of_simulated_and_public_cases_are_accepted(label: str) -> None:
    info = FakeTpsSession().plan_info()
    assert case_identity(info, [], label).case_label == label


@pytest.mark.parametrize(
    "label",
    [
        "Smith, John",
        "../../home/jsmith",
        "/data/patients/DOE_JOHN",
        "prostate/seed0\x1b[2J",
        "a/b/c/d/e",
        "x" * 65,
        "",
    ],
)
def test_case_labels_beyond_the_safe_pattern_are_refused(label: str) -> None:
    with pytest.raises(ValidationError, match="case label"):
        CaseIdentity(
            plan_pseudonym="0" * 16,
            structure_set_hash="0" * 16,
            technique="IMRT",
            prescription_gy=60.0,
            fractions=30,
            case_label=label,
        )


def test_patient_data_gets_no_case_label() -> None:
    case = CaseIdentity(
        plan_pseudonym="0" * 16,
        structure_set_hash="0" * 16,
        technique="IMRT",
        prescription_gy=60.0,
        fractions=30,
        case_label="prostate/seed0",
    )
    fields = {
        "session_id": "s",
        "config": {"template": "prostate-basic"},
        "template_name": "prostate-basic",
        "template_hash": "0" * 16,
        "structure_map": {},
        "original_objectives": [],
    }
    SessionHeader(case=case, case_source=CaseSource(kind=CaseSourceKind.SCENARIO), **fields)
    with pytest.raises(ValidationError, match="gets no case label"):
        SessionHeader(case=case, case_source=CaseSource(kind=CaseSourceKind.DICOM), **fields)
    with pytest.raises(ValidationError):  # a case source never carries a folder name
        CaseSource(kind=CaseSourceKind.DICOM, name="/data/patients/DOE_JOHN")
