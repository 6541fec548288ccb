"""Two choice field types of the help desk, now shared by every plugin: IANA time zone names and
times of day. They live in :mod:`crmcore.calendars`; this module keeps the old import path.
"""

from __future__ import annotations

from crmcore.calendars import CLOSING_TIMES, OPENING_TIMES, ClockTime, TimeZoneName

__all__ = ["CLOSING_TIMES", "OPENING_TIMES", "ClockTime", "TimeZoneName"]
