"""``ics_import`` and ``caldav_sync``: the calendar plugin.

``ics_import``: an iCalendar file of N events (default 10,000) imported with the calendar plugin
(``contrib/calendar_sync``, installed) against a hand-written floor.

The file: one VCALENDAR with N VEVENTs in ``Europe/Berlin``, each with an organizer and two
attendees: a tenth are weekly series (a third of them with an EXDATE), a tenth are overrides of
those series (a RECURRENCE-ID each, one per series), a tenth are all-day events, every fifth has
an alarm; the rest are single meetings. crmcore: :func:`crm_calendar_sync.importer.import_calendar`
in a unit of work, committed (parse, time zones, attendees matched with contacts, activities
created with ``create_many`` with hooks and audit, links to the account); then the same file
again, which must create and update nothing. ``rows`` is the number of events of the first
import; target: at least 2,000 events/s on SQLite. The machine may be shared: ``cpu_rows_per_s``
and ``floor_cpu_rows_per_s`` divide by the CPU time of this process instead (on SQLite the
database works in it too; on PostgreSQL the server's CPU time is not counted). Floor: the file read with the plugin's lean
content-line reader (:mod:`crm_calendar_sync.fastics`: the reading no import can skip) and the
same activity and link rows (subject, times, zone, UID, RECURRENCE-ID, rule, attendees,
component) inserted with the driver's ``executemany`` in one transaction, on a second database
made alike.

``caldav_sync``: a Radicale server on 127.0.0.1 (:func:`crm_calendar_sync.testing.start_radicale`)
holding a calendar of N events (default 2,000, made as for ``ics_import``, uploaded at once);
crmcore: the first sync of a CalDAV account (:func:`crm_calendar_sync.sync.sync_account`,
committed: sync report, ``calendar-multiget`` of every item, activities and links made), then
20 items changed on the server and an incremental sync, which must fetch only those 20 (its
requests are counted: the sync report and one multiget). ``rows`` is the number of events of
the first sync. Floor: the same two requests of the first sync made by hand (report and
multigets) and the items read with the lean reader, nothing written.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from common import Result, fresh_url, is_postgres, peak_rss_mb, raw_connection

from crmcore import create_app
from crmcore.app import Crm

ZONE = "Europe/Berlin"


def run(name: str, rows: int, url: str | None, workdir: str) -> Result:
    if name == "caldav_sync":
        return _caldav_sync(rows, url, workdir)
    return _ics_import(rows, url, workdir)


def make_file(events: int) -> bytes:
    """The benchmark's iCalendar file of *events* VEVENTs (see the module docs)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//crmcore//benchmark//EN"]
    start = dt.datetime(2026, 1, 5, 9, 0)
    series: list[int] = []
    for n in range(events):
        kind = n % 10
        when = start + dt.timedelta(days=n % 365, hours=n % 8)
        uid = f"bench-{n}@example.com"
        body = [f"SUMMARY:Meeting {n}", "DTSTAMP:20260101T000000Z",
                "ORGANIZER;CN=Ann Owner:mailto:ann@example.com",
                f"ATTENDEE;CN=Guest {n % 500};PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT:mailto:guest{n % 500}@example.com",
                f"ATTENDEE;CN=Other {n % 300};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:other{n % 300}@example.com"]
        if kind == 1 and series:
            master = series.pop(0)
            first = start + dt.timedelta(days=master % 365, hours=master % 8)
            uid = f"bench-{master}@example.com"
            moved = first + dt.timedelta(weeks=2)
            body += [f"RECURRENCE-ID;TZID={ZONE}:{moved:%Y%m%dT%H%M%S}",
                     f"DTSTART;TZID={ZONE}:{moved + dt.timedelta(hours=1):%Y%m%dT%H%M%S}",
                     f"DTEND;TZID={ZONE}:{moved + dt.timedelta(hours=2):%Y%m%dT%H%M%S}"]
        elif kind == 2:
            body += [f"DTSTART;VALUE=DATE:{when:%Y%m%d}", f"DTEND;VALUE=DATE:{when + dt.timedelta(days=1):%Y%m%d}"]
        else:
            body += [f"DTSTART;TZID={ZONE}:{when:%Y%m%dT%H%M%S}",
                     f"DTEND;TZID={ZONE}:{when + dt.timedelta(hours=1):%Y%m%dT%H%M%S}"]
            if kind == 0:
                series.append(n)
                body.append("RRULE:FREQ=WEEKLY;COUNT=20")
                if n % 3 == 0:
                    body.append(f"EXDATE;TZID={ZONE}:{when + dt.timedelta(weeks=3):%Y%m%dT%H%M%S}")
        lines += ["BEGIN:VEVENT", f"UID:{uid}", *body]
        if n % 5 == 0:
            lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-PT15M", "END:VALARM"]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def _app(database: str) -> Crm:
    app = create_app({"crm": {"database": database, "plugins": ["calendar_sync"]}})
    app.create_schema()
    with app.unit_of_work() as uow:  # attendees the import links by e-mail
        uow.create_many("contact", [{"last_name": f"Guest {n}", "email": f"guest{n}@example.com"} for n in range(500)])
        uow.commit()
    return app


