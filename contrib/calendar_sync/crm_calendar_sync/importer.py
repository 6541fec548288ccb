"""Importing iCalendar events as activities, set-based and idempotent.

An event is keyed by (calendar account, UID, RECURRENCE-ID). :func:`import_calendar` reads a
file into the user's file account (one per user, made on first use) and :func:`apply_events`
writes the events of any source into an account:

- the links of the account's known events are read for all UIDs at once; an event without a
  link is matched, before anything is created, with a readable activity carrying the same UID
  and RECURRENCE-ID (the same meeting imported by another invitee, or exported from here), so a
  meeting is one activity however many of its attendees bring it in;
- new events are created with ``create_many`` (series and single events first, then the
  occurrences that override them, pointing at their series); known ones are updated with
  ``update_many`` in the fields that differ, and not at all when nothing did;
- attendees and the organizer are matched by e-mail with users, then contacts
  (``find_many``) and listed in ``participants``; every attendee stays in ``attendees``;
- the alarms of the user's events become reminders of the next occurrence to come (for that
  user, never for attendees); a reminder already scheduled is not made twice.

Nothing is sent to anybody: importing is a write to the database only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.actors import Actor
from crmcore.errors import NotFoundError
from crmcore.records import Record

from crm_calendar_sync import links, timezones
from crm_calendar_sync.parse import MODELLED_FIELDS, ParsedEvent, plain_value, read_calendar
from crm_calendar_sync.recurrence import expand

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = [
    "FILE_ACCOUNT_NAME", "ImportSummary", "apply_events", "file_account", "import_calendar", "resolve_user", "snapshot",
]

FILE_ACCOUNT_NAME = "Imported calendars"
#: How far ahead an alarm of a series looks for the next occurrence to remind of.
REMINDER_HORIZON = dt.timedelta(days=366)


@attrs.frozen
class ImportSummary:
    """What an import did."""

    events: int
    created: int
    updated: int
    unchanged: int
    reminders: int
    skipped: tuple[str, ...] = ()
    activity_ids: tuple[int, ...] = ()

    def line(self) -> str:
        return (f"{self.events} events: {self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.reminders} reminders, {len(self.skipped)} skipped")


def resolve_user(uow: UnitOfWork, user: Record | Actor | int | str | None) -> Record | None:
    """The user record meant by *user* (a record, an actor, an id or a username); ``None``
    means the acting user, and nobody for the system actor."""
    if user is None:
        user = uow.actor if uow.actor.user_id is not None else None
        if user is None:
            return None
    if isinstance(user, Record):
        return user
    if isinstance(user, Actor):
        user = user.user_id
    if isinstance(user, str) and not user.isdigit():
        found = uow.find_many("user", "username", [user])
        if not found:
            raise NotFoundError(f"no user {user!r}; give the username of an existing user (crm list user)")
        return found[0]
    return uow.get("user", int(user))  # type: ignore[arg-type]


def file_account(uow: UnitOfWork, user: Record | None) -> Record:
    """The account iCalendar files of *user* (``None``: of the deployment) are imported into,
    made on first use."""
    user_id = user.id if user is not None else None
    query = uow.query("calendar_account").where(kind="file")
    query = query.where(user_id=user_id) if user_id is not None else query.where(("user_id", "is null"))
    found = query.order_by("id").first()
    if found is not None:
        return found
    return uow.create("calendar_account", name=FILE_ACCOUNT_NAME, kind="file", user_id=user_id, owner_id=user_id)


def import_calendar(uow: UnitOfWork, source: bytes | str | Path, *, user: Record | Actor | int | str | None = None,
                    name: str | None = None, now: dt.datetime | None = None) -> ImportSummary:
    """Import the events and tasks of an iCalendar file into *user*'s file account.

    :param source: the file's content (bytes or text) or its path.
    :param user: whose calendar it is (a record, an actor, an id or a username); default the
        acting user. The user owns the activities created and gets the reminders of alarms.
    :param now: the time reminders are compared with (default: the clock).
    :returns: what was created, updated and left unchanged.
    :raises CalendarFileError: when the file is not iCalendar.
    """
    if isinstance(source, Path):
        name = name or source.name
        source = source.read_bytes()
    owner = resolve_user(uow, user)
    zone = (owner.get("timezone") if owner is not None else None) or getattr(uow.crm.registry.timezone, "key", None)
    with _collector_paused():
        events, skipped = read_calendar(source, name=name or "calendar", default_timezone=zone)
        account = file_account(uow, owner)
        summary = apply_events(uow, account.id, events, owner=owner, now=now)
    return attrs.evolve(summary, skipped=tuple(skipped))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a file is read and written.

    An import makes a great many small objects that live until its end (properties, values,
    rows); none of them form cycles, so reference counting frees them, but each of the
    collector's full passes walks all of them again: about a quarter of the CPU time of a
    large import. The collector is switched back on (if it was on) when the block ends, even
    on an error.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _participants(uow: UnitOfWork, events: Sequence[ParsedEvent]) -> dict[str, dict[str, int]]:
    """``{e-mail: {"user_id": id} or {"contact_id": id}}`` for the attendees and organizers
    known as users (first) or contacts: two queries per 500 addresses."""
    emails = {entry["email"] for event in events
              for entry in [*(event.values["attendees"] or ()), event.values["organizer"] or {}] if entry.get("email")}
    if not emails:
        return {}
    found: dict[str, dict[str, int]] = {}
    for contact in uow.find_many("contact", "email", emails, ignore_case=True, fields=("email",)):
        found.setdefault(str(contact.get("email")).lower(), {"contact_id": contact.id})
    for user in uow.find_many("user", "email", emails, ignore_case=True, fields=("email",)):
        found[str(user.get("email")).lower()] = {"user_id": user.id}
    return found


def _participant_list(values: Mapping[str, Any], known: Mapping[str, dict[str, int]]) -> list[dict[str, int]] | None:
    listed: list[dict[str, int]] = []
    for entry in [values["organizer"] or {}, *(values["attendees"] or ())]:
        match = known.get(entry.get("email", ""))
        if match is not None and match not in listed:
            listed.append(match)
    return listed or None


def apply_events(uow: UnitOfWork, account_id: int, events: Sequence[ParsedEvent], *, owner: Record | None = None,
                 now: dt.datetime | None = None) -> ImportSummary:
    """Write *events* into calendar account *account_id*: create the new ones, update the
    changed ones, link each to its activity; set-based (a few statements per 500 events).

    :param owner: the user owning the activities created and reminded of their alarms.
    :returns: the counts, and the ids of the activities the events are.
    """
    raw = uow.raw(links.PLUGIN_NAME)
    known_links = links.read_links(raw, account_id, {event.uid for event in events})
    linked = {record.id: record for record in uow.get_many("activity", {link.activity_id for link in known_links.values()})}
    unlinked = [event for event in events if known_links.get(event.key) is None
                or known_links[event.key].activity_id not in linked]
    by_uid: dict[tuple[str, str], Record] = {}
    if unlinked:  # the same meeting already here (another invitee's import, an export)
        for record in uow.find_many("activity", "ical_uid", {event.uid for event in unlinked}):
            by_uid.setdefault((record.get("ical_uid"), record.get("recurrence_id") or ""), record)
    people = _participants(uow, events)
    current: dict[tuple[str, str], Record] = {}
    for event in events:
        link = known_links.get(event.key)
        if link is not None and link.activity_id in linked:
            current[event.key] = linked[link.activity_id]
        elif event.key in by_uid:
            current[event.key] = by_uid[event.key]
    wanted = {event.key: {**event.values, "participants": _participant_list(event.values, people)} for event in events}
    changes: list[tuple[Record, dict[str, Any]]] = []
    for event in events:
        record = current.get(event.key)
        if record is not None:
            diff = {name: value for name, value in wanted[event.key].items() if record.get(name) != value}
            if diff:
                changes.append((record, diff))
    updated = uow.update_many("activity", changes) if changes else []
    for record in updated:
        current[(record.get("ical_uid"), record.get("recurrence_id") or "")] = record
    owner_id = owner.id if owner is not None else None
    fresh = [event for event in events if event.key not in current]
    masters = [event for event in fresh if not event.recurrence_id]
    made = uow.create_many("activity", [{**wanted[e.key], "owner_id": owner_id} for e in masters]) if masters else []
    current.update({event.key: record for event, record in zip(masters, made, strict=True)})
    overrides = [event for event in fresh if event.recurrence_id]
    if overrides:
        series = {key[0]: record.id for key, record in current.items() if not key[1]}
        rows = [{**wanted[e.key], "owner_id": owner_id, "series_id": series.get(e.uid)} for e in overrides]
        made_overrides = uow.create_many("activity", rows, known={"activity": set(series.values())})
        current.update({event.key: record for event, record in zip(overrides, made_overrides, strict=True)})
        made = [*made, *made_overrides]
    _write_links(raw, account_id, events, known_links, current)
    reminders = _schedule_alarms(uow, owner, [current[event.key] for event in events if event.values["alarms"]], now)
    return ImportSummary(events=len(events), created=len(made), updated=len(updated),
                         unchanged=len(events) - len(made) - len(updated), reminders=reminders,
                         activity_ids=tuple(current[event.key].id for event in events))


def snapshot(values: Mapping[str, Any]) -> dict[str, Any]:
    """The modelled fields of *values* as JSON (the base of a later three-way merge)."""
    return {name: plain_value(values.get(name)) for name in MODELLED_FIELDS}


def _write_links(raw: Any, account_id: int, events: Iterable[ParsedEvent],
                 known: Mapping[tuple[str, str], links.EventLink], current: Mapping[tuple[str, str], Record]) -> None:
    new_rows, changed_rows = [], []
    for event in events:
        row = {"account_id": account_id, "uid": event.uid, "recurrence_id": event.recurrence_id,
               "activity_id": current[event.key].id, "fields_hash": event.hash,
               "snapshot": event.plain if event.plain is not None else snapshot(event.values),
               "component": event.component}
        link = known.get(event.key)
        if link is None:
            new_rows.append(row)
        elif (link.activity_id, link.fields_hash, link.component) != (row["activity_id"], event.hash, event.component):
            changed_rows.append({**row, "id": link.id})
    links.insert_links(raw, new_rows)
    links.update_links(raw, changed_rows)


def _alarm_times(record: Record, now: dt.datetime, zone: dt.tzinfo) -> list[tuple[dt.datetime, str]]:
    """``(remind_at, message)`` of the alarms of *record* still to come."""
    values = record.values
    upcoming = expand(values, now - dt.timedelta(days=7), now + REMINDER_HORIZON)
    times: list[tuple[dt.datetime, str]] = []
    for alarm in values.get("alarms") or ():
        if "at" in alarm:
            moments = [dt.datetime.fromisoformat(alarm["at"].replace("Z", "+00:00"))]
        else:
            offset = dt.timedelta(minutes=alarm.get("minutes", 0))
            moments = []
            for start in upcoming:
                begin = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time(), zone)
                if alarm.get("related") == "end":
                    begin += _length(values, begin)
                moments.append(begin - offset)
        later = sorted(m for m in moments if m > now)
        if later:
            times.append((later[0], values.get("subject") or ""))
    return times


def _length(values: Mapping[str, Any], begin: dt.datetime) -> dt.timedelta:
    if values.get("starts_at") is not None and values.get("ends_at") is not None:
        return values["ends_at"] - values["starts_at"]
    if values.get("start_date") is not None:
        return dt.timedelta(days=((values.get("end_date") or values["start_date"]) - values["start_date"]).days + 1)
    return dt.timedelta(0)


def _schedule_alarms(uow: UnitOfWork, owner: Record | None, records: Sequence[Record], now: dt.datetime | None) -> int:
    """Reminders for *owner* of the next occurrence of each alarm: one read of the reminders
    already there and one insert for the new ones."""
    if owner is None or not records:
        return 0
    moment = now or dt.datetime.now(dt.UTC)
    zone = timezones.zone(owner.get("timezone") or "UTC") or dt.UTC
    wanted = {(record.id, at): message for record in records for at, message in _alarm_times(record, moment, zone)}
    if not wanted:
        return 0
    there = {(r.get("activity_id"), r.get("remind_at")) for r in uow.find_many("reminder", "activity_id", {a for a, _ in wanted})
             if r.get("user_id") == owner.id and r.get("status") != "dismissed"}
    rows = [{"activity_id": activity, "user_id": owner.id, "remind_at": at, "message": message[:500]}
            for (activity, at), message in sorted(wanted.items()) if (activity, at) not in there]
    if rows:
        uow.create_many("reminder", rows)
    return len(rows)
