"""The deterministic expert-rule policy (the offline default)."""

from agent.policies.rule.policy import RulePolicy, RuleSettings

__all__ = ["RulePolicy", "RuleSettings"]
