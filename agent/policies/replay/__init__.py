"""Replay of a recorded session's proposals (audit, tests)."""

from agent.policies.replay.policy import ReplayPolicy

__all__ = ["ReplayPolicy"]
