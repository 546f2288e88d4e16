"""The small error hierarchy every TPS backend maps its failures to.

Adapters (mock, ESAPI) catch their backend's exceptions at the boundary and
raise one of these, so that the agent handles one vocabulary of errors.
"""

from __future__ import annotations


class TpsError(Exception):
    """Base class of every error raised through the ``TpsSession`` port."""


class TpsUnavailable(TpsError):
    """The TPS (or one of its optional capabilities) cannot be reached or used."""


class CapabilityUnavailable(TpsUnavailable):
    """The backend does not offer this optional capability (e.g. dose slices)."""


class PlanLocked(TpsError):
    """The plan cannot be modified (approved, or the patient is read-only)."""


class PlanRefused(TpsError):
    """The TPS will not open the plan for this session (no such patient, course or plan; a
    plan that is not unapproved; a second ESAPI Application in the process)."""


class InvalidInput(TpsError, ValueError):
    """A value given to the TPS is out of its allowed range or malformed.

    The message names the field, the value and the allowed range.
    """


class InvalidObjective(InvalidInput):
    """An optimization objective is malformed or refers to something unknown."""


class UnknownStructure(InvalidInput, LookupError):
    """A structure id does not exist in the plan's structure set."""

    def __init__(self, structure_id: str, available: list[str] | None = None) -> None:
        self.structure_id = structure_id
        self.available = list(available or [])
        hint = f"; the plan has: {', '.join(self.available)}" if self.available else ""
        super().__init__(f"unknown structure {structure_id!r}{hint}")

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


class EmptyStructure(InvalidInput):
    """A structure exists but has no voxels (no volume) on the dose grid."""


class OptimizationFailed(TpsError):
    """The optimizer or the dose calculation did not succeed."""


class DoseUnavailable(TpsError):
    """No dose has been calculated yet for the plan (or it cannot be computed)."""
