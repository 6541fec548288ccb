"""The errors of the scheduling plugin."""

from __future__ import annotations

from crmcore.errors import ConflictError, ValidationError

__all__ = ["BookingRefused", "ConflictError", "ValidationError"]


class BookingRefused(ValidationError):
    """A booking that breaks a hard constraint: ``reasons`` says which, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__({"starts_at": self.reasons}, entity="booking")