def _ics_import(rows: int, url: str | None, workdir: str) -> Result:
    from crm_calendar_sync.importer import import_calendar

    data = make_file(rows)
    with fresh_url(url, workdir, "ics_import") as database:
        app = _app(database)
        try:
            started, cpu_started = time.perf_counter(), time.process_time()
            with app.unit_of_work() as uow:
                first = import_calendar(uow, data, name="bench.ics")
                uow.commit()
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            again_started = time.perf_counter()
            with app.unit_of_work() as uow:
                again = import_calendar(uow, data, name="bench.ics")
                uow.commit()
            again_seconds = time.perf_counter() - again_started
        finally:
            app.close()
    peak = peak_rss_mb()
    assert first.created == rows and not first.skipped, first.line()
    assert (again.created, again.updated) == (0, 0), again.line()
    with fresh_url(url, workdir, "ics_import_floor") as database:
        app = _app(database)
        try:
            with raw_connection(app) as connection:
                cpu_started = time.process_time()
                floor_seconds = _floor(connection, data, is_postgres(url))
                floor_cpu_seconds = time.process_time() - cpu_started
        finally:
            app.close()
    outcome = Result.make("ics_import", rows, seconds, floor_seconds, peak)
    outcome.update(second_import_seconds=round(again_seconds, 4), second_import_created=again.created,
                   second_import_updated=again.updated, target_rows_per_s=2_000,
                   cpu_seconds=round(cpu_seconds, 4), cpu_rows_per_s=round(rows / cpu_seconds, 1),
                   floor_cpu_rows_per_s=round(rows / floor_cpu_seconds, 1),
                   cpu_ratio_to_floor=round(floor_cpu_seconds / cpu_seconds, 3))
    return outcome


def _floor(connection: Any, data: bytes, postgres: bool) -> float:
    """Read with the lean reader, then insert the activity rows and the link rows by hand."""
    from crm_calendar_sync.fastics import calendars

    p = "%s" if postgres else "?"
    started = time.perf_counter()
    events = [event for calendar in calendars(data) for event in calendar.subcomponents]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp: Any = now if postgres else now.isoformat(" ")
    activities, links = [], []
    for n, event in enumerate(events, start=1):
        begin = event["DTSTART"].dt
        end = event["DTEND"].dt
        rid = event.get("RECURRENCE-ID")
        timed = isinstance(begin, dt.datetime)
        starts = begin.astimezone(dt.UTC).replace(tzinfo=None) if timed else None
        ends = end.astimezone(dt.UTC).replace(tzinfo=None) if timed else None
        rule = event.get("RRULE")
        attendees = [{"email": str(a)[7:].lower(), "name": str(a.params.get("CN"))} for a in event.get("ATTENDEE", [])]
        activities.append((
            n, 1, stamp, stamp, "meeting", str(event["SUMMARY"]), starts, ends, not timed,
            ZONE if timed else None, "planned", str(event["UID"]),
            rid.dt.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") if rid is not None else None,
            None if timed else begin, None if timed else begin, rule.to_ical().decode() if rule else None,
            json.dumps(attendees),
        ))
        links.append((1, str(event["UID"]), activities[-1][12] or "", n, "-", event.to_ical().decode()))
    cursor = connection.cursor()
    if not postgres:
        cursor.execute("BEGIN")
    cursor.executemany(
        "INSERT INTO crm_activity (id, version, created_at, updated_at, kind, subject, starts_at, ends_at, all_day, "
        "timezone, status, calendar_sync_ical_uid, calendar_sync_recurrence_id, calendar_sync_start_date, "
        "calendar_sync_end_date, calendar_sync_rrule, calendar_sync_attendees) VALUES "
        f"({', '.join([p] * 17)})", activities)
    cursor.executemany(
        "INSERT INTO calendar_sync_event (account_id, uid, recurrence_id, activity_id, fields_hash, component) "
        f"VALUES ({', '.join([p] * 6)})", links)
    connection.commit()
    return time.perf_counter() - started


