"""The DRL trainer (checkpoint resume), the policy files (sha256 refusal) and ``--policy drl``
in the planning loop, on a tiny configuration (5 mm grid, 3-step episodes, a few dozen steps)."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.cli.drl import TrainingSessionFactory
from agent.policies import Policy, make_policy
from agent.policies.drl import DrlPolicy
from agent.policies.drl.env import EnvConfig
from agent.policies.drl.episodes import episode_from_iterations
from agent.policies.drl.files import (
    PolicyFileError,
    provenance_path,
    read_provenance,
    verified_zip,
)
from agent.policies.drl.tpps import read_values, tpps_of
from agent.policies.drl.trainer import TrainConfig, read_state, train
from agent.session.identity import template_hash
from agent.session.loop import PlanningLoop
from agent.session.records import IterationRecord, SessionConfig
from agent.templates import load_template
from esapi_bridge.port import TpsSession

TINY_ENV = EnvConfig(max_steps=3, step_iterations=3, reset_iterations=10, grid="test")


def _config(steps: int) -> TrainConfig:
    return TrainConfig(
        steps=steps, seeds=[1000], checkpoint_every=10, learning_starts=5, buffer_size=200,
        batch_size=8, target_update_interval=10,
    )  # fmt: skip


def _loop(
    policy: Policy,
    tmp_path: Path,
    max_iterations: int,
    on_iteration: Callable[[IterationRecord], None] | None = None,
) -> tuple[TpsSession, PlanningLoop]:
    """A planning loop on prostate-basic seed 3 (5 mm grid: its template plan is not 9/9)."""
    session = TrainingSessionFactory(spacing_mm=5.0)("prostate-basic", 3)
    config = SessionConfig(
        scenario="prostate-basic", seed=3, template="prostate-basic", policy="drl",
        max_iterations=max_iterations,
    )  # fmt: skip
    loop = PlanningLoop(
        session, load_template("prostate-basic"), policy, config, tmp_path / "session",
        save_snapshots=False, on_iteration=on_iteration,
    )  # fmt: skip
    return session, loop


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A policy trained for 20 steps (resumed to 30 by a test)."""
    out = tmp_path_factory.mktemp("drl-train")
    template = load_template("prostate-basic")
    first = train(template, TrainingSessionFactory(spacing_mm=5.0), _config(20), out, TINY_ENV)
    assert first.steps == 20 and first.runs == 1
    state = read_state(out)
    assert state is not None and state.steps == 20
    return out


def test_a_resumed_training_continues_the_step_count(trained: Path) -> None:
    template = load_template("prostate-basic")
    prov = train(template, TrainingSessionFactory(spacing_mm=5.0), _config(30), trained, TINY_ENV)
    assert prov.steps == 30 and prov.runs == 2  # 20 + 10, not 30 more
    state = read_state(trained)
    assert state is not None and state.steps == 30 and state.runs == 2
    assert prov.episodes == state.episodes >= 30 // 3  # 3-step episodes (or shorter at 9/9)
    recorded = read_provenance(trained / "prostate-basic.zip")
    assert recorded.seeds == [1000] and recorded.template_hash == template_hash(template)
    assert recorded.tpps[0] == "PTV.upper.dose_gy" and recorded.observation_size == 322
    assert recorded.engine_version not in ("", "unknown")


def test_a_tampered_policy_file_is_refused_before_loading(trained: Path, tmp_path: Path) -> None:
    zip_path = tmp_path / "prostate-basic.zip"
    shutil.copy(trained / "prostate-basic.zip", zip_path)
    shutil.copy(provenance_path(trained / "prostate-basic.zip"), provenance_path(zip_path))
    template = load_template("prostate-basic")
    assert verified_zip(zip_path, template_hash(template)).sha256
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    zip_path.write_bytes(bytes(data))
    with pytest.raises(PolicyFileError, match="sha256"):
        verified_zip(zip_path)
    with pytest.raises(PolicyFileError, match="trained for template"):
        shutil.copy(trained / "prostate-basic.zip", zip_path)
        verified_zip(zip_path, template_hash="0" * 16)
    provenance_path(zip_path).unlink()
    with pytest.raises(PolicyFileError, match="provenance"):
        verified_zip(zip_path)


