"""``rtplan plan`` and ``rtplan demo``: plan one simulated case."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from agent.cli import backends
from agent.cli.backends import resolve_case
from agent.cli.console import console
from agent.cli.errors import fail, known_errors
from agent.cli.output import finish, interrupt_exit, run_with_progress
from agent.session.records import IterationRecord, SessionConfig, SessionSummary


def _default_dir(label: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("rtplan-sessions") / f"{label}-{stamp}"


def run_plan(
    scenario: str,
    seed: int,
    *,
    tg119: str | None = None,
    template: str | None = None,
    policy: str = "rule",
    max_iterations: int = 20,
    approve: bool = False,
    out: Path | None = None,
    spacing_mm: float | None = None,
    cache_dir: Path | None = None,
    report: bool = True,
) -> SessionSummary:
    """Plan one simulated case (what ``rtplan plan`` and ``rtplan demo`` do)."""
    from agent.policies import make_policy
    from agent.session.approval import ConsoleApprover
    from agent.session.loop import PlanningLoop
    from agent.session.signals import InterruptOnSignals
    from agent.session.start import probe_writable
    from agent.templates import load_template

    scenario, template_name = resolve_case(scenario, tg119, template)
    tpl = load_template(template_name)
    pol = make_policy(policy)
    label = f"{scenario}/seed{seed}" if scenario != "tg119" else f"tg119/{template_name}"
    session_dir = out or _default_dir(label.replace("/", "-"))
    probe_writable(session_dir)  # before the (slow) case is opened; leaves no directory
    config = SessionConfig(
        scenario=scenario,
        seed=seed,
        template=template_name,
        policy=pol.name,
        max_iterations=max_iterations,
        approve=approve,
        spacing_mm=spacing_mm,
    )
    # SIGTERM and SIGHUP stop the session like Ctrl-C: restore, summary, exit 143 / 129 / 130
    with InterruptOnSignals() as signals:
        try:
            with console.status(f"opening {label} on the simulated TPS"):
                session = backends.mock_session_factory(cache_dir)(config)
            approver = ConsoleApprover(console) if approve else None
            console.print(
                f"[bold]{label}[/] template {template_name}, policy {pol.name} -> {session_dir}"
            )

            def runner(cb: Callable[[IterationRecord], None]) -> SessionSummary:
                loop = PlanningLoop(
                    session, tpl, pol, config, session_dir,
                    approver=approver, on_iteration=cb, case_label=label,
                )  # fmt: skip
                return loop.run()

            summary = run_with_progress(max_iterations, runner, bar=not approve)
        except KeyboardInterrupt as exc:  # the loop handles those once its journal exists
            raise interrupt_exit(exc, "the session had not started; nothing was changed") from None
        finish(summary, session_dir, report, signals)
    return summary


def plan(
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="simulated case")
    ] = "prostate-basic",
    seed: Annotated[int, typer.Option(help="seed of the anatomical variation")] = 0,
    tg119: Annotated[str | None, typer.Option(help="TG-119 C-shape: easy or hard")] = None,
    template: Annotated[str | None, typer.Option(help="site template name or file")] = None,
    policy: Annotated[str, typer.Option(help="planning policy")] = "rule",
    max_iterations: Annotated[int, typer.Option(min=0, max=1000)] = 20,
    approve: Annotated[bool, typer.Option("--approve", help="review every proposal")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="session directory")] = None,
    spacing_mm: Annotated[float | None, typer.Option(help="dose grid spacing (mm)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="dose-influence cache")] = None,
    report: Annotated[bool, typer.Option(help="build the HTML report")] = True,
) -> None:
    """Plan one case on the simulated TPS."""
    try:
        run_plan(
            scenario, seed, tg119=tg119, template=template, policy=policy,
            max_iterations=max_iterations, approve=approve, out=out, spacing_mm=spacing_mm,
            cache_dir=cache_dir, report=report,
        )  # fmt: skip
    except known_errors() as exc:
        raise fail(str(exc)) from None


#: A prostate-basic seed whose template start misses priority-1 goals (score 5.94/9), so the
#: demo shows the agent at work: 9/9 in 4 iterations.
DEMO_SEED = 9


def demo(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="session directory")] = None,
) -> None:
    """prostate-basic, rule policy: progress, final goals table and report."""
    try:
        run_plan("prostate-basic", DEMO_SEED, out=out or _default_dir("demo"))
    except known_errors() as exc:
        raise fail(str(exc)) from None