# -- caldav_sync ------------------------------------------------------------------------------------

CHANGED = 20


def _caldav_sync(rows: int, url: str | None, workdir: str) -> Result:
    import requests
    from crm_calendar_sync.dav import DavCollection
    from crm_calendar_sync.fastics import calendars
    from crm_calendar_sync.sync import sync_account
    from crm_calendar_sync.testing import start_radicale

    from crmcore.security import add_user

    data = make_file(rows)
    with start_radicale() as server, fresh_url(url, workdir, "caldav_sync") as database:
        collection = server.calendar("ann", "bench")
        uploaded = requests.put(collection, data=data, auth=("ann", "ann-secret"), timeout=600,
                                headers={"Content-Type": "text/calendar; charset=utf-8"})
        assert uploaded.status_code in (200, 201, 204), uploaded.status_code
        warm = DavCollection(collection, "ann", "ann-secret")  # the server reads its new items once, untimed
        warm.fetch(sorted(warm.listing()))
        app = create_app({"crm": {"database": database, "plugins": ["calendar_sync"]}})
        app.create_schema()
        try:
            with app.unit_of_work() as uow:
                ann = add_user(uow, "ann", email="ann@example.com")
                account = uow.create("calendar_account", name="Bench", kind="caldav", url=collection, username="ann",
                                     user_id=ann.id, owner_id=ann.id)
                uow.commit()
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                first = sync_account(uow, uow.get("calendar_account", account.id), password="ann-secret")
                uow.commit()
            seconds = time.perf_counter() - started
            dav = DavCollection(collection, "ann", "ann-secret")
            listing = dav.listing()
            for href in sorted(listing)[:CHANGED]:
                (item,) = dav.fetch([href])
                status, _ = dav.put(href, item.data.replace("SUMMARY:", "SUMMARY:Changed ", 1), etag=item.etag)
                assert status in (200, 201, 204), status
            started = time.perf_counter()
            with app.unit_of_work() as uow:
                later = sync_account(uow, uow.get("calendar_account", account.id), password="ann-secret")
                uow.commit()
            later_seconds = time.perf_counter() - started
        finally:
            app.close()
        floor_started = time.perf_counter()
        floor = DavCollection(collection, "ann", "ann-secret")
        report = floor.sync(None)
        items = floor.fetch(sorted(report.changed))
        events = sum(len(c.subcomponents) for item in items for c in calendars(item.data or ""))
        floor_seconds = time.perf_counter() - floor_started
    peak = peak_rss_mb()
    assert first.created == rows == events, (first.line(), events)
    assert (later.created, later.updated, later.requests) == (0, CHANGED, 2), later.line()
    outcome = Result.make("caldav_sync", rows, seconds, floor_seconds, peak)
    outcome.update(first_requests=first.requests, incremental_seconds=round(later_seconds, 4),
                   incremental_updated=later.updated, incremental_requests=later.requests)
    return outcome
