"""The knowledge-guided policies (#14 item 4): ``--policy knowledge`` starts at the card's
medians within the guardrails' steps and keeps the rule's later moves within the card's
bounds; a mismatched card is refused; ``--policy rule`` is unchanged (the same objectives as
before, iteration by iteration); and ``--policy llm --knowledge`` puts the installed card into
the prompt (its planning quality is not measured: there is no LLM here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_fakes import FakeTps, install_fake_tps
from fake_llm import FakeLlmServer, planner
from fake_llm_planner import decide
from fakes import FakeTpsSession
from typer.testing import CliRunner

import agent.cli.main as cli
import agent.policies.knowledge.card as card_module
from agent.policies import RuleSettings, make_policy
from agent.policies.base import PolicyContext
from agent.policies.drl.tpps import read_values, tpps_of, write_values
from agent.policies.knowledge import KnowledgeCard, KnowledgePolicy, write_card
from agent.policies.knowledge.extract import Origin, card_from_finals
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import (
    IterationRecord,
    Proposal,
    SessionConfig,
    StopReason,
    VerdictStatus,
)
from agent.templates import SiteTemplate, load_template
from mock_tps.dose_engine import ENGINE_VERSION

REFERENCE = Path(__file__).parent / "data" / "knowledge_rule_reference.json"
RX = 79.2
#: Card medians (Gy for doses): the bladder priority 60 -> 280 is more than one guardrail
#: step (max(150, 1.0 x 60) = 150); the rest fits into one step (doses: 0.15 Rx = 11.88 Gy
#: from 0.95 Rx = 75.24 Gy).
MEDIANS = {
    "PTV.upper.dose_gy": 84.0,
    "PTV.upper.priority": 150.0,
    "PTV.lower.priority": 200.0,
    "Bladder.upper[0].dose_gy": 65.0,
    "Bladder.upper[0].volume_pct": 18.0,
    "Bladder.upper[0].priority": 280.0,
    "Rectum.upper[0].dose_gy": 66.0,
    "Rectum.upper[0].volume_pct": 16.0,
    "Rectum.upper[0].priority": 120.0,
}
runner = CliRunner()


@pytest.fixture(scope="module")
def template() -> SiteTemplate:
    return load_template("prostate-basic")


@pytest.fixture(scope="module")
def card(template: SiteTemplate) -> KnowledgeCard:
    finals = [{k: v * f for k, v in MEDIANS.items()} for f in (0.97, 1.0, 1.03)]
    origin = Origin("synthetic", (1000, 1001, 1002), 3, ENGINE_VERSION)
    return card_from_finals(template, finals, origin)


def _run(
    session: object, template: SiteTemplate, policy: object, tmp: Path, iterations: int
) -> tuple[list[IterationRecord], object]:
    records: list[IterationRecord] = []
    config = SessionConfig(
        scenario="prostate-basic", seed=1, template=template.name, policy="knowledge",
        max_iterations=iterations,
    )  # fmt: skip
    loop = PlanningLoop(
        session, template, policy, config, tmp / "s", save_snapshots=False,  # type: ignore[arg-type]
        case_label="prostate-basic/seed1", on_iteration=records.append,
    )  # fmt: skip
    return records, loop.run()


def test_the_first_proposal_goes_to_the_medians_within_the_step_bounds(
    template: SiteTemplate, card: KnowledgeCard, tmp_path: Path
) -> None:
    session = FakeTpsSession()
    records, _ = _run(session, template, KnowledgePolicy(card), tmp_path, 2)
    tpps = tpps_of(template, RX)
    smap = {s.id: s.id for s in template.structures}
    start = read_values(tpps, records[0].applied_objectives, smap)
    first = read_values(tpps, records[1].applied_objectives, smap)
    assert records[1].proposal.rationale.startswith("knowledge start:")
    assert records[1].verdict.status is VerdictStatus.ACCEPTED  # never clipped by the guardrails
    for name, median in MEDIANS.items():
        if name == "Bladder.upper[0].priority":
            continue
        assert first[name] == pytest.approx(median, abs=1e-3), name  # rounding of the card
    # the bladder priority goes one full step (150 - 0.001 margin) and the rest next time
    assert first["Bladder.upper[0].priority"] == pytest.approx(
        start["Bladder.upper[0].priority"] + 150, abs=0.01
    )
    assert "held back by the guardrails' step bounds" in records[1].proposal.rationale
    second = read_values(tpps, records[2].applied_objectives, smap)
    assert records[2].proposal.rationale.startswith("knowledge start:")
    assert second["Bladder.upper[0].priority"] == pytest.approx(280.0, abs=1e-3)


class ScriptedRule:
    """Stands in for the rule policy: each call moves the named TPPs to the given values."""

    def __init__(self, template: SiteTemplate, moves: list[dict[str, float]]) -> None:
        self.tpps = tpps_of(template, RX)
        self.moves = moves
        self.settings = RuleSettings()

    def propose(self, context: PolicyContext) -> Proposal:
        values = self.moves.pop(0)
        objectives = write_values(self.tpps, context.objectives, values, context.structure_map)
        return Proposal(objectives=objectives, rationale="scripted rule move", policy="rule")


def test_the_rule_moves_after_the_start_stay_within_the_cards_range(
    template: SiteTemplate, card: KnowledgeCard, tmp_path: Path
) -> None:
    policy = KnowledgePolicy(card)
    policy.rule = ScriptedRule(  # type: ignore[assignment]
        template,
        [
            # beyond the card's range (280 x 1.03 = 288.4; 150 x 0.97 = 145.5), and one in it
            {"Bladder.upper[0].priority": 300.0, "PTV.upper.priority": 100.0,
             "Rectum.upper[0].priority": 121.0},
            # only a move the bounds stop entirely: the rule's own move goes through
            {"Bladder.upper[0].priority": 295.0},
        ],
    )  # fmt: skip
    records, _ = _run(FakeTpsSession(), template, policy, tmp_path, 4)
    records = [r for r in records if r.proposal.policy != "revert-to-best"]
    tpps = tpps_of(template, RX)
    smap = {s.id: s.id for s in template.structures}
    assert [r.proposal.rationale.startswith("knowledge start:") for r in records[1:]] == [
        True, True, False, False,
    ]  # fmt: skip
    third = read_values(tpps, records[3].applied_objectives, smap)
    assert third["Bladder.upper[0].priority"] == pytest.approx(280 * 1.03, abs=1e-3)
    assert third["PTV.upper.priority"] == pytest.approx(150 * 0.97, abs=1e-3)
    assert third["Rectum.upper[0].priority"] == pytest.approx(121.0, abs=1e-3)  # within: kept
    assert "within the card's range" in records[3].proposal.rationale
    fourth = read_values(tpps, records[4].applied_objectives, smap)
    assert fourth["Bladder.upper[0].priority"] == pytest.approx(295.0, abs=1e-3)
    assert records[4].proposal.rationale.startswith("the card's bounds would stop every move")
    assert {r.proposal.policy for r in records[1:]} == {"knowledge"}


def test_a_card_for_another_site_or_engine_stops_the_session_with_the_reason(
    template: SiteTemplate, card: KnowledgeCard, tmp_path: Path
) -> None:
    policy = make_policy("knowledge", card=card, engine_version="pencil-beam-0")
    _, summary = _run(FakeTpsSession(), template, policy, tmp_path / "a", 2)
    assert summary.stop_reason is StopReason.ERROR  # type: ignore[attr-defined]
    assert "dose engine" in summary.message and "re-extract" in summary.message  # type: ignore[attr-defined]
    liver_card = card.model_copy(update={"scenario": "liver"})
    _, summary = _run(FakeTpsSession(), template, KnowledgePolicy(liver_card), tmp_path / "b", 2)
    assert "is for site 'liver'" in summary.message  # type: ignore[attr-defined]


def test_without_arguments_it_loads_the_installed_card_of_the_site(
    template: SiteTemplate, card: KnowledgeCard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(card_module, "installed_card_path", lambda s: tmp_path / f"{s}.json")
    policy = make_policy("knowledge")
    assert isinstance(policy, KnowledgePolicy) and policy.settings.card == "installed"
    _, summary = _run(FakeTpsSession(), template, policy, tmp_path / "a", 1)
    assert "no knowledge card is installed for site 'prostate-basic'" in summary.message  # type: ignore[attr-defined]
    write_card(card, tmp_path / "prostate-basic.json")
    records, _ = _run(FakeTpsSession(), template, make_policy("knowledge"), tmp_path / "b", 1)
    assert records[1].proposal.rationale.startswith("knowledge start:")


def test_the_rule_policy_is_unchanged(tmp_path: Path) -> None:
    """The rule policy's proposals on two cases equal those recorded at commit d51c3ae (before
    the knowledge policy): the applied objectives exactly, iteration by iteration; the scores to
    1e-6 (the optimizer's floating-point sums depend on the BLAS threads of the process: the
    template plan's liver score moved by 3e-10 inside the full suite)."""
    from mock_tps.factory import open_mock_session

    reference = json.loads(REFERENCE.read_text())["cases"]
    for case in reference:
        template = load_template(case["scenario"])
        records: list[IterationRecord] = []
        config = SessionConfig(
            scenario=case["scenario"], seed=case["seed"], template=template.name, policy="rule",
            max_iterations=case["max_iterations"],
        )  # fmt: skip
        loop = PlanningLoop(
            open_mock_session(case["scenario"], case["seed"]), template, make_policy("rule"),
            config, tmp_path / f"{case['scenario']}-{case['seed']}", save_snapshots=False,
            case_label=f"{case['scenario']}/seed{case['seed']}", on_iteration=records.append,
        )  # fmt: skip
        summary = loop.run()
        label = f"{case['scenario']} seed {case['seed']}"
        assert summary.iterations == case["iterations"], label
        assert summary.stop_reason.value == case["stop_reason"], label
        want = case["per_iteration"]
        assert [(r.iteration, r.proposal.policy) for r in records] == [
            (w["iteration"], w["policy"]) for w in want
        ], label
        for r, w in zip(records, want, strict=True):
            objectives = [o.model_dump(mode="json") for o in r.applied_objectives]
            assert objectives == w["objectives"], f"{label} iteration {r.iteration}"
            score = None if r.evaluation is None else r.evaluation.score
            assert score == pytest.approx(w["score"], abs=1e-6), f"{label} iteration {r.iteration}"


@pytest.fixture
def fake_tps(monkeypatch: pytest.MonkeyPatch) -> FakeTps:
    return install_fake_tps(monkeypatch)


def test_llm_knowledge_puts_the_installed_card_into_the_prompt(
    card: KnowledgeCard,
    tmp_path: Path,
    fake_tps: FakeTps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only that the card reaches the model: the guided LLM's planning quality is not measured
    (no LLM here), so it is never reported beside the measured policies."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-knowledge")
    monkeypatch.setattr(card_module, "installed_card_path", lambda s: tmp_path / f"{s}.json")
    write_card(card, tmp_path / "prostate-basic.json")
    with FakeLlmServer(planner(decide), models=["test-model"]) as server:
        result = runner.invoke(
            cli.app,
            ["plan", "--scenario", "prostate-basic", "--out", str(tmp_path / "s"), "--no-report",
             "--policy", "llm", "--model", "test-model", "--base-url", server.anthropic_base_url,
             "--lookahead", "0", "--max-iterations", "1", "--knowledge"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        prompt = server.llm_requests[0].prompt_text
    assert "Knowledge card of prostate-basic" in prompt
    assert "- Bladder.upper[0].priority: 280" in prompt
    assert "PTV.upper.dose_gy: 1.061 Rx (84.0 Gy)" in prompt


def test_knowledge_flags_are_refused_before_anything_starts(
    tmp_path: Path, fake_tps: FakeTps, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-knowledge")
    monkeypatch.setattr(card_module, "installed_card_path", lambda s: tmp_path / f"{s}.json")
    base = ["plan", "--scenario", "prostate-basic", "--out", str(tmp_path / "s"), "--no-report",
            "--policy", "llm", "--model", "test-model", "--base-url", "http://127.0.0.1:9/"]  # fmt: skip
    missing = runner.invoke(cli.app, [*base, "--knowledge"])
    assert missing.exit_code != 0
    assert "no knowledge card is installed" in " ".join(missing.output.split())
    (tmp_path / "card.txt").write_text("text")
    both = runner.invoke(
        cli.app, [*base, "--knowledge", "--knowledge-card", str(tmp_path / "card.txt")]
    )
    assert both.exit_code != 0 and "--knowledge-card FILE" in " ".join(both.output.split())
    assert fake_tps.opened == [] and not (tmp_path / "s").exists()


def test_policy_knowledge_through_the_cli(
    card: KnowledgeCard,
    tmp_path: Path,
    fake_tps: FakeTps,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(card_module, "installed_card_path", lambda s: tmp_path / f"{s}.json")
    write_card(card, tmp_path / "prostate-basic.json")
    result = runner.invoke(
        cli.app,
        ["plan", "--scenario", "prostate-basic", "--out", str(tmp_path / "s"), "--no-report",
         "--policy", "knowledge", "--max-iterations", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = read_journal(tmp_path / "s")
    assert log.header.policy is not None and log.header.policy.name == "knowledge"
    assert log.header.policy.settings["engine_version"] == ENGINE_VERSION
    assert log.iterations[1].proposal.rationale.startswith("knowledge start:")


def test_a_resumed_knowledge_session_checks_its_card_against_the_engine_again(
    tmp_path: Path,
) -> None:
    """``rtplan resume`` builds the policy as ``rtplan plan`` did: a knowledge session gets
    the simulated engine's version (its card is checked against it), not a bare policy."""
    from types import SimpleNamespace

    from agent.cli.sessions import _resumed_policy

    def log_of(policy: str) -> SimpleNamespace:
        return SimpleNamespace(
            header=SimpleNamespace(config=SessionConfig(template="prostate-basic", policy=policy))
        )

    resumed = _resumed_policy(log_of("knowledge"), tmp_path)  # type: ignore[arg-type]
    assert isinstance(resumed, KnowledgePolicy)
    assert resumed.settings.engine_version == ENGINE_VERSION
    rule = _resumed_policy(log_of("rule"), tmp_path)  # type: ignore[arg-type]
    assert rule.name == "rule"
