"""The calendar plugin's errors."""

from __future__ import annotations

from crmcore.errors import ValidationError

__all__ = ["CalendarFileError"]


class CalendarFileError(ValidationError):
    """A file that is not iCalendar, or that cannot be read as one."""
