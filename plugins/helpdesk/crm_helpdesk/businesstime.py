"""Business time: weekly opening hours in a time zone, with holidays, and clocks that run on them.

A :class:`BusinessCalendar` knows when a support team works: windows of opening hours per
weekday, written in the calendar's own time zone (``"09:00-17:00"``), and holidays (local
dates) on which nobody works. Two operations carry every SLA computation:

- :meth:`BusinessCalendar.add` moves a moment forward by a number of business minutes (a
  ticket opened on Friday at 16:00 with a two-hour target is due on Monday at 10:00);
- :meth:`BusinessCalendar.between` counts the business minutes between two moments.

Both work on real elapsed time: a window is turned into two UTC instants, so a day on which
the clocks change has as many business minutes as actually pass (a window ``00:00-24:00`` lasts
23 hours on the day summer time begins and 25 on the day it ends). A window edge that falls in
the hour skipped by a spring change starts at the change itself; one in the hour repeated by an
autumn change opens at its first occurrence and closes at its last. Everything here is pure:
no database, no app, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["WEEKDAYS", "BusinessCalendar", "parse_window", "parse_windows"]

#: Weekday keys, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A calendar without any opening hours in this many days cannot finish a clock.
_HORIZON_DAYS = 3700
_DAY = 24 * 60
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")

Window = tuple[int, int]
"""Opening hours of one day as minutes after local midnight: ``(opens, closes)``,
``0 <= opens < closes <= 1440``."""


def _minute_of_day(text: str, *, where: str) -> int:
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"{where}: expected a time such as '09:00', got {text!r}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{where}: {text!r} is not a time of day between 00:00 and 24:00")
    return hours * 60 + minutes


def parse_window(text: str | tuple[str, str] | tuple[int, int], *, where: str = "hours") -> Window:
    """Read one window: ``"09:00-17:00"``, ``("09:00", "17:00")`` or minutes ``(540, 1020)``.

    :raises ValueError: naming *where* and the text, for a malformed window or one that closes
        before it opens.
    """
    if isinstance(text, str):
        opens_text, sep, closes_text = text.partition("-")
        if not sep:
            raise ValueError(f"{where}: expected opening hours such as '09:00-17:00', got {text!r}")
        opens = _minute_of_day(opens_text, where=where)
        closes = _minute_of_day(closes_text, where=where)
    elif isinstance(text, tuple) and len(text) == 2 and all(isinstance(t, int) for t in text):
        opens, closes = int(text[0]), int(text[1])
    elif isinstance(text, tuple) and len(text) == 2 and all(isinstance(t, str) for t in text):
        opens = _minute_of_day(str(text[0]), where=where)
        closes = _minute_of_day(str(text[1]), where=where)
    else:
        raise ValueError(f"{where}: expected opening hours such as '09:00-17:00', got {text!r}")
    if not 0 <= opens < closes <= _DAY:
        raise ValueError(
            f"{where}: opening hours must open before they close, between 00:00 and 24:00; "
            f"got {_clock(opens)}-{_clock(closes)}"
        )
    return opens, closes


def parse_windows(windows: Iterable[Any], *, where: str = "hours") -> tuple[Window, ...]:
    """Read a day's windows; overlapping or touching ones are merged, the result is sorted."""
    parsed = sorted(parse_window(w, where=f"{where}[{i}]") for i, w in enumerate(windows))
    merged: list[list[int]] = []
    for opens, closes in parsed:
        if merged and opens <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], closes)
        else:
            merged.append([opens, closes])
    return tuple((a, b) for a, b in merged)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _aware(moment: dt.datetime, what: str) -> dt.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment.astimezone(dt.UTC)


