"""A fake LLM server on loopback for the wire-level tests of the LLM planner.

The real ``anthropic`` and ``openai`` SDK clients talk to :class:`FakeLlmServer`; a responder
(a function of :class:`FakeRequest`) decides each answer as a reply kind of
:mod:`fake_llm.replies`; :mod:`fake_llm.scripts` has sequences and hostile behaviours.
"""

from .replies import (
    DelayReply,
    EmptyReply,
    HttpErrorReply,
    RawReply,
    RefusalReply,
    Reply,
    TextReply,
    ToolCallReply,
    TruncatedReply,
)
from .request import FakeRequest, RecordedRequest, Responder, ToolResultSeen
from .scripts import HOSTILE, Script, ScriptExhausted, always, planner
from .server import FakeLlmServer, Flavour, ResponderError

__all__ = [
    "HOSTILE",
    "DelayReply",
    "EmptyReply",
    "FakeLlmServer",
    "FakeRequest",
    "Flavour",
    "HttpErrorReply",
    "RawReply",
    "RecordedRequest",
    "RefusalReply",
    "Reply",
    "Responder",
    "ResponderError",
    "Script",
    "ScriptExhausted",
    "TextReply",
    "ToolCallReply",
    "ToolResultSeen",
    "TruncatedReply",
    "always",
    "planner",
]
