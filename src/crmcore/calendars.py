"""Business calendars: weekly opening hours in a time zone, with holidays, and clocks that run
on them; shared by every part of the CRM that needs working time.

A calendar is declared once, as three core entity types (tables ``crm_business_calendar``,
``crm_business_hours``, ``crm_business_holiday``; the builtin plugin ``core.calendars``): a name
and an IANA time zone, windows of opening hours per weekday written in that zone
(``"09:00-17:00"``, several a day), and holidays (local dates) on which nobody works. The help
desk runs its SLA clocks on them, planned service shifts visits off their closed days and
holidays, and scheduling gives resources their working hours from them.

:func:`load_calendars` reads calendars set-based through the unit of work (three queries
whatever their number) into :class:`BusinessCalendar` values. Those are pure (no database, no
app, no clock), and carry every computation:

- :meth:`BusinessCalendar.add` moves a moment forward by a number of business minutes (a
  ticket opened on Friday at 16:00 with a two-hour target is due on Monday at 10:00);
- :meth:`BusinessCalendar.between` counts the business minutes between two moments;
- :meth:`BusinessCalendar.windows` gives a local day's opening hours as UTC instants and
  :meth:`BusinessCalendar.spans` those of a period (working hours);
- :meth:`BusinessCalendar.day_off` says why a day has no opening hours (a holiday's name, a
  closed weekday).

All work on real elapsed time: a window is turned into two UTC instants, so a day on which
the clocks change has as many business minutes as actually pass (a window ``00:00-24:00`` lasts
23 hours on the day summer time begins and 25 on the day it ends). A window edge that falls in
the hour skipped by a spring change starts at the change itself; one in the hour repeated by an
autumn change opens at its first occurrence and closes at its last.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.fields import Choice, FieldValueError, timezone_named

if TYPE_CHECKING:
    from crmcore.storage import UnitOfWork

__all__ = [
    "CLOSING_TIMES",
    "OPENING_TIMES",
    "WEEKDAYS",
    "BusinessCalendar",
    "ClockTime",
    "TimeZoneName",
    "create_calendar",
    "load_calendars",
    "parse_window",
    "parse_windows",
]

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


def _dates(values: Iterable[dt.date]) -> frozenset[dt.date]:
    return frozenset(values)


@attrs.frozen(eq=False)
class BusinessCalendar:
    """Opening hours per weekday in *timezone*, and holidays.

    :param timezone: the ``tzinfo`` the hours and holidays are written in.
    :param weekly: seven tuples of windows (minutes after local midnight), Monday first.
    :param holidays: local dates without business hours.
    :param name: for messages and ``repr``.
    :param holiday_names: the names of (some of) the holidays, for :meth:`day_off`.
    """

    timezone: dt.tzinfo
    weekly: tuple[tuple[Window, ...], ...]
    holidays: frozenset[dt.date] = attrs.field(default=frozenset(), converter=_dates)
    name: str = ""
    holiday_names: Mapping[dt.date, str] = attrs.field(factory=dict, repr=False)
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
        holidays: Iterable[dt.date] | Mapping[dt.date, str] = (),
        *,
        name: str = "",
    ) -> BusinessCalendar:
        """Build a calendar from ``{"mon": ["09:00-17:00"], ...}``; absent weekdays are closed.
        *holidays* are dates, or ``{date: name}``.

        :raises ValueError: for an unknown weekday or a malformed window, naming it.
        """
        unknown = [key for key in hours if key not in WEEKDAYS]
        if unknown:
            raise ValueError(f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
        weekly = tuple(parse_windows(hours.get(day, ()), where=day) for day in WEEKDAYS)
        names: dict[dt.date, str] = dict(holidays) if isinstance(holidays, Mapping) else {}
        days: frozenset[dt.date] = frozenset(names or holidays)
        return cls(timezone, weekly, days, name, names)

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

    def day_off(self, day: dt.date) -> str | None:
        """Why local date *day* has no opening hours (the holiday's name, ``"holiday"``, or
        ``"sun is a day off"``), or ``None`` when it has some."""
        if day in self.holidays:
            return self.holiday_names.get(day) or "holiday"
        if not self.weekly[day.weekday()]:
            return f"{WEEKDAYS[day.weekday()]} is a day off"
        return None

    def spans(self, first: dt.date, last: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The opening windows of the local days from *first* to *last* as UTC instants, in
        time order (working hours over a period)."""
        found: list[tuple[dt.datetime, dt.datetime]] = []
        day = first
        while day <= last:
            found.extend(self.windows(day))
            day += dt.timedelta(days=1)
        return found

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


# -- field types of calendars ---------------------------------------------------------------------

_STEP = 5  # minutes between two times of day on offer
#: Times a window may open at: 00:00 to 23:55, every five minutes.
OPENING_TIMES = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, _DAY, _STEP))
#: Times a window may close at: 00:05 to 24:00, every five minutes.
CLOSING_TIMES = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(_STEP, _DAY + 1, _STEP))


def _zone_names() -> tuple[str, ...]:
    names = sorted(n for n in zoneinfo.available_timezones() if "/" in n and len(n) <= 64)
    return ("UTC", *names)


class TimeZoneName(Choice):
    """An IANA time zone name such as ``"Europe/Berlin"`` (or ``"UTC"``), in a column of a fixed
    width so the schema does not change with the time zone database of the machine."""

    def __init__(self) -> None:
        super().__init__(*_zone_names())

    def describe(self) -> str:
        return "an IANA time zone name such as 'Europe/Berlin'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(64)


