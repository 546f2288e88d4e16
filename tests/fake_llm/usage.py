"""Deterministic token accounting of the fake server, prompt caches included.

Tokens are about 4 bytes of the request body each. Anthropic's prompt cache covers the request
up to its last ``cache_control`` breakpoint (tools, then system, then messages, the service's
order): the first request with a prefix writes it (``cache_creation_input_tokens``), a later
one reads it (``cache_read_input_tokens``), and a prefix below the minimum is not cached at
all. OpenAI-compatible servers cache automatically: ``cached_tokens`` is the longest prefix
of the messages shared with an earlier request, from the minimum on, in steps of 128.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from typing import Any


def tokens(size_bytes: int) -> int:
    """Tokens of ``size_bytes`` bytes (about 4 a token, at least 1)."""
    return max(1, math.ceil(size_bytes / 4))


def cache_prefix(body: dict[str, Any]) -> bytes | None:
    """Anthropic: the serialized request up to the last ``cache_control``, or None."""
    blocks: list[Any] = list(body.get("tools") or [])
    system = body.get("system")
    blocks.extend(system if isinstance(system, list) else [system] if system else [])
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        blocks.extend(content if isinstance(content, list) else [content])
    end = None
    for i, block in enumerate(blocks):
        if isinstance(block, dict) and "cache_control" in block:
            end = i + 1
    if end is None:
        return None
    return json.dumps(blocks[:end], sort_keys=True).encode()


def _common_prefix_bytes(a: bytes, b: bytes) -> int:
    low, high = 0, min(len(a), len(b))
    while low < high:  # binary search: the slice comparisons run in C
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


class PromptCache:
    """The server's prompt-cache state (thread-safe), for both APIs."""

    def __init__(self, min_tokens: int) -> None:
        self.min_tokens = min_tokens
        self._lock = threading.Lock()
        self._anthropic: set[str] = set()
        self._openai: list[bytes] = []

    def anthropic(self, body: dict[str, Any]) -> tuple[int, int]:
        """(read, written) cache tokens of an Anthropic request."""
        prefix = cache_prefix(body)
        if prefix is None or tokens(len(prefix)) < self.min_tokens:
            return 0, 0
        key = hashlib.sha256(prefix).hexdigest()
        with self._lock:
            seen = key in self._anthropic
            self._anthropic.add(key)
        return (tokens(len(prefix)), 0) if seen else (0, tokens(len(prefix)))

    def openai(self, body: dict[str, Any]) -> int:
        """``cached_tokens`` of an OpenAI-compatible request."""
        current = json.dumps(body.get("messages"), sort_keys=True).encode()
        with self._lock:
            earlier = list(self._openai)
            self._openai.append(current)
        shared = max((_common_prefix_bytes(current, other) for other in earlier), default=0)
        count = shared // 4
        return 0 if count < self.min_tokens else count - count % 128
