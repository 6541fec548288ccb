"""Reading iCalendar files into the values of activities.

:func:`read_calendar` turns the VEVENTs and VTODOs of a file into :class:`ParsedEvent` values:
the event's key (UID, RECURRENCE-ID), the activity fields it maps to, a hash of them and the
component as received. The mapping, field by field:

- VTODO is a ``task``; a VEVENT is a ``call`` when ``X-CRM-KIND:call`` or a category says so
  (``Call``, ``Phone call``), else a ``meeting``.
- ``DTSTART``/``DTEND``/``DURATION``/``DUE``: times become UTC (``starts_at``, ``ends_at``,
  ``due_at``) with the IANA zone they were planned in (``timezone``; Windows and custom ids
  resolved by :mod:`~crm_calendar_sync.timezones`; floating times in the calendar's
  ``X-WR-TIMEZONE`` or the default zone given). A ``VALUE=DATE`` start is an all-day activity
  kept as dates (``start_date``, ``end_date`` inclusive), never as a midnight time.
- ``RRULE`` is kept as text (escaped separators some exporters write are undone); ``EXDATE``
  and ``RDATE`` as lists of ISO dates or UTC times; ``RECURRENCE-ID`` as ``YYYYMMDD`` or
  ``YYYYMMDDTHHMMSSZ`` (a midnight RECURRENCE-ID of an all-day occurrence as its date).
- ``ORGANIZER`` and ``ATTENDEE`` with their name, role and participation status; ``VALARM``
  triggers as minutes before the start (or end), or an absolute time.
- ``STATUS``: ``CANCELLED`` is cancelled, ``COMPLETED`` done, anything else planned.

A component that cannot be read (a broken date) is skipped with a line saying why, and the rest
of the file still imports; a value that can be repaired (``20131210Z`` for a date) is repaired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import attrs
import icalendar

from crm_calendar_sync import fastics, timezones
from crm_calendar_sync.errors import CalendarFileError

__all__ = [
    "MODELLED_FIELDS",
    "ParsedEvent",
    "fields_hash",
    "instant_text",
    "occurrence_key",
    "plain_value",
    "read_calendar",
    "read_component",
]

#: The activity fields an event maps to, in a fixed order (hashes, snapshots, merges).
MODELLED_FIELDS = (
    "kind", "subject", "description", "location", "status", "all_day", "starts_at", "ends_at",
    "start_date", "end_date", "due_at", "timezone", "rrule", "exdates", "rdates", "organizer",
    "attendees", "alarms", "ical_uid", "recurrence_id",
)
_SUBJECT_LENGTH = 200
_LOCATION_LENGTH = 500
_NO_SUBJECT = "(no subject)"
_CALL_CATEGORIES = ("call", "phone call", "phone")
_STAMP = re.compile(r"(\d{8})(?:T(\d{6}))?(Z?)")


@attrs.frozen
class ParsedEvent:
    """One VEVENT or VTODO read from a file."""

    uid: str
    recurrence_id: str
    values: dict[str, Any]
    component: str
    hash: str
    #: The modelled fields as JSON (:func:`~crm_calendar_sync.importer.snapshot`), made once.
    plain: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.uid, self.recurrence_id)

    def __repr__(self) -> str:
        return f"<ParsedEvent uid={self.uid!r} recurrence_id={self.recurrence_id!r}>"


def fields_hash(values: dict[str, Any]) -> str:
    """A hash of the modelled fields of *values* (missing ones count as empty)."""
    return _hash_plain([plain_value(values.get(name)) for name in MODELLED_FIELDS])


def _hash_plain(plain: list[Any]) -> str:
    text = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plain_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return instant_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def instant_text(value: dt.date) -> str:
    """An ISO date, or a UTC time as ``2026-01-05T09:00:00Z``."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def occurrence_key(value: dt.date) -> str:
    """The RECURRENCE-ID text of an occurrence starting at *value*."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


# -- the file ----------------------------------------------------------------------------------


def read_calendar(data: bytes | str, *, name: str = "calendar", default_timezone: str | None = None,
                  ) -> tuple[list[ParsedEvent], list[str]]:
    """Read the events and tasks of an iCalendar file.

    :param data: the file's content.
    :param name: how errors name the file.
    :param default_timezone: the zone of floating times when the calendar has no
        ``X-WR-TIMEZONE`` (``None``: UTC).
    :returns: the events (the last of two with one key wins) and one line per component skipped.
    :raises CalendarFileError: when *data* is not an iCalendar file.
    """
    try:  # the lean reader first; icalendar for what it cannot read
        calendars: list[Any] = list(fastics.calendars(data))
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        calendars = []
    if not calendars:
        try:
            calendars = icalendar.Calendar.from_ical(data, multiple=True)
        except ValueError as exc:
            raise CalendarFileError(f"{name} is not an iCalendar file ({exc}); export the calendar as .ics and try again") from None
    if not calendars:
        raise CalendarFileError(f"{name} holds no VCALENDAR; export the calendar as .ics and try again")
    events: dict[tuple[str, str], ParsedEvent] = {}
    skipped: list[str] = []
    for calendar in calendars:
        zone_name = str(calendar.get("X-WR-TIMEZONE") or "").strip() or default_timezone
        if zone_name and timezones.zone(zone_name) is None:
            zone_name = timezones.resolve(zone_name, None)
        for position, component in enumerate(calendar.subcomponents, start=1):  # noqa: B007
            if component.name not in ("VEVENT", "VTODO"):
                continue
            try:
                event = read_component(component, zone_name)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                skipped.append(f"{name}: {component.name} #{position} (UID {str(component.get('UID'))!r}) skipped: {exc}")
                continue
            events[event.key] = event
    return list(events.values()), skipped


def read_component(component: icalendar.cal.Component, zone_name: str | None) -> ParsedEvent:
    """The :class:`ParsedEvent` of one VEVENT or VTODO; floating times are in *zone_name*."""
    text = component.to_ical().decode()
    uid = str(component.get("UID") or "").strip()
    default_zone = timezones.zone(zone_name) if zone_name else None
    values: dict[str, Any] = dict.fromkeys(MODELLED_FIELDS)
    values["kind"] = _kind(component)
    values["subject"] = (_text(component, "SUMMARY") or _NO_SUBJECT)[:_SUBJECT_LENGTH]
    values["description"] = _text(component, "DESCRIPTION")
    location = _text(component, "LOCATION")
    values["location"] = location[:_LOCATION_LENGTH] if location else None
    values["status"] = _status(component)
    start = _when(component, "DTSTART")
    all_day = isinstance(start, dt.date) and not isinstance(start, dt.datetime)
    values["all_day"] = all_day
    _times(component, values, start, default_zone, zone_name)
    values["recurrence_id"] = _recurrence_id(component, all_day, default_zone)
    values["rrule"] = _rrule(component)
    values["exdates"] = _dates(component, "EXDATE", all_day, default_zone)
    values["rdates"] = _dates(component, "RDATE", all_day, default_zone)
    values["organizer"] = _address(component.get("ORGANIZER"))
    attendees = [a for a in (_address(p) for p in _many(component.get("ATTENDEE"))) if a]
    values["attendees"] = attendees or None
    values["alarms"] = _alarms(component, default_zone) or None
    if not uid:  # a stable UID for an event without one, from what it says: importing it again finds it
        uid = "crm-" + fields_hash(values)[:40]
    values["ical_uid"] = uid
    plain = {name: plain_value(values[name]) for name in MODELLED_FIELDS}
    return ParsedEvent(uid, values["recurrence_id"] or "", values, text, _hash_plain(list(plain.values())), plain)


# -- fields ------------------------------------------------------------------------------------


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(component: icalendar.cal.Component, name: str) -> str | None:
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    return text or None


def _kind(component: icalendar.cal.Component) -> str:
    if component.name == "VTODO":
        return "task"
    marked = (_text(component, "X-CRM-KIND") or "").lower()
    if marked in ("meeting", "call"):
        return marked
    categories: list[str] = []
    for prop in _many(component.get("CATEGORIES")):
        categories.extend(str(c).strip().lower() for c in getattr(prop, "cats", [prop]))
    return "call" if any(c in _CALL_CATEGORIES for c in categories) else "meeting"


def _status(component: icalendar.cal.Component) -> str:
    status = (_text(component, "STATUS") or "").upper()
    if status == "CANCELLED":
        return "cancelled"
    if status == "COMPLETED" or component.get("COMPLETED") is not None:
        return "done"
    return "planned"


def _when(component: icalendar.cal.Component, name: str) -> Any:
    prop = component.get(name)
    if prop is None:
        return None
    try:
        return prop.dt
    except (AttributeError, ValueError, TypeError):
        value = _parse_stamp(prop.to_ical().decode(), prop.params.get("TZID"), None)
        if value is None:
            raise ValueError(f"{name} {prop.to_ical().decode()!r} is not a date or a time") from None
        return value


def _aware(value: dt.datetime, default_zone: dt.tzinfo | None) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=default_zone or dt.UTC)


def _times(component: icalendar.cal.Component, values: dict[str, Any], start: Any,
           default_zone: dt.tzinfo | None, zone_name: str | None) -> None:
    end = _when(component, "DTEND")
    due = _when(component, "DUE")
    duration = component.get("DURATION")
    if end is None and start is not None and duration is not None:
        end = start + duration.dt
    if isinstance(start, dt.datetime):
        tzid = component["DTSTART"].params.get("TZID")
        if start.tzinfo is None:
            values["timezone"] = zone_name if default_zone is not None else None
        else:
            values["timezone"] = timezones.resolve(tzid, start.tzinfo, start)
            if values["timezone"] == "UTC":  # shown in the calendar's zone (Google), else no zone
                values["timezone"] = zone_name
        values["starts_at"] = _aware(start, default_zone).astimezone(dt.UTC)
        if isinstance(end, dt.datetime):
            values["ends_at"] = max(_aware(end, default_zone).astimezone(dt.UTC), values["starts_at"])
    elif isinstance(start, dt.date):
        values["start_date"] = start
        last = end - dt.timedelta(days=1) if isinstance(end, dt.date) and not isinstance(end, dt.datetime) else None
        values["end_date"] = last if last is not None and last >= start else start
    if isinstance(due, dt.datetime):
        values["due_at"] = _aware(due, default_zone).astimezone(dt.UTC)
        if values["timezone"] is None and due.tzinfo is not None:
            zone = timezones.resolve(component["DUE"].params.get("TZID"), due.tzinfo, due)
            values["timezone"] = zone if zone != "UTC" else zone_name
    elif isinstance(due, dt.date):
        values["due_at"] = dt.datetime.combine(due, dt.time(), default_zone or dt.UTC).astimezone(dt.UTC)
    if values["timezone"] == "UTC":  # times in UTC: no zone of their own
        values["timezone"] = None


def _recurrence_id(component: icalendar.cal.Component, all_day: bool, default_zone: dt.tzinfo | None) -> str | None:
    value = _when(component, "RECURRENCE-ID")
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if all_day and (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%Y%m%d")  # Exchange: the all-day occurrence of that day
        return occurrence_key(_aware(value, default_zone))
    return occurrence_key(value)


def _rrule(component: icalendar.cal.Component) -> str | None:
    rules = _many(component.get("RRULE"))
    if not rules:
        return None
    text = rules[0].to_ical().decode()
    # Exchange CDO escapes the separators (FREQ=DAILY\;UNTIL=...\;BYDAY=MO\, TU)
    text = text.replace("\\;", ";").replace("\\,", ",").replace(" ", "")
    try:  # in icalendar's order of the parts, as an export writes it
        return icalendar.vRecur.from_ical(text).to_ical().decode() or None
    except ValueError:
        return text or None


def _parse_stamp(text: str, tzid: str | None, default_zone: dt.tzinfo | None) -> dt.date | None:
    match = _STAMP.fullmatch(text.strip())
    if match is None:
        return None
    day, clock, utc = match.groups()
    date = dt.datetime.strptime(day, "%Y%m%d").date()
    if not clock:
        return date  # a DATE written with a stray Z (Google birthdays)
    moment = dt.datetime.combine(date, dt.datetime.strptime(clock, "%H%M%S").time())
    if utc:
        return moment.replace(tzinfo=dt.UTC)
    zone = timezones.zone(timezones.resolve(tzid, None) or "") if tzid else None
    return moment.replace(tzinfo=zone or default_zone or dt.UTC)


def _date_values(prop: Any, default_zone: dt.tzinfo | None) -> Iterable[Any]:
    try:
        return [item.dt for item in prop.dts]
    except (AttributeError, ValueError, TypeError):
        tzid = prop.params.get("TZID") if hasattr(prop, "params") else None
        parts = prop.to_ical().decode().split(",")
        found = [_parse_stamp(part.split("/")[0], tzid, default_zone) for part in parts]
        return [value for value in found if value is not None]


def _dates(component: icalendar.cal.Component, name: str, all_day: bool, default_zone: dt.tzinfo | None) -> list[str] | None:
    found: list[str] = []
    for prop in _many(component.get(name)):
        for value in _date_values(prop, default_zone):
            if isinstance(value, tuple):  # a PERIOD: the occurrence starts at its start
                value = value[0]
            if isinstance(value, dt.datetime):
                if all_day:
                    found.append(value.date().isoformat())
                else:
                    found.append(instant_text(_aware(value, default_zone)))
            elif isinstance(value, dt.date):
                found.append(value.isoformat())
    return sorted(set(found)) or None


def _address(prop: Any) -> dict[str, str] | None:
    if prop is None:
        return None
    address = str(prop).strip()
    if not address:
        return None
    entry: dict[str, str] = {}
    if address.lower().startswith("mailto:"):
        entry["email"] = address[7:].strip().lower()
    else:
        entry["address"] = address
    params = getattr(prop, "params", {})
    for param, key in (("CN", "name"), ("ROLE", "role"), ("PARTSTAT", "status")):
        if params.get(param):
            entry[key] = str(params[param])
    return entry


def _alarms(component: icalendar.cal.Component, default_zone: dt.tzinfo | None) -> list[dict[str, Any]]:
    alarms: list[dict[str, Any]] = []
    for alarm in component.subcomponents:
        if alarm.name != "VALARM" or alarm.get("TRIGGER") is None:
            continue
        trigger = alarm["TRIGGER"]
        entry: dict[str, Any] = {"action": (_text(alarm, "ACTION") or "DISPLAY").upper()}
        when = trigger.dt
        if isinstance(when, dt.timedelta):
            minutes = -when.total_seconds() / 60
            entry["minutes"] = int(minutes) if minutes == int(minutes) else minutes
            if str(trigger.params.get("RELATED", "START")).upper() == "END":
                entry["related"] = "end"
        elif isinstance(when, dt.datetime):
            entry["at"] = instant_text(_aware(when, default_zone))
        else:
            continue
        alarms.append(entry)
    return alarms
