"""The HMAC chain of a journal: every line sealed with an HMAC of itself and its predecessor.

A line is the entry's compact JSON with one more member at its end, ``"hmac"``: the hex
HMAC-SHA256, keyed by the installation's chain key (:func:`agent.session.secret.derive_key`),
of the previous line's HMAC followed by the entry's JSON without that member. The header's
predecessor is :func:`chain_seed`, a fixed seed plus the session id. Editing, removing,
inserting or reordering an entry therefore breaks the chain at that line; dropping whole
entries at the end is caught against the chain head kept in ``summary.json``.

The HMAC is computed over the bytes as written, so a reader needs no model to check it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

#: The fixed seed of every chain (the session id is appended).
CHAIN_SEED = b"rtplan journal chain v2"
_SEAL = re.compile(r',"hmac":"([0-9a-f]{64})"\}$')


def chain_seed(key: bytes, session_id: str) -> bytes:
    """The predecessor of a journal's first line (its header)."""
    return hmac.new(key, CHAIN_SEED + b"\x00" + session_id.encode("utf-8"), hashlib.sha256).digest()


def entry_mac(key: bytes, previous: bytes, payload: str) -> bytes:
    """HMAC-SHA256 of ``previous`` followed by the entry's JSON ``payload``."""
    return hmac.new(key, previous + payload.encode("utf-8"), hashlib.sha256).digest()


def seal(key: bytes, previous: bytes, payload: str) -> tuple[str, bytes]:
    """The journal line (without newline) of a JSON object ``payload``, and its HMAC."""
    if not (payload.startswith("{") and payload.endswith("}")) or payload == "{}":
        raise ValueError("a journal entry must be a non-empty JSON object")
    mac = entry_mac(key, previous, payload)
    return f'{payload[:-1]},"hmac":"{mac.hex()}"}}', mac


def unseal(line: str) -> tuple[str, str | None]:
    """``(payload, hmac hex)`` of a sealed line; ``(line, None)`` when it carries no HMAC."""
    found = _SEAL.search(line)
    if found is None:
        return line, None
    return line[: found.start()] + "}", found.group(1)


def matches(key: bytes, previous: bytes, payload: str, mac_hex: str) -> bool:
    """Whether ``mac_hex`` is the HMAC of ``payload`` after ``previous`` (constant time)."""
    return hmac.compare_digest(entry_mac(key, previous, payload).hex(), mac_hex)
