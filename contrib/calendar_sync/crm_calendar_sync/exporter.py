"""Exporting activities as an iCalendar file.

:func:`export_calendar` writes the meetings, calls and tasks of a user (those they own and
those linked to their calendar accounts), optionally only those with an occurrence in a window,
one VEVENT or VTODO per activity: a series once with its RRULE, EXDATE and RDATE, each override
with its RECURRENCE-ID. An event that came from a file or a server is written from the
component received, with only the fields the plugin models rewritten, and the descriptive ones
(summary, description, location, status, attendees, alarms) only when they changed since: its
other properties, its attendees' parameters and its alarms stay as they were. The times are
always written from the activity (in its IANA zone, with the VTIMEZONE definitions the file
needs; all-day events as dates). Importing the file gives back the same events.

An activity without a UID gets one (kept on the activity) the first time it is exported.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import icalendar
import sqlalchemy as sa
from crmcore.records import Record

from crm_calendar_sync import links, timezones
from crm_calendar_sync.entities import CALENDAR_KINDS
from crm_calendar_sync.parse import plain_value
from crm_calendar_sync.recurrence import expand

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["PRODID", "calendar_activities", "component_for", "export_calendar", "participant_addresses"]

PRODID = "-//crmcore//calendar_sync//EN"
_STATUS = {"cancelled": "CANCELLED", "done": "COMPLETED"}
_TIMES = ("DTSTART", "DTEND", "DURATION", "DUE", "RECURRENCE-ID", "RRULE", "EXDATE", "RDATE")


def calendar_activities(uow: UnitOfWork, user: Record | None) -> list[Record]:
    """The calendar activities of *user* the actor may read (owned, or linked to one of the
    user's calendar accounts), or every one for ``None``; in id order."""
    kinds = ("kind", "in", list(CALENDAR_KINDS))
    if user is None:
        return uow.query("activity").where(kinds).order_by("id").all()
    owned = uow.query("activity").where(kinds, owner_id=user.id).order_by("id").all()
    accounts = [a.id for a in uow.query("calendar_account").where(user_id=user.id).all()]
    linked_ids: set[int] = set()
    if accounts:
        raw = uow.raw(links.PLUGIN_NAME)
        rows = raw.execute(sa.select(links.EVENT.c.activity_id).where(links.EVENT.c.account_id.in_(accounts)))
        linked_ids = {row.activity_id for row in rows} - {r.id for r in owned}
    linked = [r for r in uow.get_many("activity", linked_ids) if r.get("kind") in CALENDAR_KINDS]
    return sorted([*owned, *linked], key=lambda r: r.id)


def _in_window(records: Sequence[Record], window: tuple[dt.date, dt.date]) -> list[Record]:
    from crm_calendar_sync.recurrence import _bounds

    start, end = _bounds(window)
    kept = {r.id for r in records if expand(r.values, start, end)}
    # an override goes with its series, so that the file says the whole truth of the series
    kept |= {r.id for r in records if r.get("series_id") in kept}
    return [r for r in records if r.id in kept]


def _give_uids(uow: UnitOfWork, records: list[Record]) -> list[Record]:
    missing = [(r, {"ical_uid": f"{uuid.uuid4()}@crmcore"}) for r in records if not r.get("ical_uid")]
    if not missing:
        return records
    given = {r.id: r for r in uow.update_many("activity", missing)}
    return [given.get(r.id, r) for r in records]


def participant_addresses(uow: UnitOfWork, records: Sequence[Record]) -> dict[tuple[str, int], dict[str, str]]:
    """E-mail and name of the users and contacts listed as participants: two queries."""
    wanted: dict[str, set[int]] = {"user_id": set(), "contact_id": set()}
    for record in records:
        for entry in record.get("participants") or ():
            for key, value in entry.items():
                wanted.setdefault(key, set()).add(value)
    found: dict[tuple[str, int], dict[str, str]] = {}
    for user in uow.get_many("user", wanted["user_id"]):
        if user.get("email"):
            found[("user_id", user.id)] = {"email": user.get("email").lower(), "name": user.get("full_name") or user.get("username")}
    for contact in uow.get_many("contact", wanted["contact_id"]):
        if contact.get("email"):
            name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
            found[("contact_id", contact.id)] = {"email": contact.get("email").lower(), "name": name}
    return found


def export_calendar(uow: UnitOfWork, *, user: Record | None = None, window: tuple[dt.date, dt.date] | None = None,
                    records: Sequence[Record] | None = None) -> bytes:
    """The iCalendar file of *user*'s calendar activities (every one for ``None``), or of
    *records*; with *window*, only those with an occurrence from its first to its last day.

    :returns: the file's bytes.
    """
    chosen = list(records) if records is not None else calendar_activities(uow, user)
    if window is not None:
        chosen = _in_window(chosen, window)
    chosen = _give_uids(uow, chosen)
    raw = uow.raw(links.PLUGIN_NAME)
    by_activity = links.links_of_activities(raw, [r.id for r in chosen])
    mine: set[int] = set()
    if user is not None:
        mine = {a.id for a in uow.query("calendar_account").where(user_id=user.id).all()}
    people = participant_addresses(uow, chosen)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    for record in chosen:
        found = by_activity.get(record.id, [])
        link = next((k for k in found if k.account_id in mine), found[0] if found else None)
        calendar.add_component(component_for(record, link, people))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _changed(values: Mapping[str, Any], snapshot: Mapping[str, Any] | None, *names: str) -> bool:
    return snapshot is None or any(plain_value(values.get(n)) != snapshot.get(n) for n in names)


def component_for(record: Record, link: links.EventLink | None,
                  people: Mapping[tuple[str, int], dict[str, str]] | None = None) -> icalendar.cal.Component:
    """The VEVENT (VTODO for a task) of *record*: the component of *link* with the modelled
    fields written over it where they changed, or a new one."""
    values = record.values
    name = "VTODO" if values["kind"] == "task" else "VEVENT"
    base = icalendar.Component.from_ical(link.component) if link is not None and link.component else None
    snapshot = link.snapshot if base is not None and link is not None else None
    if base is None or base.name != name:
        base, snapshot = (icalendar.Todo() if name == "VTODO" else icalendar.Event()), None
    component = base
    for prop in ("UID", *_TIMES):
        component.pop(prop, None)
    component.add("UID", values["ical_uid"])
    if "DTSTAMP" not in component:
        component.add("DTSTAMP", dt.datetime.now(dt.UTC).replace(microsecond=0))
    _write_times(component, values)
    if _changed(values, snapshot, "subject"):
        _replace(component, "SUMMARY", values["subject"])
    if _changed(values, snapshot, "description"):
        _replace(component, "DESCRIPTION", values.get("description"))
    if _changed(values, snapshot, "location"):
        _replace(component, "LOCATION", values.get("location"))
    if _changed(values, snapshot, "status"):
        _replace(component, "STATUS", _STATUS.get(values.get("status") or "", "CONFIRMED" if name == "VEVENT" else "NEEDS-ACTION"))
    if name == "VEVENT" and _changed(values, snapshot, "kind"):
        _replace(component, "X-CRM-KIND", values["kind"])
    _write_people(component, values, snapshot, people or {})
    if _changed(values, snapshot, "alarms"):
        component.subcomponents = [c for c in component.subcomponents if c.name != "VALARM"]
        for alarm in values.get("alarms") or ():
            component.add_component(_alarm(alarm, values))
    return component


def _replace(component: icalendar.cal.Component, name: str, value: Any) -> None:
    component.pop(name, None)
    if value not in (None, ""):
        component.add(name, value)


def _zoned(moment: dt.datetime, zone_name: str | None) -> dt.datetime:
    zone = timezones.zone(zone_name) if zone_name and zone_name != "UTC" else None
    return moment.astimezone(zone) if zone is not None else moment.astimezone(dt.UTC)


def _stamp(text: str, values: Mapping[str, Any]) -> dt.date:
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    return _zoned(dt.datetime.fromisoformat(text.replace("Z", "+00:00")), values.get("timezone"))


def _write_times(component: icalendar.cal.Component, values: Mapping[str, Any]) -> None:
    zone = values.get("timezone")
    if values.get("all_day") and values.get("start_date") is not None:
        component.add("DTSTART", values["start_date"])
        if component.name == "VEVENT":
            component.add("DTEND", (values.get("end_date") or values["start_date"]) + dt.timedelta(days=1))
    elif values.get("starts_at") is not None:
        component.add("DTSTART", _zoned(values["starts_at"], zone))
        if values.get("ends_at") is not None and component.name == "VEVENT":
            component.add("DTEND", _zoned(values["ends_at"], zone))
    if values.get("due_at") is not None and component.name == "VTODO":
        component.add("DUE", _zoned(values["due_at"], zone))
    recurrence_id = values.get("recurrence_id")
    if recurrence_id:
        if len(recurrence_id) == 8:
            component.add("RECURRENCE-ID", dt.datetime.strptime(recurrence_id, "%Y%m%d").date())
        else:
            component.add("RECURRENCE-ID", dt.datetime.strptime(recurrence_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC))
    if values.get("rrule"):
        component.add("RRULE", icalendar.vRecur.from_ical(values["rrule"]))
    for prop in ("exdates", "rdates"):
        for text in values.get(prop) or ():
            component.add(prop[:-1].upper(), _stamp(text, values))


def _address(entry: Mapping[str, str], name: str) -> icalendar.vCalAddress:
    address = icalendar.vCalAddress(f"mailto:{entry['email']}" if entry.get("email") else entry.get("address", ""))
    for key, param in (("name", "CN"), ("role", "ROLE"), ("status", "PARTSTAT")):
        if entry.get(key) and (name == "ATTENDEE" or key == "name"):
            address.params[param] = entry[key]
    return address


def _write_people(component: icalendar.cal.Component, values: Mapping[str, Any], snapshot: Mapping[str, Any] | None,
                  people: Mapping[tuple[str, int], dict[str, str]]) -> None:
    attendees = list(values.get("attendees") or ())
    listed = {a.get("email") for a in attendees} | {(values.get("organizer") or {}).get("email")}
    extra = []
    for entry in values.get("participants") or ():
        person = people.get(next(iter(entry.items())))
        if person is not None and person["email"] not in listed:
            extra.append({**person, "role": "REQ-PARTICIPANT"})
            listed.add(person["email"])
    if not extra and not _changed(values, snapshot, "organizer", "attendees"):
        return  # as received: every parameter of every attendee kept
    component.pop("ORGANIZER", None)
    component.pop("ATTENDEE", None)
    if values.get("organizer"):
        component.add("ORGANIZER", _address(values["organizer"], "ORGANIZER"))
    for entry in [*attendees, *extra]:
        component.add("ATTENDEE", _address(entry, "ATTENDEE"))


def _alarm(alarm: Mapping[str, Any], values: Mapping[str, Any]) -> icalendar.Alarm:
    made = icalendar.Alarm()
    action = alarm.get("action") or "DISPLAY"
    made.add("ACTION", action)
    if "at" in alarm:
        made.add("TRIGGER", dt.datetime.fromisoformat(alarm["at"].replace("Z", "+00:00")))
    else:
        made.add("TRIGGER", -dt.timedelta(minutes=alarm.get("minutes", 0)),
                 parameters={"RELATED": "END"} if alarm.get("related") == "end" else None)
    if action in ("DISPLAY", "EMAIL"):
        made.add("DESCRIPTION", values.get("subject") or "Reminder")
    if action == "EMAIL":
        made.add("SUMMARY", values.get("subject") or "Reminder")
    return made
