"""Two-way CalDAV sync against a real Radicale server: round trips both ways, new remote events
arriving, deletions both ways, field-level merges and listed conflicts, the precondition
failure path, an invalid sync token, no scheduling, attendees and unknown properties kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from calendar_support import PLUGINS, activities, sample
from cryptography.fernet import Fernet

from crm_calendar_sync import links
from crm_calendar_sync.credentials import set_password
from crm_calendar_sync.dav import DavCollection
from crm_calendar_sync.parse import MODELLED_FIELDS, plain_value
from crm_calendar_sync.sync import SyncSummary, sync_account

KEY = Fernet.generate_key().decode()
SETTINGS = {"plugins": {"calendar_sync": {"secret_key": KEY}}}


def _app(crm_factory: Any, make_user: Any) -> tuple[Any, Any]:
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS)
    ann = make_user(crm, "ann", email="ann@example.com")
    return crm, ann


def _account(crm: Any, ann: Any, url: str) -> int:
    with crm.unit_of_work() as uow:
        made = uow.create("calendar_account", name="Work", kind="caldav", url=url, username="ann",
                          user_id=ann.user_id, owner_id=ann.user_id)
        set_password(uow, made, "ann-secret")
        uow.commit()
    return int(made.id)


def _sync(crm: Any, account_id: int) -> SyncSummary:
    with crm.unit_of_work() as uow:
        summary = sync_account(uow, uow.get("calendar_account", account_id))
        uow.commit()
    assert summary.skipped == ()
    return summary


def _events(crm: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.ical_uid, r.recurrence_id or ""): {n: plain_value(r.get(n)) for n in MODELLED_FIELDS} for r in activities(crm)}


def _put(dav: DavCollection, uid: str, data: bytes | str) -> str | None:
    status, etag = dav.put(dav.new_href(uid), data if isinstance(data, str) else data.decode(), etag=None)
    assert status == 201
    return etag


def _ann_activities(crm: Any, ann: Any) -> None:
    with crm.unit_of_work() as uow:
        series = uow.create("activity", kind="meeting", subject="Weekly review", owner_id=ann.user_id,
                            starts_at=dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC), ends_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC),
                            timezone="Europe/Paris", rrule="FREQ=WEEKLY;COUNT=6", exdates=["2026-03-16T08:00:00Z"],
                            attendees=[{"email": "bob@example.com", "name": "Bob", "role": "REQ-PARTICIPANT", "status": "ACCEPTED"}],
                            organizer={"email": "ann@example.com", "name": "Ann"}, alarms=[{"action": "DISPLAY", "minutes": 10}])
        uow.create("activity", kind="meeting", subject="Weekly review (moved)", owner_id=ann.user_id,
                   ical_uid=series.ical_uid, recurrence_id="20260309T080000Z", series_id=series.id,
                   starts_at=dt.datetime(2026, 3, 10, 8, tzinfo=dt.UTC), ends_at=dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC),
                   timezone="Europe/Paris")
        uow.create("activity", kind="meeting", subject="Offsite", owner_id=ann.user_id, all_day=True,
                   start_date=dt.date(2026, 3, 5), end_date=dt.date(2026, 3, 6))
        uow.create("activity", kind="call", subject="Call Ada", owner_id=ann.user_id,
                   starts_at=dt.datetime(2026, 3, 3, 14, tzinfo=dt.UTC), ends_at=dt.datetime(2026, 3, 3, 14, 30, tzinfo=dt.UTC))
        uow.commit()


def test_crm_to_caldav_to_crm_leaves_the_same_events(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    source, ann = _app(crm_factory, make_user)
    _ann_activities(source, ann)
    first = _sync(source, _account(source, ann, url))
    assert (first.written, first.created, first.updated) == (3, 0, 0)  # the series and its override in one item
    target, ann_there = _app(crm_factory, make_user)
    came = _sync(target, _account(target, ann_there, url))
    assert (came.created, came.written) == (4, 0)
    assert _events(target) == _events(source)
    assert _sync(target, 1).line().startswith("created 0, updated 0, deleted 0, merged 0, conflicts 0 (0 written")


def test_caldav_to_crm_to_caldav_writes_nothing_back(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    dav = DavCollection(url, "ann", "ann-secret")
    names = ("google_rrule_exdate_recurid_alarm.ics", "blackberry_attendees_allday.ics", "outlook12_windows_tzid_sydney.ics",
             "exchange2010_exdate.ics", "davx5_android_exdate.ics")
    for name in names:
        _put(dav, name.removesuffix(".ics"), sample(name))
    before = dav.listing()
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    summary = _sync(crm, account)
    assert summary.created == 6 and summary.written == 0
    assert _sync(crm, account).written == 0
    assert dav.listing() == before  # not one item rewritten


def test_new_remote_events_come_in_and_only_they_are_fetched(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    dav = DavCollection(url, "ann", "ann-secret")
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    _put(dav, "a", sample("exchange2010_exdate.ics"))
    assert _sync(crm, account).created == 1
    _put(dav, "b", sample("blackberry_attendees_allday.ics"))
    later = _sync(crm, account)
    assert (later.created, later.requests) == (1, 2)  # the sync report, then one multiget
    assert len(activities(crm)) == 2


def test_deletions_propagate_both_ways(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    crm, ann = _app(crm_factory, make_user)
    _ann_activities(crm, ann)
    account = _account(crm, ann, url)
    _sync(crm, account)
    dav = DavCollection(url, "ann", "ann-secret")
    listing = dav.listing()
    offsite = next(r for r in activities(crm) if r.subject == "Offsite")
    call = next(r for r in activities(crm) if r.subject == "Call Ada")
    href = next(h for h in listing if offsite.ical_uid.split("@")[0] in h)
    assert dav.delete(href, etag=listing[href]) in (200, 204)
    with crm.unit_of_work() as uow:
        uow.delete("activity", call.id)
        uow.commit()
    summary = _sync(crm, account)
    assert summary.deleted == 2
    assert {r.subject for r in activities(crm)} == {"Weekly review", "Weekly review (moved)"}
    assert len(dav.listing()) == 1


def test_changes_on_both_sides_merge_field_by_field(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    dav = DavCollection(url, "ann", "ann-secret")
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    _put(dav, "x", sample("blackberry_attendees_allday.ics"))
    _sync(crm, account)
    (meeting,) = activities(crm)
    href, etag = next(iter(dav.listing().items()))
    remote = sample("blackberry_attendees_allday.ics").decode().replace("SUMMARY:Test meeting from BB", "SUMMARY:Renamed there")
    assert dav.put(href, remote, etag=etag)[0] in (201, 204)
    with crm.unit_of_work() as uow:
        uow.update("activity", meeting.id, location="Room 4")
        uow.commit()
    summary = _sync(crm, account)
    assert (summary.merged, summary.conflicts, summary.written) == (1, 0, 1)
    (meeting,) = activities(crm)
    assert (meeting.subject, meeting.location) == ("Renamed there", "Room 4")
    (item,) = dav.fetch(list(dav.listing()))
    assert "SUMMARY:Renamed there" in item.data and "LOCATION:Room 4" in item.data
    assert _sync(crm, account).written == 0


def test_a_field_changed_differently_on_both_sides_is_listed(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    dav = DavCollection(url, "ann", "ann-secret")
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    _put(dav, "x", sample("blackberry_attendees_allday.ics"))
    _sync(crm, account)
    (meeting,) = activities(crm)
    href, etag = next(iter(dav.listing().items()))
    dav.put(href, sample("blackberry_attendees_allday.ics").decode().replace("SUMMARY:Test meeting from BB", "SUMMARY:There"), etag=etag)
    with crm.unit_of_work() as uow:
        uow.update("activity", meeting.id, subject="Here")
        uow.commit()
    summary = _sync(crm, account)
    assert summary.conflicts == 1
    with crm.unit_of_work() as uow:
        (row,) = links.conflicts(uow.raw("calendar_sync"))
    assert (row["field"], row["local"]["subject"], row["remote"]["subject"]) == ("subject", "Here", "There")
    assert activities(crm)[0].subject == "Here"
    (item,) = dav.fetch(list(dav.listing()))
    assert "SUMMARY:Here" in item.data  # the CRM's value went out; the server's is in the list
    with crm.unit_of_work() as uow:  # both sides change again, other fields: merged, nothing listed any more
        uow.update("activity", meeting.id, location="Room 9")
        uow.commit()
    dav.put(item.href, item.data.replace("DESCRIPTION:Test meeting from BB", "DESCRIPTION:Agenda"), etag=item.etag)
    again = _sync(crm, account)
    assert (again.merged, again.conflicts) == (1, 0)
    with crm.unit_of_work() as uow:
        assert links.conflicts(uow.raw("calendar_sync")) == []


def test_a_precondition_failure_refetches_and_merges(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    dav = DavCollection(url, "ann", "ann-secret")
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    _put(dav, "x", sample("blackberry_attendees_allday.ics"))
    _sync(crm, account)
    with crm.unit_of_work() as uow:
        token = links.collection_state(uow.raw("calendar_sync"), account, url)[0]
    href, etag = next(iter(dav.listing().items()))
    dav.put(href, sample("blackberry_attendees_allday.ics").decode().replace("DESCRIPTION:Test meeting from BB",
                                                                           "DESCRIPTION:Agenda attached"), etag=etag)
    with crm.unit_of_work() as uow:  # the sync will not see the change in its report: only the PUT finds it
        links.save_collection_state(uow.raw("calendar_sync"), account, url, dav.sync(token).token, None)
        (meeting,) = uow.query("activity").all()
        uow.update(meeting, subject="Moved to Friday")
        uow.commit()
    summary = _sync(crm, account)
    assert (summary.merged, summary.written) == (1, 1)
    (meeting,) = activities(crm)
    assert (meeting.subject, meeting.description) == ("Moved to Friday", "Agenda attached")
    (item,) = dav.fetch(list(dav.listing()))
    assert "Moved to Friday" in item.data and "Agenda attached" in item.data


def test_an_invalid_token_resyncs_by_uid_without_duplicates(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    crm, ann = _app(crm_factory, make_user)
    _ann_activities(crm, ann)
    account = _account(crm, ann, url)
    _sync(crm, account)
    with crm.unit_of_work() as uow:
        links.save_collection_state(uow.raw("calendar_sync"), account, url, "http://radicale.org/ns/sync/expired", None)
        uow.commit()
    summary = _sync(crm, account)
    assert summary.full and (summary.created, summary.deleted, summary.written) == (0, 0, 0)
    assert len(activities(crm)) == 4


def test_sync_never_schedules_and_keeps_attendees_and_unknown_properties(crm_factory: Any, make_user: Any,
                                                                          radicale_server: Any) -> None:
    url = radicale_server.calendar("ann", "work")
    dav = DavCollection(url, "ann", "ann-secret")
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    _put(dav, "x", sample("blackberry_attendees_allday.ics"))  # an invitation (METHOD:REQUEST) with 3 attendees
    _sync(crm, account)
    with crm.unit_of_work() as uow:
        (meeting,) = uow.query("activity").all()
        uow.update(meeting, subject="Renamed here")
        uow.commit()
    assert _sync(crm, account).written == 1
    (item,) = dav.fetch(list(dav.listing()))
    text = item.data.replace("\r\n ", "").replace("\n ", "")
    assert "METHOD" not in text
    attendees = [line for line in text.splitlines() if line.startswith("ATTENDEE")]
    assert len(attendees) == 3 and all("RSVP=TRUE" in line and "CN=" in line for line in attendees)
    assert all("SCHEDULE-AGENT=CLIENT" in line for line in text.splitlines() if line.startswith(("ATTENDEE", "ORGANIZER")))
    assert "X-RIM-REVISION:0" in text and "X-MICROSOFT-CDO-ALLDAYEVENT:TRUE" in text and "SUMMARY:Renamed here" in text


def test_passwords_are_stored_encrypted(crm_factory: Any, make_user: Any) -> None:
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, "http://127.0.0.1:9/ann/work/")
    with crm.unit_of_work() as uow:
        record = uow.get("calendar_account", account)
        raw_rows = uow.raw("calendar_sync").execute(sa.select(links.EVENT)).all()
    assert "ann-secret" not in record.secret and "ann-secret" not in repr(record) and raw_rows == []
    from crm_calendar_sync.credentials import account_password

    assert account_password(crm, record) == "ann-secret"


def test_a_password_needs_the_key(crm_factory: Any, make_user: Any) -> None:
    crm = crm_factory(plugins=PLUGINS)
    with crm.unit_of_work() as uow, pytest.raises(Exception, match="secret_key is not set"):
        made = uow.create("calendar_account", name="Work", kind="caldav", url="http://127.0.0.1:9/x/")
        set_password(uow, made, "pw")



def test_the_command_line_adds_an_account_and_syncs(crm_factory: Any, make_user: Any, radicale_server: Any,
                                                     tmp_path: Any) -> None:
    from click.testing import CliRunner
    from crmcore.cli import main

    url = radicale_server.calendar("ann", "work")
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS, file=True)
    make_user(crm, "ann", email="ann@example.com")
    _put(DavCollection(url, "ann", "ann-secret"), "x", sample("blackberry_attendees_allday.ics"))
    config = tmp_path / "crm.toml"
    config.write_text(f'[crm]\ndatabase = "{crm.settings.database}"\nplugins = ["calendar_sync"]\n\n'
                      f'[plugins.calendar_sync]\nsecret_key = "{KEY}"\n', encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(config)]
    added = runner.invoke(main, [*base, "calendar", "account", "add", "Work", "--url", url, "--login", "ann", "--user", "ann"],
                          input="ann-secret\n")
    assert added.exit_code == 0, added.output
    assert "ann-secret" not in added.output.replace("Password: \n", "")
    listed = runner.invoke(main, [*base, "calendar", "account", "list"])
    assert "Work  caldav" in listed.output and "ann-secret" not in listed.output
    synced = runner.invoke(main, [*base, "calendar", "sync", "--user", "ann"])
    assert synced.exit_code == 0, synced.output
    assert "Work: created 1, updated 0, deleted 0, merged 0, conflicts 0" in synced.output
    conflicts = runner.invoke(main, [*base, "calendar", "conflicts"])
    assert conflicts.exit_code == 0 and conflicts.output == ""
    changed = runner.invoke(main, [*base, "calendar", "account", "password", "1"], input="other\n")
    assert changed.exit_code == 0 and "password changed" in changed.output
    with crm.unit_of_work() as uow:
        from crm_calendar_sync.credentials import account_password

        assert account_password(crm, uow.get("calendar_account", 1)) == "other"


def test_the_worker_syncs_each_account_on_a_schedule(crm_factory: Any, make_user: Any, radicale_server: Any) -> None:
    from crmcore.jobs import run_worker

    url = radicale_server.calendar("ann", "work")
    _put(DavCollection(url, "ann", "ann-secret"), "x", sample("blackberry_attendees_allday.ics"))
    crm, ann = _app(crm_factory, make_user)
    account = _account(crm, ann, url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)  # the first run is due at once
    assert run_worker(crm, once=True, now=now).done == 1
    assert [r.subject for r in activities(crm)] == ["Test meeting from BB"]
    with crm.unit_of_work() as uow:
        (job,) = uow.query("job").where(kind="calendar_sync.sync", status="queued").all()
        assert job.run_at == now + dt.timedelta(minutes=15)
        uow.delete("calendar_account", account)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("job").where(kind="calendar_sync.sync", status="queued").count() == 0
