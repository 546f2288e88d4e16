"""Item 18 of #8: journal schema v2 records where a session came from (engine and package
versions, case source, policy and all its settings, the chain key id), never a key."""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import metadata
from pathlib import Path

import pytest
from journal_helpers import lines_of, run_session
from pydantic import ValidationError

from agent.policies import RulePolicy, RuleSettings
from agent.session.identity import describe_policy
from agent.session.journal import read_journal
from agent.session.provenance import PolicyDescription
from agent.session.records import RECORDS_SCHEMA_VERSION
from esapi_bridge.dto import CaseSourceKind


def test_the_v2_header_records_versions_case_source_policy_and_key_id(tmp_path: Path) -> None:
    run_session(tmp_path / "s")
    header = read_journal(tmp_path / "s").header
    assert RECORDS_SCHEMA_VERSION == 2 and header.schema_version == 2
    assert header.engine_version == "fake-ramps-1"  # from the port: PlanInfo.backend
    assert header.package_version == metadata.version("rtplan-agent")
    assert header.case_source is not None
    assert header.case_source.kind is CaseSourceKind.SCENARIO
    assert (header.case_source.name, header.case_source.seed) == ("fake", 0)
    assert header.policy is not None and header.policy.name == "rule"
    assert header.policy.settings == dataclasses.asdict(RuleSettings())
    assert header.chain_key_id == lines_of(tmp_path / "s" / "journal.jsonl")[0]["chain_key_id"]


def test_policy_settings_never_hold_a_key() -> None:
    PolicyDescription(name="llm", settings={"model": "m", "max_tokens": 4096, "base_url": "x"})
    for bad in (
        {"api_key": "sk-123"},
        {"provider": {"Api-Key": "sk-123"}},
        {"headers": [{"token": "t"}]},
        {"client_secret": "s"},
        {"password": "p"},
    ):
        with pytest.raises(ValidationError, match="must not hold credentials"):
            PolicyDescription(name="llm", settings=bad)

    class Leaky:
        name = "leaky"

        def __init__(self) -> None:
            self.settings = {"model": "m", "api_key": "sk-123"}

    with pytest.raises(ValidationError, match=r"settings\.api_key"):
        describe_policy(Leaky())
    assert describe_policy(RulePolicy()).settings["max_sparing"] == RuleSettings().max_sparing


def test_the_simulated_tps_describes_engine_and_case_source() -> None:
    from mock_tps.dose_engine import ENGINE_VERSION
    from mock_tps.phantoms import make_case
    from mock_tps.session import MockTpsSession

    case = make_case("prostate-basic", 3)
    backend = MockTpsSession(case).plan_info().backend
    assert backend is not None and backend.engine_version == ENGINE_VERSION
    source = backend.case_source
    assert source is not None and source.kind is CaseSourceKind.SCENARIO
    assert (source.name, source.seed, source.content_hash) == (
        "prostate-basic",
        3,
        case.geometry_hash(),
    )


def test_tg119_is_recorded_with_the_sha256_of_its_file(tg119_file: Path) -> None:
    from mock_tps.factory import open_mock_session

    file = tg119_file
    session = open_mock_session("tg119", tg119_path=file)
    backend = session.plan_info().backend
    assert backend is not None and backend.case_source is not None
    assert backend.case_source.kind is CaseSourceKind.TG119
    assert backend.case_source.content_hash == hashlib.sha256(file.read_bytes()).hexdigest()
