"""Offline token estimates (no tokenizer, no network) and the request checks and usage
reading the providers share.

The heuristic: one token per :data:`CHARS_PER_TOKEN` characters of text (system blocks,
turn texts, tool results, replayed assistant content and the tool's name, description and
adapted JSON schema), :data:`IMAGE_TOKENS` per image and :data:`TURN_OVERHEAD_TOKENS` per
message for the chat template's framing. English prose and JSON run at about 3.5-4
characters per token on current tokenizers, so 3.5 errs on the large side; the image
figure is Anthropic's cost of an image at its largest size before downscaling (about
1.15 megapixels / 750), an upper bound for a dose plane. The policy reconciles the estimate
with the usage the server returns.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

from pydantic import JsonValue

from agent.policies.llm.wire import LlmRequest

CHARS_PER_TOKEN = 3.5
IMAGE_TOKENS = 1600
TURN_OVERHEAD_TOKENS = 4


def text_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (``ceil(len / 3.5)``)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def json_text(value: JsonValue) -> str:
    """The compact JSON text of ``value`` (what goes over the wire, roughly)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def estimate_request_tokens(
    request: LlmRequest, tool_definition: JsonValue, extra_texts: Iterable[str] = ()
) -> int:
    """Estimated input tokens of ``request`` with its tool sent as ``tool_definition``
    (the provider's adapted form), plus ``extra_texts`` (provider framing).

    See the module docstring for the heuristic.
    """
    chars = len(json_text(tool_definition))
    chars += sum(len(part.text) for part in request.system)
    chars += sum(len(text) for text in extra_texts)
    images = 0
    for turn in request.turns:
        if turn.role == "assistant" and turn.provider_turn is not None:
            chars += len(json_text(turn.provider_turn))
        else:
            chars += len(turn.text)
        if turn.tool_result is not None:
            chars += len(turn.tool_result.content) + len(turn.tool_result.call_id)
        for image in turn.images:
            images += 1
            chars += len(image.caption)
    messages = len(request.turns) + (1 if request.system else 0)
    return (
        math.ceil(chars / CHARS_PER_TOKEN) + images * IMAGE_TOKENS + messages * TURN_OVERHEAD_TOKENS
    )


def usage_count(usage: object, field: str) -> int:
    """The non-negative integer ``usage.field`` of an SDK usage object, else 0 (servers omit
    fields or send null)."""
    value = getattr(usage, field, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def check_conversation(request: LlmRequest) -> None:
    """Refuse a conversation that does not start and end with a user turn: the assistant
    turn is never prefilled.

    Raises
    ------
    ValueError
        A caller's mistake (the policy builds the turns), not a runtime condition.
    """
    if not request.turns or request.turns[0].role != "user":
        raise ValueError("the conversation must start with a user turn")
    if request.turns[-1].role != "user":
        raise ValueError("the last turn must be the user's: the assistant turn is never prefilled")


__all__ = [
    "CHARS_PER_TOKEN",
    "IMAGE_TOKENS",
    "TURN_OVERHEAD_TOKENS",
    "check_conversation",
    "estimate_request_tokens",
    "json_text",
    "text_tokens",
    "usage_count",
]
