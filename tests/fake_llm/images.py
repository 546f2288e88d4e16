"""Images in a request as the fake server sees them: the base64 payloads of Anthropic image
blocks and OpenAI ``image_url`` data URLs, their PNG chunks and sizes, and what they cost.

Both services count an image by its pixels, not its bytes: Anthropic about
``width * height / 750`` tokens after scaling the long edge down to 1568 px (its vision
documentation); the fake server charges every API the same.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from dataclasses import dataclass
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONG_EDGE_PX = 1568
PIXELS_PER_TOKEN = 750
DATA_URL_PREFIX = "data:image/png;base64,"


@dataclass(frozen=True)
class SeenImage:
    """One image payload: its base64 text, decoded bytes, PNG chunk types and size."""

    data_b64: str
    png: bytes
    chunks: tuple[str, ...]
    width: int
    height: int

    @property
    def tokens(self) -> int:
        """What the service charges for it."""
        scale = min(1.0, LONG_EDGE_PX / max(self.width, self.height, 1))
        return max(1, math.ceil(self.width * scale * self.height * scale / PIXELS_PER_TOKEN))


def png_chunks(png: bytes) -> list[tuple[str, bytes]]:
    """(type, data) of each chunk; ``ValueError`` when ``png`` is not a PNG."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG (bad signature)")
    out, i = [], len(PNG_SIGNATURE)
    while i + 8 <= len(png):
        (length,) = struct.unpack(">I", png[i : i + 4])
        kind = png[i + 4 : i + 8].decode("latin-1")
        out.append((kind, png[i + 8 : i + 8 + length]))
        i += 12 + length
    return out


def payloads(body: Any) -> list[str]:
    """The base64 image payloads anywhere in a parsed request body."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("source")
            data = source.get("data") if isinstance(source, dict) else None
            if node.get("type") == "image" and isinstance(data, str):
                found.append(data)
            url = node.get("image_url")
            if node.get("type") == "image_url" and isinstance(url, dict):
                text = url.get("url")
                if isinstance(text, str) and text.startswith(DATA_URL_PREFIX):
                    found.append(text[len(DATA_URL_PREFIX) :])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


def seen_images(body: Any) -> list[SeenImage]:
    """Every image of a parsed request body, decoded (``ValueError`` on a broken one)."""
    out = []
    for data in payloads(body):
        try:
            png = base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"an image payload is not base64: {exc}") from exc
        chunks = png_chunks(png)
        if not chunks or chunks[0][0] != "IHDR":
            raise ValueError("a PNG without its IHDR chunk first")
        width, height = struct.unpack(">II", chunks[0][1][:8])
        out.append(SeenImage(data, png, tuple(k for k, _ in chunks), width, height))
    return out


def prompt_tokens(body: bytes, parsed: Any, tokens_of_bytes: Any) -> int:
    """Tokens of a request: its bytes without the image payloads, plus each image's cost."""
    images = seen_images(parsed) if isinstance(parsed, dict | list) else []
    text_bytes = len(body) - sum(len(i.data_b64) for i in images)
    return int(tokens_of_bytes(max(0, text_bytes))) + sum(i.tokens for i in images)
