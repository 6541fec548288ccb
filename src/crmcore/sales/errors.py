"""The errors of the sales features: a lead that cannot be converted."""

from __future__ import annotations

from typing import Any

from crmcore.errors import ConflictError

__all__ = ["ConversionError"]


class ConversionError(ConflictError):
    """A lead cannot be converted: it was converted already, or its status does not allow it.

    :ivar id: the lead's id.
    :ivar reason: ``"converted"`` (it was converted before) or ``"status"`` (not qualified).
    :ivar previous: for ``"converted"``, what the earlier conversion made:
        ``{"account_id": ..., "contact_id": ..., "opportunity_id": ..., "at": ...}``.
    """

    def __init__(self, message: str, *, id: int, reason: str, previous: dict[str, Any] | None = None) -> None:
        super().__init__(message, entity="lead", id=id)
        self.reason = reason
        self.previous = previous