def test_policy_drl_plans_two_iterations_in_the_loop(trained: Path, tmp_path: Path) -> None:
    template = load_template("prostate-basic")
    policy = make_policy("drl", policy_path=trained / "prostate-basic.zip")
    assert isinstance(policy, DrlPolicy)
    records: list[IterationRecord] = []
    session, loop = _loop(policy, tmp_path, max_iterations=2, on_iteration=records.append)
    summary = loop.run()
    assert summary.final_evaluation is not None
    assert 1 <= summary.iterations <= 2
    assert summary.rejected_proposals == 0
    # each DRL iteration moved exactly one TPP
    tpps = tpps_of(template)
    smap = {s.id: s.id for s in template.structures}
    steps = [r for r in records if r.proposal.policy == "drl"]
    assert len(steps) == summary.iterations
    for before, after in itertools.pairwise(records):
        if after.proposal.policy != "drl":
            continue
        old = read_values(tpps, before.applied_objectives, smap)
        new = read_values(tpps, after.applied_objectives, smap)
        assert sum(abs(old[n] - new[n]) > 1e-9 for n in old) == 1
    # the session as an evaluation episode for the knowledge cards
    episode = episode_from_iterations(
        records, tpps, smap, scenario="prostate-basic", seed=3,
        template_hash=template_hash(template), engine_version="test",
    )  # fmt: skip
    assert episode.source == "eval" and len(episode.steps) == len(steps)
    assert episode.final_tpp_values == read_values(tpps, session.get_objectives(), smap)
    assert episode.final_score == pytest.approx(summary.final_evaluation.score or 0.0)


def test_policy_drl_refuses_a_tampered_file_with_a_clear_message(
    trained: Path, tmp_path: Path
) -> None:
    zip_path = tmp_path / "p.zip"
    zip_path.write_bytes((trained / "prostate-basic.zip").read_bytes() + b"x")
    shutil.copy(provenance_path(trained / "prostate-basic.zip"), provenance_path(zip_path))
    _, loop = _loop(DrlPolicy(zip_path), tmp_path, max_iterations=1)
    summary = loop.run()  # the session ends on the error, the original objectives restored
    assert summary.stop_reason.value == "error" and summary.restored_original
    assert "PolicyError: refusing to load" in summary.message and "sha256" in summary.message
    assert summary.iterations == 0


def test_rtplan_plan_policy_drl_runs_the_shipped_policy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import agent.cli.main as cli

    out = tmp_path / "session"
    result = CliRunner().invoke(
        cli.app,
        [
            "plan", "--scenario", "prostate-basic", "--seed", "3", "--spacing-mm", "5",
            "--policy", "drl", "--max-iterations", "2", "--out", str(out), "--no-report",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["policy"] == "drl"
    assert 1 <= summary["iterations"] <= 2


def test_every_shipped_policy_matches_its_file_template_and_the_engine() -> None:
    """Each zip in site_templates/drl has the sha256 its provenance records, and was trained
    for the installed template (its hash) on this engine, with training seeds only."""
    from agent.cohort.seeds import EVALUATION_SEEDS
    from agent.policies.drl.files import SHIPPED_DIR, verified_zip
    from agent.session.identity import template_hash
    from agent.templates import load_template
    from mock_tps.dose_engine import ENGINE_VERSION

    shipped = sorted(SHIPPED_DIR.glob("*.zip"))
    assert {p.stem for p in shipped} >= {"prostate-basic", "liver", "prostate-complex"}
    for path in shipped:
        template = load_template(path.stem)
        prov = verified_zip(path, template_hash(template), ENGINE_VERSION)
        assert prov.scenario == path.stem
        assert not set(prov.seeds) & set(EVALUATION_SEEDS)
        assert prov.steps > 0 and prov.wall_time_s <= 30 * 60 + 60  # the 30-min budget per run
