"""The prompt carries what a planner needs: a fake planner that reads only the prompt text
plans prostate-basic on the simulated TPS through the real loop to the score maximum.

The policy here is a test-only stand-in for the LLM policy: assemble the prompt, let
:func:`fake_llm_planner.decide` answer from the text, validate the answer as
:class:`PlanEdits` (from JSON, as a tool call arrives), map canonical ids back to the plan
and apply the edits. Measured (seeds 0-3, 2 cores): 9/9 in 3-4 iterations, a few seconds
per seed including the dose-influence matrix.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from fake_llm_planner import decide
from fakes import PROSTATE_STRUCTURES, FakeStructure, FakeTpsSession
from template_fixtures import frozen_prostate_template

from agent.policies.base import PolicyContext
from agent.policies.llm.edits import PlanEdits, apply_edits
from agent.policies.llm.prompt import (
    AssembledPrompt,
    PromptOptions,
    assemble_prompt,
    canonical_to_plan,
)
from agent.policies.llm.sanitize import Redactor
from agent.session.journal import read_journal
from agent.session.loop import PlanningLoop
from agent.session.records import Proposal, SessionConfig, StopReason
from agent.templates import load_template
from esapi_bridge.dto import PointObjective
from mock_tps.factory import open_mock_session

PLANNER_FILE = Path(__file__).with_name("fake_llm_planner.py")


class PromptOnlyPolicy:
    """prompt -> fake planner -> PlanEdits -> objectives (canonical ids mapped back)."""

    name = "fake-llm"

    def __init__(self, identifiers: list[str]) -> None:
        self.redactor = Redactor(identifiers)
        self.options = PromptOptions()
        self.prompts: list[AssembledPrompt] = []

    def propose(self, context: PolicyContext) -> Proposal:
        prompt = assemble_prompt(context, self.options, self.redactor)
        self.prompts.append(prompt)
        answer = decide("\n\n".join([*(p.text for p in prompt.system), prompt.user_text]))
        edits = PlanEdits.model_validate_json(json.dumps(answer))
        if edits.done:
            return Proposal(
                objectives=list(context.objectives), rationale=edits.rationale, done=True
            )
        to_plan = canonical_to_plan(context)
        additions = [
            a.model_copy(update={"structure_id": to_plan[a.structure_id]}) for a in edits.additions
        ]
        edits = edits.model_copy(update={"additions": additions})
        return Proposal(
            objectives=apply_edits(context.objectives, edits), rationale=edits.rationale
        )


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dij-cache")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prompt_only_planner_reaches_the_prostate_maximum(
    seed: int, tmp_path: Path, cache_dir: Path
) -> None:
    template = load_template("prostate-basic")
    session = open_mock_session("prostate-basic", seed, cache_dir=cache_dir)
    plan_id = session.plan_info().plan_id
    label = f"prostate-basic/seed{seed}"
    policy = PromptOnlyPolicy([plan_id, label])
    config = SessionConfig(template="prostate-basic", scenario="prostate-basic", seed=seed)
    loop = PlanningLoop(
        session, template, policy, config, tmp_path / "s", save_snapshots=False, case_label=label
    )
    summary = loop.run()
    assert summary.final_evaluation is not None and summary.initial_evaluation is not None
    assert summary.initial_evaluation.score is not None
    assert summary.initial_evaluation.score < 9.0 - 0.5  # there was something to do
    assert summary.final_evaluation.score == pytest.approx(9.0, abs=1e-6)
    assert summary.final_evaluation.all_priority1_met
    assert summary.stop_reason is StopReason.ALL_GOALS_MET
    assert summary.iterations <= config.max_iterations
    log = read_journal(tmp_path / "s")
    assert all(not r.rejected for r in log.iterations)  # every answer passed the guardrails
    assert len(policy.prompts) == summary.iterations
    for prompt in policy.prompts:
        assert Redactor([plan_id, label]).find(prompt.text) == []


def test_renamed_structures_are_planned_by_their_canonical_ids(tmp_path: Path) -> None:
    """A plan whose structures carry the patient's name (fake TPS): the prompts show canonical
    ids only, the planner's new objectives land on the plan's own structures."""
    renamed = {"PTV": "PTV_Smith", "Rectum": "Rectum_MRN123456"}
    structures = [
        FakeStructure(renamed.get(s.structure_id, s.structure_id), s.dicom_type, s.volume_cm3,
                      s.free_max_gy)
        for s in PROSTATE_STRUCTURES
    ]  # fmt: skip
    template = frozen_prostate_template()
    specs = [
        s.model_copy(update={"aliases": [*s.aliases, renamed[s.id]]}) if s.id in renamed else s
        for s in template.structures
    ]
    template = template.model_copy(update={"structures": specs})
    fake = FakeTpsSession(structures_spec=structures, plan_id="Smith^John")
    policy = PromptOnlyPolicy(["Smith^John"])
    config = SessionConfig(template="prostate-basic")
    summary = PlanningLoop(
        fake, template, policy, config, tmp_path / "s", save_snapshots=False
    ).run()
    assert summary.final_evaluation is not None and summary.final_evaluation.score == 9.0
    added = [
        o for o in fake.get_objectives() if isinstance(o, PointObjective) and o.volume_pct == 12
    ]
    assert [o.structure_id for o in added] == ["Rectum_MRN123456"]  # mapped back to the plan
    scan = Redactor(["PTV_Smith", "Rectum_MRN123456", "Smith^John"], scrub_patterns=False)
    assert policy.prompts and all(scan.find(p.text) == [] for p in policy.prompts)


def test_the_fake_planner_imports_nothing_of_the_project() -> None:
    tree = ast.parse(PLANNER_FILE.read_text(encoding="utf-8"))
    names = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert names <= {"__future__", "json", "re", "typing"}


def _prompt_text(goals_met: bool) -> str:
    """A minimal prompt in the documented format: one goal, one objective."""
    status, value, margin = ("met", "10.00", "+5.00") if goals_met else ("failed", "22.00", "-7.00")
    points = "1.00" if goals_met else "0.00"
    q = json.dumps
    return "\n".join(
        [
            "## Site protocol", "prescription: 79.20 Gy in 44 fractions to \"PTV\"",
            "## Structures", "| structure | type |", "|---|---|",
            f"| {q('PTV')} | PTV |", f"| {q('Rectum')} | ORGAN |",
            "## Iteration", "iteration: 1 of 20",
            "## Clinical goals",
            "| goal | structure | metric | level_gy | comparator | limit | unit | priority "
            "| status | value | margin |", "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {q('rectum_v75')} | {q('Rectum')} | {q('V94.7%Rx')} | 75.00 | <= | 15.00 | % | 1 "
            f"| {status} | {value} | {margin} |",
            "## Score criteria",
            "| criterion | structure | metric | level_gy | comparator | full | zero | unit | value "
            "| points | max_points |", "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {q('rectum_v75')} | {q('Rectum')} | {q('V94.7%Rx')} | 75.00 | <= | 15.00 | 20.00 "
            f"| % | {value} | {points} | 1.00 |",
            "## Current objectives",
            "| id | kind | structure | operator | dose_gy | volume_pct | priority | achieved_gy "
            "| tps_value | dose_range_gy | volume_range_pct | priority_range | details |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            f"| O1 | point | {q('PTV')} | lower | 77.62 | 100.0 | 120.00 | 78.00 | 0 "
            "| 75.24..80.78 | - | 50.00..300.00 | - |",
            f"| O2 | point | {q('Rectum')} | upper | 76.00 | 15.0 | 60.00 | 78.10 | 1.2 "
            "| 23.76..79.20 | 0.0..60.0 | 0.00..300.00 | - |",
            "## Recent iterations", "(no earlier iterations)",
        ]
    )  # fmt: skip


def test_the_fake_planner_pushes_the_failing_organ_and_stops_when_all_is_met() -> None:
    answer = PlanEdits.model_validate_json(json.dumps(decide(_prompt_text(goals_met=False))))
    assert not answer.done and [c.objective_id for c in answer.changes] == ["O2"]
    change = answer.changes[0]
    # below what the rectum receives at 15 % now (76 Gy), priority up, within the ranges
    assert change.dose_gy is not None and 23.76 <= change.dose_gy < 76.0
    assert change.priority is not None and 60.0 < change.priority <= 300.0
    done = PlanEdits.model_validate_json(json.dumps(decide(_prompt_text(goals_met=True))))
    assert done.done and not done.changes