class ClockTime(Choice):
    """A time of day on a five-minute step, written ``HH:MM`` (``"9:30"`` reads as ``"09:30"``).

    :param closing: times a window closes at (``00:05`` to ``24:00``) instead of opens at
        (``00:00`` to ``23:55``).
    """

    def __init__(self, closing: bool = False) -> None:
        super().__init__(*(CLOSING_TIMES if closing else OPENING_TIMES))

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            match = _TIME.match(value)
            if match:
                value = f"{int(match.group(1)):02d}:{match.group(2)}"
        try:
            return super().parse(value)
        except FieldValueError:
            raise self._fail(value) from None

    def describe(self) -> str:
        first, last = self.choices[0], self.choices[-1]
        return f"a time of day from {first!r} to {last!r} on a five-minute step, such as '09:30'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(5)


# -- reading calendars ----------------------------------------------------------------------------


def load_calendars(
    uow: UnitOfWork,
    ids: Iterable[int],
    *,
    first: dt.date | None = None,
    last: dt.date | None = None,
    skip_empty: bool = False,
) -> dict[int, BusinessCalendar]:
    """The :class:`BusinessCalendar` of each ``business_calendar`` of *ids* the actor may read,
    with its hours and holidays: three queries whatever the number of calendars.

    :param first: with *last*, read only the holidays from *first* to *last* (a period's work).
    :param skip_empty: leave calendars without any opening hours out of the result instead of
        raising (for callers to whom such a calendar means "never open").
    :returns: ``{calendar id: calendar}``; ids the actor may not read are left out.
    :raises ValidationError: for a calendar without any opening hours, naming it (unless
        *skip_empty*).

    Example::

        calendars = load_calendars(uow, [policy.calendar_id])
        due = calendars[policy.calendar_id].add(opened_at, 120)
    """
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    rows = uow.select("business_calendar", ("id", "name", "timezone")).where(
        ("id", "in", wanted)).all()
    if not rows:
        return {}
    found_ids = [r["id"] for r in rows]
    hours: dict[int, dict[str, list[tuple[str, str]]]] = {i: {} for i in found_ids}
    for r in uow.select("business_hours", ("calendar_id", "weekday", "opens", "closes")).where(
            ("calendar_id", "in", found_ids)).order_by("id").all():
        hours[r["calendar_id"]].setdefault(r["weekday"], []).append((r["opens"], r["closes"]))
    holidays: dict[int, dict[dt.date, str]] = {i: {} for i in found_ids}
    query = uow.select("business_holiday", ("calendar_id", "day", "name")).where(
        ("calendar_id", "in", found_ids))
    if first is not None:
        query = query.where(("day", ">=", first))
    if last is not None:
        query = query.where(("day", "<=", last))
    for r in query.all():
        holidays[r["calendar_id"]][r["day"]] = r["name"] or ""
    calendars = {}
    for r in rows:
        if skip_empty and not hours[r["id"]]:
            continue
        try:
            calendars[r["id"]] = BusinessCalendar.from_hours(
                timezone_named(r["timezone"] or "UTC"), hours[r["id"]], holidays[r["id"]],
                name=r["name"])
        except ValueError as exc:
            raise ValidationError(
                f"business calendar {r['name']!r} (id {r['id']}) cannot give working time: "
                f"{exc}; add its hours as business_hours records",
                entity="business_calendar",
            ) from None
    return calendars


def create_calendar(
    uow: UnitOfWork,
    name: str,
    hours: Mapping[str, Iterable[str]],
    *,
    timezone: str = "UTC",
    holidays: Iterable[dt.date] | Mapping[dt.date, str] = (),
    description: str | None = None,
) -> int:
    """Write a ``business_calendar`` with its hours and holidays through *uow* (two batched
    writes besides the calendar's own) and return its id.

    :param hours: ``{"mon": ["09:00-17:00"], ...}``; absent weekdays are closed.
    :param holidays: local dates, or ``{date: name}``.
    :raises ValueError: for an unknown weekday or a malformed window, naming it.

    Example::

        office = create_calendar(uow, "Berlin office", {d: ["08:30-12:00", "13:00-17:00"]
                                 for d in WEEKDAYS[:5]}, timezone="Europe/Berlin",
                                 holidays={dt.date(2026, 12, 25): "Christmas"})
    """
    unknown = [key for key in hours if key not in WEEKDAYS]
    if unknown:
        raise ValueError(f"unknown weekday {unknown[0]!r}; use {', '.join(WEEKDAYS)}")
    windows = [(day, parse_windows(hours[day], where=day)) for day in WEEKDAYS if day in hours]
    calendar = uow.create("business_calendar", name=name, timezone=timezone,
                          description=description)
    rows = [{"calendar_id": calendar.id, "weekday": day, "opens": _clock(a), "closes": _clock(b)}
            for day, spans in windows for a, b in spans]
    if rows:
        uow.create_many("business_hours", rows)
    named = dict(holidays) if isinstance(holidays, Mapping) else dict.fromkeys(holidays, None)
    if named:
        uow.create_many("business_holiday", [{"calendar_id": calendar.id, "day": day, "name": why}
                                             for day, why in sorted(named.items())])
    return int(calendar.id)
