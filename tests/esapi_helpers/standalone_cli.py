"""A child process of the CLI tests of standalone mode: ``rtplan ARGS`` with a stub patient.

ESAPI (and the stubs) allow one ``Application`` per process, so each ``rtplan plan --esapi`` or
``rtplan resume --esapi`` of the tests runs in a process of its own. This script registers the
stub patient ``PSEUDO-1`` / course ``C1`` / plan ``PLAN-1`` (prostate-basic of seed ``SEED``,
mock_tps behind the stubs) with the stubs' ``StubPlanLocator``, then runs the CLI with its
arguments.

Usage: ``python standalone_cli.py CACHE_DIR SEED INTERRUPT_AT -- rtplan-args...``; ``INTERRUPT_AT`` > 0
sends this process SIGINT (Ctrl-C) during that optimization, as a planner's interrupt would.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.cli import app
from esapi_helpers import stub_namespace, stub_plan_for
from mock_tps.factory import open_mock_session
from mock_tps.session import MockTpsSession


def main(argv: list[str]) -> None:
    cache_dir, seed, interrupt_at, separator, *args = argv
    assert separator == "--"
    mock = open_mock_session("prostate-basic", int(seed), cache_dir=Path(cache_dir))
    assert isinstance(mock, MockTpsSession)
    stub, backend = stub_plan_for(mock, dose_unit="Gy")
    stub_namespace().StubPlanLocator.Register(stub)
    optimize = backend.optimize
    calls = 0

    def counted(request: str) -> str:
        nonlocal calls
        calls += 1
        if calls == int(interrupt_at):
            os.kill(os.getpid(), signal.SIGINT)
        return optimize(request)

    backend.optimize = counted  # type: ignore[method-assign]
    backend.attach(stub)
    app(args, prog_name="rtplan")


if __name__ == "__main__":
    main(sys.argv[1:])
