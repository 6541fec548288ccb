"""Occurrences of activities inside a window.

A series is one activity holding its rule (``rrule``), the occurrences it leaves out
(``exdates``) and adds (``rdates``); an occurrence that was moved or changed is an activity of
its own whose ``series_id`` is the series and whose ``recurrence_id`` is the start of the
occurrence it replaces. Nothing else is stored: :func:`occurrences` expands the series only
inside the window asked for, with :mod:`dateutil.rrule`, in the zone the series was planned in
(so a weekly 9:00 stays at 9:00 across daylight-saving changes), and puts each override in
place of the occurrence it replaces.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from dateutil.rrule import rruleset, rrulestr

from crm_calendar_sync import timezones
from crm_calendar_sync.entities import CALENDAR_KINDS
from crm_calendar_sync.parse import occurrence_key

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["Occurrence", "expand", "occurrences", "rule_text"]

_UNTIL = re.compile(r"^UNTIL=(\d{8})(?:T(\d{6}))?(Z?)$", re.IGNORECASE)
_FIELDS = ("id", "subject", "kind", "status", "starts_at", "ends_at", "start_date", "end_date", "all_day",
           "timezone", "rrule", "rdates", "exdates", "recurrence_id", "series_id")


@attrs.frozen
class Occurrence:
    """One occurrence of an activity in a window: a single activity, an occurrence of a
    series, or an override standing in for one."""

    activity_id: int
    series_id: int | None
    recurrence_id: str | None
    subject: str
    status: str | None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    @property
    def sort_key(self) -> tuple[str, int]:
        first = self.starts_at.isoformat() if self.starts_at else (self.start_date.isoformat() if self.start_date else "")
        return (first[:19], self.activity_id)


def rule_text(rrule: str, start: dt.datetime) -> str:
    """*rrule* as dateutil reads it against *start*: an UNTIL in the form the start needs
    (UTC for a zoned start, a wall time for an all-day series)."""
    parts = []
    for part in rrule.strip().removeprefix("RRULE:").split(";"):
        match = _UNTIL.match(part)
        if match is None:
            if part:
                parts.append(part)
            continue
        day, clock, utc = match.groups()
        if start.tzinfo is None:  # all-day: the day of the last occurrence
            until = dt.datetime.strptime(day + (clock or "235959"), "%Y%m%d%H%M%S")
            if utc:  # a UTC instant near a local midnight: the day it is nearest to
                until = until + dt.timedelta(hours=12)
            parts.append("UNTIL=" + until.strftime("%Y%m%dT235959"))
        elif utc:
            parts.append(part.upper())
        else:
            local = dt.datetime.strptime(day + (clock or "235959"), "%Y%m%d%H%M%S").replace(tzinfo=start.tzinfo)
            parts.append("UNTIL=" + local.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
    return ";".join(parts)


def _instant(text: str, like: dt.datetime) -> dt.datetime:
    """An ISO date or UTC time stored in ``exdates``/``rdates`` as a start comparable with *like*."""
    if len(text) == 10:  # a date: the occurrence of that day at the series' time
        day = dt.date.fromisoformat(text)
        return dt.datetime.combine(day, like.timetz() if like.tzinfo else like.time())
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if like.tzinfo is None:
        return dt.datetime.combine(moment.date(), like.time())
    return moment.astimezone(like.tzinfo)


def expand(values: Mapping[str, Any], start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """The starts of the occurrences of a series (or single activity) from *start* to *end*
    (aware times, both included): aware datetimes, or dates for an all-day activity."""
    all_day = bool(values.get("all_day")) and values.get("start_date") is not None
    if all_day:
        first = dt.datetime.combine(values["start_date"], dt.time())
        low, high = start.replace(tzinfo=None), end.replace(tzinfo=None)
    elif values.get("starts_at") is not None:
        zone = timezones.zone(values.get("timezone") or "UTC") or dt.UTC
        first = values["starts_at"].astimezone(zone)
        low, high = start, end
    else:
        return []
    found = rruleset()
    if values.get("rrule"):
        found.rrule(rrulestr(rule_text(values["rrule"], first), dtstart=first))  # type: ignore[arg-type]
    found.rdate(first)
    for text in values.get("rdates") or ():
        found.rdate(_instant(text, first))
    for text in values.get("exdates") or ():
        found.exdate(_instant(text, first))
    starts = found.between(low, high, inc=True)
    return [moment.date() for moment in starts] if all_day else [moment.astimezone(dt.UTC) for moment in starts]


def _bounds(window: tuple[dt.date, dt.date]) -> tuple[dt.datetime, dt.datetime]:
    def aware(value: dt.date, end: bool) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        moment = dt.datetime.combine(value, dt.time.max if end else dt.time(), dt.UTC)
        return moment

    return aware(window[0], False), aware(window[1], True)


def occurrences(uow: UnitOfWork, window: tuple[dt.date, dt.date], *, where: Any = None) -> list[Occurrence]:
    """The occurrences of the calendar activities (meetings, calls, tasks) the actor may read
    inside *window* (dates, both days included, or aware times), in start order: single
    activities, the occurrences of each series expanded inside the window only, and overrides
    in place of the occurrences they replace.

    :param where: a further condition on the activities, as ``uow.query(...).where`` takes it,
        or ``{field: value}`` equalities.
    """
    start, end = _bounds(window)
    first_day, last_day = start.date(), end.date()
    conditions: list[Any] = [("kind", "in", list(CALENDAR_KINDS))]
    if isinstance(where, Mapping) and not set(where) & {"all", "any", "not"}:
        conditions.extend((name, "=", value) for name, value in where.items())  # {field: value} equalities
    elif where is not None:
        conditions.append(where)
    within = {"any": [
        {"all": [("starts_at", "<=", end), ("starts_at", ">=", start)]},
        {"all": [("starts_at", "<=", end), ("ends_at", ">=", start)]},
        {"all": [("start_date", "<=", last_day), ("end_date", ">=", first_day)]},
        {"all": [("rrule", "is not null"), {"any": [("starts_at", "<=", end), ("start_date", "<=", last_day)]}]},
        {"all": [("rdates", "is not null"), ("series_id", "is null")]},
    ]}
    rows = uow.select("activity", _FIELDS).where(*conditions, within).order_by("id").all()
    series = {row["id"]: row for row in rows if row["rrule"] or row["rdates"]}
    overrides: dict[int, dict[str, dict[str, Any]]] = {}
    if series:
        for row in uow.select("activity", _FIELDS).where(("series_id", "in", sorted(series))).all():
            overrides.setdefault(row["series_id"], {})[row["recurrence_id"] or ""] = row
    found: list[Occurrence] = []
    for row in rows:
        if row["id"] in series:
            moved = overrides.get(row["id"], {})
            length = _length(row)
            for moment in expand(row, start, end):
                key = occurrence_key(moment)
                if key in moved:
                    continue  # the override stands in for it (listed when inside the window)
                found.append(_occurrence(row, row["id"], key, moment, length))
        else:
            found.append(_single(row))
    return sorted(found, key=lambda o: o.sort_key)


def _length(row: Mapping[str, Any]) -> dt.timedelta:
    if row["all_day"] and row["start_date"] is not None:
        return (row["end_date"] or row["start_date"]) - row["start_date"]
    if row["starts_at"] is not None and row["ends_at"] is not None:
        return row["ends_at"] - row["starts_at"]
    return dt.timedelta(0)


def _occurrence(row: Mapping[str, Any], series_id: int, key: str, moment: dt.date, length: dt.timedelta) -> Occurrence:
    if isinstance(moment, dt.datetime):
        return Occurrence(row["id"], series_id, key, row["subject"], row["status"], starts_at=moment,
                          ends_at=moment + length)
    return Occurrence(row["id"], series_id, key, row["subject"], row["status"], start_date=moment,
                      end_date=moment + length)


def _single(row: Mapping[str, Any]) -> Occurrence:
    return Occurrence(row["id"], row["series_id"], row["recurrence_id"], row["subject"], row["status"],
                      starts_at=row["starts_at"], ends_at=row["ends_at"], start_date=row["start_date"],
                      end_date=row["end_date"])
