"""Building the LLM policy for a session: recording every exchange beside the journal, or
replaying a recorded session through the policy itself.

- :func:`recording_policy`: a new or resumed session. Every HTTP attempt (retries
  included) goes through :class:`RecordingTransport` into ``<session>/llm/``; each
  proposal's ``model_calls.exchanges`` lists the hashes of its exchanges.
- :func:`replaying_policy`: ``rtplan replay`` of an LLM session. The recorded responses are
  served by :class:`ReplayTransport`, which refuses any request that is not byte for byte
  the recorded one; no key and no network are needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx2

from agent.policies.base import Policy
from agent.policies.llm.errors import LlmConfigError
from agent.policies.llm.policy import LlmPolicy
from agent.policies.llm.providers.base import LlmProvider
from agent.policies.llm.providers.factory import key_variable
from agent.policies.llm.recording import ExchangeStore, RecordingTransport, ReplayTransport
from agent.policies.llm.settings import LlmSettings
from agent.session.model_calls import ModelCallStats
from agent.session.records import SessionLog
from agent.session.state import calls_in_order

#: Placeholder key for a replay (the replay transport never sends anything anywhere).
REPLAY_KEY = "replay-without-network"


def _fallback(settings: LlmSettings) -> Policy | None:
    if settings.fallback == "rule":
        from agent.policies.rule import RulePolicy

        return RulePolicy()
    return None


def _provider(
    settings: LlmSettings, client: httpx2.Client, env: Mapping[str, str] | None
) -> LlmProvider:
    from agent.policies.llm.providers.factory import make_provider

    return make_provider(settings.provider, http_client=client, env=env)


def recording_policy(
    settings: LlmSettings,
    session_dir: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    transport: httpx2.BaseTransport | None = None,
) -> LlmPolicy:
    """The LLM policy of a session in ``session_dir``, recording every exchange there.

    ``transport`` replaces the network (tests); the SDKs' timeouts and retries still apply.
    """
    recorder = RecordingTransport(transport, ExchangeStore.for_session(session_dir))
    client = httpx2.Client(transport=recorder, timeout=settings.provider.timeout_s)
    return LlmPolicy(
        settings,
        provider_factory=lambda: _provider(settings, client, env),
        exchanges=recorder,
        fallback=_fallback(settings),
    )


def recorded_settings(log: SessionLog) -> LlmSettings:
    """The LLM settings a journal's header recorded (resume and replay use them)."""
    description = log.header.policy
    if description is None or description.name != LlmPolicy.name:
        raise LlmConfigError(f"session {log.header.session_id} was not planned by the LLM policy")
    return LlmSettings.model_validate(description.settings)


def recorded_exchanges(log: SessionLog) -> list[str]:
    """Every recorded exchange of a session, in the order the calls were made."""
    return [h for stats in _journaled_calls(log) if stats is not None for h in stats.exchanges]


def _journaled_calls(log: SessionLog) -> list[ModelCallStats | None]:
    return calls_in_order(log.iterations, (e.model_calls for e in log.events))


def replaying_policy(log: SessionLog, session_dir: str | Path) -> LlmPolicy:
    """The LLM policy re-run on a recorded session's responses (``session_dir`` holds ``llm/``).

    The provider is built as recorded, with a placeholder key and the egress check
    satisfied: the replay transport answers from the files, nothing leaves the process.
    """
    settings = recorded_settings(log)
    provider = settings.provider
    offline = settings.model_copy(
        update={"provider": provider.model_copy(update={"allow_cloud": True})}
    )
    variable = key_variable(provider)
    replay = ReplayTransport(ExchangeStore.for_session(session_dir), recorded_exchanges(log))
    client = httpx2.Client(transport=replay, timeout=provider.timeout_s)
    return LlmPolicy(
        settings,
        provider_factory=lambda: _provider(offline, client, {variable: REPLAY_KEY}),
        exchanges=None,
        fallback=_fallback(settings),
    )


def resumed_policy(
    log: SessionLog, session_dir: str | Path, *, env: Mapping[str, str] | None = None
) -> LlmPolicy:
    """The LLM policy of a session being resumed: its recorded settings, recording into the
    same directory, the budget already spent counted."""
    policy = recording_policy(recorded_settings(log), session_dir, env=env)
    policy.restore_usage(_journaled_calls(log))
    return policy
