"""A cohort case factory on the fake TPS (no dose engine): picklable, for local and Ray workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fakes import FakeTpsSession

from agent.session.records import SessionConfig


@dataclass(frozen=True)
class FakeCases:
    """Opens a :class:`fakes.FakeTpsSession` for every job; ``engine`` is its engine version."""

    engine: str = "fake-ramps-1"

    def open_session(self, config: SessionConfig) -> FakeTpsSession:
        """A fresh fake plan (the seed names the plan; the fake's anatomy does not vary)."""
        return FakeTpsSession(plan_id=f"fake-plan-{config.seed}", engine_version=self.engine)

    def engine_version(self) -> str:
        """The fake engine's version."""
        return self.engine

    def policy_options(self, policy: str) -> dict[str, Any]:
        """No options: the fake needs none."""
        return {}
