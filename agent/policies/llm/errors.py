"""The LLM policy's error hierarchy: every provider SDK error is mapped to one of these at the
provider boundary (``providers/errors.py``), keeping the SDK's exception as ``__cause__``.

All derive from :class:`agent.policies.base.PolicyError`, so the loop stops cleanly on
them (journaled, original objectives restored) without knowing about LLMs.
"""

from __future__ import annotations

from agent.policies.base import PolicyError


class LlmError(PolicyError):
    """Base of every LLM policy error."""


class LlmConfigError(LlmError):
    """A setting is missing or not allowed (no API key, a cloud URL not allowed, a bad
    base URL, an unknown provider). Raised before anything touches the plan."""


class LlmConnectionError(LlmError):
    """The server could not be reached (after the SDK's retries)."""


class LlmTimeout(LlmConnectionError):
    """The server did not answer within the configured timeout (after the SDK's retries)."""


class LlmRateLimited(LlmError):
    """HTTP 429 (or an overload) persisted through the SDK's retries."""


class LlmServerError(LlmError):
    """HTTP 5xx persisted through the SDK's retries."""


class LlmAuthError(LlmError):
    """HTTP 401/403: the key is wrong, expired or lacks permission."""


class LlmRequestRejected(LlmError):
    """HTTP 400/404/413/422: the server refused the request (unknown model, context too long,
    unsupported parameter). Retrying the same request cannot help."""


class LlmBadResponse(LlmError):
    """The server answered with something that is not a response of its API."""


class PromptTooLarge(LlmError):
    """The assembled prompt's estimated size exceeds the configured context (never truncated)."""


class LlmBudgetExceeded(LlmError):
    """A per-session limit (calls, tokens, wall time) would be exceeded."""


class LlmFormatFailure(LlmError):
    """The model's output could not be repaired within the allowed repairs."""