@attrs.frozen(eq=False)
class BusinessCalendar:
    """Opening hours per weekday in *timezone*, and holidays.

    :param timezone: the ``tzinfo`` the hours and holidays are written in.
    :param weekly: seven tuples of windows (minutes after local midnight), Monday first.
    :param holidays: local dates without business hours.
    :param name: for messages and ``repr``.
    """

    timezone: dt.tzinfo
    weekly: tuple[tuple[Window, ...], ...]
    holidays: frozenset[dt.date] = attrs.field(default=frozenset(), converter=frozenset)
    name: str = ""
    _days: dict[dt.date, tuple[tuple[dt.datetime, dt.datetime], ...]] = attrs.field(
        factory=dict, init=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError(f"a calendar needs the hours of 7 weekdays, got {len(self.weekly)}")
        if not any(self.weekly):
            raise ValueError(f"calendar {self.name!r} has no opening hours on any weekday")

    @classmethod
    def from_hours(
        cls,
        timezone: dt.tzinfo,
        hours: Mapping[str, Iterable[Any]],
        holidays: Iterable[dt.date] = (),
        *,
        name: str = "",
    ) -> BusinessCalendar:
        """Build a calendar from ``{"mon": ["09:00-17:00"], ...}``; absent weekdays are closed.

        :raises ValueError: for an unknown weekday or a malformed window, naming it.
        """
        unknown = [key for key in hours if key not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
        weekly = tuple(parse_windows(hours.get(day, ()), where=day) for day in WEEKDAYS)
        return cls(timezone, weekly, frozenset(holidays), name)

    @classmethod
    def always_open(cls, timezone: dt.tzinfo = dt.UTC, *, name: str = "24x7") -> BusinessCalendar:
        """Every minute of every day counts (holidays included)."""
        return cls(timezone, tuple(((0, _DAY),) for _ in WEEKDAYS), frozenset(), name)

    # -- windows as instants ----------------------------------------------------------------------
    def windows(self, day: dt.date) -> tuple[tuple[dt.datetime, dt.datetime], ...]:
        """The opening windows of local date *day* as UTC instants (none on a holiday)."""
        found = self._days.get(day)
        if found is None:
            if day in self.holidays:
                found = ()
            else:
                found = tuple(
                    (self._instant(day, opens, last=False), self._instant(day, closes, last=True))
                    for opens, closes in self.weekly[day.weekday()]
                )
                found = tuple((a, b) for a, b in found if a < b)
            if len(self._days) > 4096:
                self._days.clear()
            self._days[day] = found
        return found

    def _instant(self, day: dt.date, minute: int, *, last: bool) -> dt.datetime:
        """The UTC instant of local *day* at *minute*: the earliest occurrence of a repeated
        wall time for an opening, the latest for a closing (*last*); for a skipped wall time,
        the moment of the change."""
        if minute == _DAY:
            day, minute = day + dt.timedelta(days=1), 0
        wall = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
        first = wall.replace(tzinfo=self.timezone, fold=0).astimezone(dt.UTC)
        second = wall.replace(tzinfo=self.timezone, fold=1).astimezone(dt.UTC)
        if first == second:
            return first
        if _round_trips(first, self.timezone, wall) and _round_trips(second, self.timezone, wall):
            return max(first, second) if last else min(first, second)
        return _transition(self.timezone, min(first, second), max(first, second))

    def is_open(self, moment: dt.datetime) -> bool:
        """Does *moment* fall within opening hours?"""
        at = _aware(moment, "moment")
        day = at.astimezone(self.timezone).date()
        return any(start <= at < end for start, end in self.windows(day))

    # -- clocks -----------------------------------------------------------------------------------
    def add(self, start: dt.datetime, minutes: float) -> dt.datetime:
        """The moment *minutes* business minutes after *start*.

        A clock started outside opening hours begins at the next opening; ``0`` minutes give
        *start* itself.

        :param start: an aware datetime.
        :param minutes: business minutes, not negative.
        :returns: an aware datetime in UTC.
        :raises ValueError: for negative minutes, a naive *start*, or a calendar that never
            opens within ten years.
        """
        if minutes < 0:
            raise ValueError(f"business minutes to add must not be negative, got {minutes!r}")
        current = _aware(start, "start")
        if minutes == 0:
            return current
        remaining = dt.timedelta(minutes=minutes)
        day = current.astimezone(self.timezone).date() - dt.timedelta(days=1)
        for _ in range(_HORIZON_DAYS):
            for opens, closes in self.windows(day):
                if closes <= current:
                    continue
                begin = max(opens, current)
                span = closes - begin
                if remaining <= span:
                    return begin + remaining
                remaining -= span
                current = closes
            day += dt.timedelta(days=1)
        raise ValueError(
            f"calendar {self.name!r} has no opening hours in the {_HORIZON_DAYS} days after "
            f"{start.isoformat()}; check its hours and holidays"
        )

    def between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business minutes from *start* to *end* (negative when *end* comes first)."""
        a, b = _aware(start, "start"), _aware(end, "end")
        if b < a:
            return -self.between(b, a)
        total = dt.timedelta()
        day = a.astimezone(self.timezone).date() - dt.timedelta(days=1)
        last = b.astimezone(self.timezone).date()
        while day <= last:
            for opens, closes in self.windows(day):
                begin, finish = max(opens, a), min(closes, b)
                if begin < finish:
                    total += finish - begin
            day += dt.timedelta(days=1)
        return total.total_seconds() / 60

    def __repr__(self) -> str:
        return f"<BusinessCalendar {self.name or 'unnamed'} {self.timezone}>"


def _round_trips(instant: dt.datetime, tz: dt.tzinfo, wall: dt.datetime) -> bool:
    return instant.astimezone(tz).replace(tzinfo=None) == wall


def _transition(tz: dt.tzinfo, low: dt.datetime, high: dt.datetime) -> dt.datetime:
    """The first instant in ``(low, high]`` whose UTC offset differs from *low*'s (bisection to
    the second): where a skipped wall time really begins."""
    before = low.astimezone(tz).utcoffset()
    lo, hi = low, high
    while hi - lo > dt.timedelta(seconds=1):
        middle = lo + (hi - lo) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(tz).utcoffset() == before:
            lo = middle
        else:
            hi = middle
    return hi
