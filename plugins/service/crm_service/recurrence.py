"""The rule dates of a plan's recurrence rule within a window of days.

:func:`rule_dates` answers with the dates a rule read by python-dateutil would give (its EXDATE
exclusions removed), but computes the common rules by arithmetic instead of walking dateutil's
iterator from the plan's start: ``FREQ=DAILY``, ``WEEKLY`` (optionally ``BYDAY`` of plain
weekdays and ``WKST``), ``MONTHLY`` (optionally ``BYMONTHDAY``) and ``YEARLY``, each with an
``INTERVAL``. It jumps straight to the window, so a plan that started years ago costs no more
than a new one. Any other rule (``COUNT``, ``UNTIL``, ``BYSETPOS``, ``BYMONTH``, numbered
weekdays, ...) goes to dateutil. The last 256 answers are cached per (rule, start, time of day,
window): thousands of plans sharing a rule and a start are expanded once, and the cache stays
small (a year of daily dates is some 15 KB).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Iterator

from crm_service.fieldtypes import rule_set

__all__ = ["rule_dates"]

_DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_FREQUENCIES = frozenset({"DAILY", "WEEKLY", "MONTHLY", "YEARLY"})


@functools.lru_cache(maxsize=256)
def rule_dates(rule: str, start: dt.date, time: dt.time, first: dt.date,
               last: dt.date) -> tuple[dt.date, ...]:
    """The dates, from *first* to *last* inclusive, on which *rule* (a rule as
    :class:`~crm_service.fieldtypes.RecurrenceRule` stores it: an RRULE line, then EXDATE
    lines) recurs when it starts on *start* at the wall-clock *time*, in order, each once.

    :param rule: the stored rule text.
    :param start: the plan's first day (the rule's DTSTART).
    :param time: the plan's time of day (where dateutil compares times, as for EXDATE).
    :param first: the first day of the window.
    :param last: the last day of the window.
    :returns: the rule dates within the window, ascending, without duplicates.
    """
    first = max(first, start)
    if last < first:
        return ()
    lines = rule.splitlines()
    excluded = {dt.datetime.strptime(day, "%Y%m%d").date()
                for line in lines[1:] for day in line.split(":", 1)[1].split(",")}
    simple = _simple(lines[0], start, first, last)
    if simple is None:
        return _dateutil(rule, start, time, first, last)
    return tuple(day for day in simple if day not in excluded)


def _dateutil(rule: str, start: dt.date, time: dt.time, first: dt.date,
              last: dt.date) -> tuple[dt.date, ...]:
    found: list[dt.date] = []
    for moment in rule_set(rule, dt.datetime.combine(start, time)).xafter(
            dt.datetime.combine(first, dt.time.min), inc=True):
        day = moment.date()
        if day > last:
            break
        if not found or found[-1] != day:  # a rule with BYHOUR can recur twice a day
            found.append(day)
    return tuple(found)


def _parts(line: str) -> dict[str, str] | None:
    parts: dict[str, str] = {}
    for part in line.split(";"):
        name, sep, value = part.partition("=")
        if not sep or name in parts:
            return None
        parts[name] = value
    return parts


def _simple(line: str, start: dt.date, first: dt.date, last: dt.date) -> list[dt.date] | None:
    """The dates of an RRULE line by arithmetic, or ``None`` when it is not a simple one."""
    parts = _parts(line)
    if parts is None or parts.get("FREQ") not in _FREQUENCIES:
        return None
    frequency = parts.pop("FREQ")
    interval_text = parts.pop("INTERVAL", "1")
    if not interval_text.isdigit() or int(interval_text) < 1:
        return None
    interval = int(interval_text)
    if frequency == "DAILY" and not parts:
        return list(_daily(start, interval, first, last))
    if frequency == "WEEKLY" and set(parts) <= {"BYDAY", "WKST"}:
        wkst = _DAYS.get(parts.get("WKST", "MO"))
        days = ([_DAYS.get(day) for day in parts["BYDAY"].split(",")] if "BYDAY" in parts
                else [start.weekday()])
        if wkst is None or None in days:
            return None
        return list(_weekly(start, interval, frozenset(d for d in days if d is not None),
                            wkst, first, last))
    if frequency == "MONTHLY" and set(parts) <= {"BYMONTHDAY"}:
        monthdays = _monthdays(parts["BYMONTHDAY"]) if parts else (start.day,)
        if monthdays is None:
            return None
        return list(_monthly(start, interval, monthdays, first, last))
    if frequency == "YEARLY" and not parts:
        return list(_yearly(start, interval, first, last))
    return None


def _monthdays(text: str) -> tuple[int, ...] | None:
    days: list[int] = []
    for value in text.split(","):
        digits = value[1:] if value[:1] in "+-" else value
        if not digits.isdigit() or not 1 <= int(digits) <= 31:
            return None
        days.append(int(value))
    return tuple(days)


def _daily(start: dt.date, interval: int, first: dt.date, last: dt.date) -> Iterator[dt.date]:
    step = -(-(first - start).days // interval)  # the first step on or after *first*
    day = start + dt.timedelta(days=step * interval)
    jump = dt.timedelta(days=interval)
    while day <= last:
        yield day
        day += jump


def _weekly(start: dt.date, interval: int, days: frozenset[int], wkst: int, first: dt.date,
            last: dt.date) -> Iterator[dt.date]:
    # dateutil's weeks begin on WKST; the week holding the start is week 0, and every
    # interval-th week after it recurs on the given weekdays (none before the start)
    week_zero = start - dt.timedelta(days=(start.weekday() - wkst) % 7)
    weeks = (first - week_zero).days // 7
    week = week_zero + dt.timedelta(days=7 * (-(-weeks // interval) * interval if weeks > 0
                                              else 0))
    offsets = sorted((day - wkst) % 7 for day in days)
    jump = dt.timedelta(days=7 * interval)
    while week <= last:
        for offset in offsets:
            day = week + dt.timedelta(days=offset)
            if first <= day <= last:
                yield day
        week += jump


def _monthly(start: dt.date, interval: int, monthdays: tuple[int, ...], first: dt.date,
             last: dt.date) -> Iterator[dt.date]:
    begin = start.year * 12 + start.month - 1
    months = first.year * 12 + first.month - 1 - begin
    index = begin + (-(-months // interval) * interval if months > 0 else 0)
    end = last.year * 12 + last.month - 1
    while index <= end:
        year, month = divmod(index, 12)
        length = calendar.monthrange(year, month + 1)[1]
        found = sorted({d if d > 0 else length + d + 1 for d in monthdays
                        if -length <= d <= length})
        for number in found:
            day = dt.date(year, month + 1, number)
            if first <= day <= last:
                yield day
        index += interval


def _yearly(start: dt.date, interval: int, first: dt.date, last: dt.date) -> Iterator[dt.date]:
    years = first.year - start.year
    year = start.year + (-(-years // interval) * interval if years > 0 else 0)
    while year <= last.year:
        if start.month != 2 or start.day != 29 or calendar.isleap(year):
            day = start.replace(year=year)
            if first <= day <= last:
                yield day
        year += interval
