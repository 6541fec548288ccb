"""Field types of planned service: IANA time zone names, times of day and RFC 5545
recurrence rules.

All three are :class:`~crmcore.fields.Choice` fields whose choices are the usual values (a
recurrence rule's are common rules, offered as examples) with a column of a fixed width; a
recurrence rule accepts any rule python-dateutil reads, checked when written.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import sqlalchemy as sa
from crmcore.fields import Choice, FieldValueError
from dateutil.rrule import rrulestr

__all__ = ["ClockTime", "RecurrenceRule", "TimeZoneName", "parse_clock", "rule_set"]

_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_TIMES = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 24 * 60, 5))


def rule_set(text: str, start: dt.datetime) -> Any:
    """The ``dateutil`` rule set of a rule checked by :class:`RecurrenceRule` (its first line
    the RRULE, the others EXDATE lines of dates), starting at the naive wall-clock *start*:
    excluded dates are excluded at *start*'s time of day."""
    lines = text.splitlines()
    exdates = []
    for line in lines[1:]:
        for day in line.split(":", 1)[1].split(","):
            exdates.append(dt.datetime.combine(
                dt.datetime.strptime(day, "%Y%m%d").date(), start.time()))
    if not exdates:
        return rrulestr("RRULE:" + lines[0], dtstart=start)
    rules = rrulestr("RRULE:" + lines[0], dtstart=start, forceset=True)
    for moment in exdates:
        rules.exdate(moment)
    return rules


def parse_clock(text: str) -> dt.time:
    """``"09:30"`` as a time."""
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


class TimeZoneName(Choice):
    """An IANA time zone name such as ``"Europe/Berlin"`` (or ``"UTC"``)."""

    def __init__(self) -> None:
        names = sorted(n for n in zoneinfo.available_timezones() if "/" in n and len(n) <= 64)
        super().__init__("UTC", *names)

    def describe(self) -> str:
        return "an IANA time zone name such as 'Europe/Berlin'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(64)


class ClockTime(Choice):
    """A wall-clock time of day on a five-minute step, ``HH:MM`` (``"9:30"`` reads
    ``"09:30"``)."""

    def __init__(self) -> None:
        super().__init__(*_TIMES)

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            match = _CLOCK.match(value)
            if match:
                value = f"{int(match.group(1)):02d}:{match.group(2)}"
        try:
            return super().parse(value)
        except FieldValueError:
            raise self._fail(value) from None

    def describe(self) -> str:
        return "a time of day from '00:00' to '23:55' on a five-minute step, such as '09:30'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(5)


class RecurrenceRule(Choice):
    """An RFC 5545 recurrence rule without its start, such as ``FREQ=MONTHLY;BYMONTHDAY=1`` or
    ``FREQ=WEEKLY;INTERVAL=2;BYDAY=MO`` (a leading ``RRULE:`` is dropped), optionally followed
    by exclusions on lines of their own: ``EXDATE:20261224,20261231``. The plan gives the
    start and the time of day; ``DTSTART`` in the rule is refused."""

    def __init__(self) -> None:
        super().__init__("FREQ=MONTHLY", "FREQ=WEEKLY", "FREQ=YEARLY", "FREQ=DAILY")

    def parse(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._fail(value)
        lines = [line.strip().upper() for line in value.strip().splitlines() if line.strip()]
        if not lines or "DTSTART" in value.upper():
            raise self._fail(value)
        rule = lines[0][6:] if lines[0].startswith("RRULE:") else lines[0]
        if not rule.startswith("FREQ=") and ";FREQ=" not in rule:
            raise self._fail(value)
        exclusions = lines[1:]
        if any(not re.fullmatch(r"EXDATE:\d{8}(,\d{8})*", line) for line in exclusions):
            raise self._fail(value)
        text = "\n".join([rule, *exclusions])
        try:
            rule_set(text, dt.datetime(2000, 1, 1))
        except (ValueError, TypeError):
            raise self._fail(value) from None
        return text

    def describe(self) -> str:
        return "an RFC 5545 recurrence rule such as 'FREQ=MONTHLY;BYMONTHDAY=1'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(500)
