"""The errors of the sales features: a lead that cannot be converted."""

from __future__ import annotations

from typing import Any

from crmcore.errors import CrmError

__all__ = ["ConversionError"]


class ConversionError(CrmError):
    """A lead cannot be converted: it was converted already, or its status does not allow it.

    Retrying does not help (unlike a :class:`~crmcore.errors.ConflictError`): a converted lead
    stays converted, and a lead converts once it is moved to a status that converts.

    :ivar entity: ``"lead"``.
    :ivar id: the lead's id.
    :ivar reason: ``"converted"`` (it was converted before) or ``"status"`` (not qualified).
    :ivar previous: for ``"converted"``, what the earlier conversion made:
        ``{"account_id": ..., "contact_id": ..., "opportunity_id": ..., "at": ...}``.
    """

    def __init__(self, message: str, *, id: int, reason: str, previous: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.entity = "lead"
        self.id = id
        self.reason = reason
        self.previous = previous
