"""Business time: the help desk's name for the business calendars of :mod:`crmcore.calendars`.

The calendar computation (weekly opening hours in a time zone, holidays, clocks that add and
count business minutes) moved to the core so that planned service and scheduling share it;
this module keeps the old import path.
"""

from __future__ import annotations

from crmcore.calendars import WEEKDAYS, BusinessCalendar, parse_window, parse_windows

__all__ = ["WEEKDAYS", "BusinessCalendar", "parse_window", "parse_windows"]
