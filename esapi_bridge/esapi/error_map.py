"""The one place where the bridge's typed errors and .NET exceptions become our errors.

:class:`PlanBridge` (C#) catches every ESAPI exception and answers ``{"ok": false, "error":
{"kind", "message"}}``; :func:`raise_for_error` maps that kind onto :mod:`esapi_bridge.errors`.
:func:`dotnet_boundary` wraps each call into .NET, for what fails before the bridge can answer
(a missing method, a conversion pythonnet refuses): those become :class:`TpsUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from esapi_bridge.errors import (
    DoseUnavailable,
    EmptyStructure,
    InvalidInput,
    InvalidObjective,
    OptimizationFailed,
    PlanLocked,
    TpsError,
    TpsUnavailable,
    UnknownStructure,
)


class WrongThread(TpsUnavailable):
    """A bridge call came from another thread than the one the bridge belongs to."""


_KINDS: dict[str, type[TpsError]] = {
    "WrongThread": WrongThread,
    "PlanLocked": PlanLocked,
    "EmptyStructure": EmptyStructure,
    "InvalidObjective": InvalidObjective,
    "InvalidInput": InvalidInput,
    "UnitError": InvalidInput,
    "OptimizationFailed": OptimizationFailed,
    "DoseUnavailable": DoseUnavailable,
    "EsapiError": TpsError,
}


def raise_for_error(error: dict[str, Any]) -> None:
    """Raise the error of our hierarchy that a bridge error envelope names.

    Unknown kinds raise :class:`TpsError` with the kind in the message.
    """
    kind = str(error.get("kind", ""))
    message = str(error.get("message", ""))
    if kind == "UnknownStructure":
        raise UnknownStructure(str(error.get("structure_id", "")), list(error.get("available", [])))
    exception_type = error.get("exception_type")
    detail = f"{message} ({exception_type})" if exception_type else message
    cls = _KINDS.get(kind)
    if cls is None:
        raise TpsError(f"bridge error {kind!r}: {detail}")
    raise cls(detail)


@contextmanager
def dotnet_boundary(what: str) -> Iterator[None]:
    """Map an exception raised by pythonnet or .NET itself (not by the bridge) to our errors."""
    try:
        yield
    except TpsError:
        raise
    except Exception as exc:  # System.Exception subclasses and pythonnet's TypeError
        raise TpsUnavailable(f"the .NET call {what} failed: {type(exc).__name__}: {exc}") from exc


@contextmanager
def port_values(what: str, error: type[TpsError] = TpsError) -> Iterator[None]:
    """Map a bridge answer that does not fit the port's DTOs (a validation or a missing field)."""
    try:
        yield
    except TpsError:
        raise
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise error(f"the bridge's answer to {what} does not fit the port: {exc}") from exc
