"""The Microsoft Graph adapter against a local HTTP server answering Graph's delta queries on
127.0.0.1 (real HTTP): events (single, all-day, a series through its master, an exception),
paging, delta links, ``@removed``, an expired delta link, contacts, Graph ids as aliases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from calendar_support import PLUGINS
from cryptography.fernet import Fernet

from crm_calendar_sync import links
from crm_calendar_sync.credentials import set_password
from crm_calendar_sync.graph import GraphError, event_values, sync_graph

KEY = Fernet.generate_key().decode()
SETTINGS = {"plugins": {"calendar_sync": {"secret_key": KEY}}}
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _when(text: str) -> dict[str, str]:
    return {"dateTime": f"{text}.0000000", "timeZone": "UTC"}


def _person(address: str, name: str, kind: str = "required", response: str = "accepted") -> dict[str, Any]:
    return {"type": kind, "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": name, "address": address}}


REVIEW = {"id": "AAMkAGI2ev1=", "changeKey": "ck1", "iCalUId": "040000008200E00074C5B7101A82E008-ev1",
          "type": "singleInstance", "subject": "Contract review", "bodyPreview": "Bring the draft",
          "start": _when("2026-12-10T09:00:00"), "end": _when("2026-12-10T10:00:00"),
          "originalStartTimeZone": "W. Europe Standard Time", "isAllDay": False, "isCancelled": False,
          "location": {"displayName": "Room 4"}, "isReminderOn": True, "reminderMinutesBeforeStart": 15,
          "organizer": {"emailAddress": {"name": "Ann", "address": "ann@example.com"}},
          "attendees": [_person("ada@engines.example", "Ada"), _person("bob@example.com", "Bob", "optional", "notResponded")]}
HOLIDAY = {"id": "AAMkAGI2ev2=", "iCalUId": "040000008200E00074C5B7101A82E008-ev2", "type": "singleInstance",
           "subject": "Office closed", "start": _when("2026-12-24T00:00:00"), "end": _when("2026-12-26T00:00:00"),
           "isAllDay": True}
SERIES = {"id": "AAMkAGI2m1=", "iCalUId": "040000008200E00074C5B7101A82E008-s1", "type": "seriesMaster",
          "subject": "Weekly sync", "start": _when("2027-01-04T09:00:00"), "end": _when("2027-01-04T09:30:00"),
          "originalStartTimeZone": "UTC", "isAllDay": False,
          "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"], "firstDayOfWeek": "sunday"},
                         "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 10}}}


def _occurrence(number: int) -> dict[str, Any]:
    day = dt.date(2027, 1, 4) + dt.timedelta(weeks=number)
    return {"id": f"AAMkAGI2o{number}=", "iCalUId": SERIES["iCalUId"], "type": "occurrence", "seriesMasterId": SERIES["id"],
            "subject": "Weekly sync", "start": _when(f"{day}T09:00:00"), "end": _when(f"{day}T09:30:00")}


MOVED = {"id": "AAMkAGI2x1=", "iCalUId": SERIES["iCalUId"], "type": "exception", "seriesMasterId": SERIES["id"],
         "originalStart": "2027-01-11T09:00:00Z", "subject": "Weekly sync (moved)",
         "start": _when("2027-01-11T10:00:00"), "end": _when("2027-01-11T10:30:00"), "isAllDay": False}


@pytest.fixture
def setup(crm_factory: Any, make_user: Any, graph_server: Any) -> tuple[Any, int, Any]:
    for item in (REVIEW, HOLIDAY, SERIES, _occurrence(0), _occurrence(2), MOVED):
        graph_server.put_event(item)
    graph_server.put_contact({"id": "c1", "changeKey": "k1", "givenName": "Ada", "surname": "Lovelace",
                              "emailAddresses": [{"address": "ada@engines.example", "name": "Ada"}],
                              "businessPhones": ["+44 20 1234"], "companyName": "Analytical Engines"})
    graph_server.put_contact({"id": "c2", "givenName": "Charles", "surname": "Babbage",
                              "emailAddresses": [{"address": "charles@engines.example"}]})
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS)
    ann = make_user(crm, "ann", email="ann@example.com")
    with crm.unit_of_work() as uow:
        uow.create("contact", last_name="Babbage", email="CHARLES@engines.example")  # known here: linked, not duplicated
        account = uow.create("calendar_account", name="Outlook", kind="graph", url=graph_server.url,
                             user_id=ann.user_id, owner_id=ann.user_id)
        set_password(uow, account, graph_server.token)
        uow.commit()
    return crm, int(account.id), graph_server


def _sync(crm: Any, account: int) -> Any:
    with crm.unit_of_work() as uow:
        summary = sync_graph(uow, uow.get("calendar_account", account), now=NOW)
        uow.commit()
    return summary


def _activities(crm: Any) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        return {r.subject: r for r in uow.query("activity").order_by("id").all()}


def test_a_first_sync_reads_every_page_and_the_series_masters(setup: Any) -> None:
    crm, account, graph = setup
    first = _sync(crm, account)
    assert (first.events_created, first.contacts_created, first.full) == (4, 1, True)
    assert first.requests == 3 + 1 + 1  # three pages of the calendar view, one master, one page of contacts
    assert graph.calls.count(f"/v1.0/me/events/{SERIES['id']}") == 1
    found = _activities(crm)
    assert set(found) == {"Contract review", "Office closed", "Weekly sync", "Weekly sync (moved)"}
    review = found["Contract review"]
    assert (review.starts_at, review.timezone, review.location) == (dt.datetime(2026, 12, 10, 9, tzinfo=dt.UTC),
                                                                    "Europe/Berlin", "Room 4")
    assert [(a["email"], a["role"], a["status"]) for a in review.attendees] == [
        ("ada@engines.example", "REQ-PARTICIPANT", "ACCEPTED"), ("bob@example.com", "OPT-PARTICIPANT", "NEEDS-ACTION")]
    assert review.alarms == [{"action": "DISPLAY", "minutes": 15}]
    holiday = found["Office closed"]
    assert (holiday.all_day, holiday.start_date, holiday.end_date, holiday.starts_at) == (
        True, dt.date(2026, 12, 24), dt.date(2026, 12, 25), None)
    series, moved = found["Weekly sync"], found["Weekly sync (moved)"]
    assert series.rrule == "FREQ=WEEKLY;BYDAY=MO;COUNT=10" and series.recurrence_id is None
    assert (moved.series_id, moved.recurrence_id) == (series.id, "20270111T090000Z")
    with crm.unit_of_work() as uow:
        people = {p.last_name: p for p in uow.query("contact").all()}
        aliases = uow.raw("calendar_sync").execute(sa.select(links.ALIAS.c.remote_id).where(
            links.ALIAS.c.provider == "graph")).scalars().all()
    assert len(people) == 2 and people["Babbage"].id == 1  # the contact known by e-mail, linked
    assert people["Lovelace"].phone == "+44 20 1234"
    assert sorted(aliases) == sorted([REVIEW["id"], HOLIDAY["id"], SERIES["id"], MOVED["id"]])


def test_the_next_sync_reads_only_the_changes_and_removals(setup: Any) -> None:
    crm, account, graph = setup
    _sync(crm, account)
    quiet = _sync(crm, account)
    assert (quiet.events_created, quiet.events_updated, quiet.contacts_created, quiet.requests) == (0, 0, 0, 2)
    graph.put_event({**REVIEW, "subject": "Contract review (final)", "changeKey": "ck2"})
    graph.remove_event(HOLIDAY["id"])
    graph.put_contact({"id": "c1", "givenName": "Ada", "surname": "Lovelace", "jobTitle": "Analyst",
                       "emailAddresses": [{"address": "ada@engines.example"}]})
    graph.remove_contact("c2")
    later = _sync(crm, account)
    assert (later.events_updated, later.events_deleted, later.contacts_updated, later.contacts_deleted) == (1, 1, 1, 1)
    assert later.requests == 2 and not later.full
    assert set(_activities(crm)) == {"Contract review (final)", "Weekly sync", "Weekly sync (moved)"}
    with crm.unit_of_work() as uow:
        (ada,) = uow.query("contact").all()
    assert ada.title == "Analyst"


def test_an_expired_delta_link_reads_everything_again_without_duplicates(setup: Any) -> None:
    crm, account, graph = setup
    _sync(crm, account)
    graph.expire_tokens()
    again = _sync(crm, account)
    assert again.full and (again.events_created, again.events_updated, again.contacts_created) == (0, 0, 0)
    assert len(_activities(crm)) == 4


def test_a_refused_token_is_an_error_naming_the_status(setup: Any) -> None:
    crm, account, graph = setup
    with crm.unit_of_work() as uow, pytest.raises(GraphError, match="answered 401"):
        sync_graph(uow, uow.get("calendar_account", account), token="wrong", now=NOW)


def test_event_values_map_a_monthly_relative_recurrence() -> None:
    values = event_values({**SERIES, "recurrence": {
        "pattern": {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["tuesday"], "index": "second"},
        "range": {"type": "endDate", "startDate": "2027-01-12", "endDate": "2027-12-31"}}})
    assert values["rrule"] == "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU;UNTIL=20271231T235959Z"


def test_the_worker_syncs_a_graph_account(setup: Any) -> None:
    from crmcore.jobs import run_worker

    crm, account, graph = setup
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    assert run_worker(crm, once=True, now=now).done == 1
    assert len(_activities(crm)) == 4
    with crm.unit_of_work() as uow:
        (job,) = uow.query("job").where(kind="calendar_sync.sync", status="queued").all()
    assert job.run_at == now + dt.timedelta(minutes=15)
