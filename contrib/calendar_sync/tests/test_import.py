"""Importing iCalendar files: every sample imports, identity by (account, UID,
RECURRENCE-ID), the anchors' failures (a meeting per attendee, UIDs lost, all-day events
shifted), time zones, recurrence kept as rules, alarms as reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from calendar_support import PLUGINS, SAMPLES, activities, import_file, sample

from crm_calendar_sync import links
from crm_calendar_sync.errors import CalendarFileError
from crm_calendar_sync.importer import import_calendar


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    return crm_factory(plugins=PLUGINS)


def test_every_sample_file_imports_and_a_second_import_creates_nothing(crm: Any) -> None:
    total = 0
    for path in SAMPLES:
        first = import_file(crm, path.name)
        assert first.skipped == (), path.name
        assert first.created == first.events > 0, path.name
        total += first.created
        again = import_file(crm, path.name)
        assert (again.created, again.updated, again.unchanged) == (0, 0, again.events), path.name
    assert len(activities(crm)) == total


def test_a_meeting_is_one_activity_however_many_attendees(crm: Any, make_user: Any) -> None:
    ann = make_user(crm, "ann", email="rembrand@xs4all.nl")
    bob = make_user(crm, "bob", email="rembrand@daxlab.com")
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Spam", email="RembSpam@xs4all.nl")
        uow.commit()
    import_file(crm, "blackberry_attendees_allday.ics", user="ann")
    import_file(crm, "blackberry_attendees_allday.ics", user="bob")  # the same invitation, another invitee
    (meeting,) = activities(crm)
    assert [a["email"] for a in meeting.attendees] == ["rembrand@xs4all.nl", "rembrand@daxlab.com", "rembspam@xs4all.nl"]
    assert meeting.participants == [{"user_id": bob.user_id}, {"user_id": ann.user_id}, {"contact_id": contact.id}]
    with crm.unit_of_work() as uow:
        accounts = uow.query("calendar_account").order_by("id").all()
        assert [a.user_id for a in accounts] == [ann.user_id, bob.user_id]
        rows = uow.raw("calendar_sync").execute(sa.select(links.EVENT.c.account_id, links.EVENT.c.activity_id)).all()
    assert sorted(rows) == [(accounts[0].id, meeting.id), (accounts[1].id, meeting.id)]


def test_the_uid_is_stored_and_keys_the_event(crm: Any) -> None:
    import_file(crm, "exchange2010_windows_tzid.ics")
    (event,) = activities(crm)
    assert event.ical_uid == "minimal-demo-event-est-20241028@example.com"
    changed = sample("exchange2010_windows_tzid.ics").replace(b"SUMMARY:", b"SUMMARY:Moved: ")
    summary = import_file(crm, changed)
    assert (summary.created, summary.updated) == (0, 1)
    (event,) = activities(crm)
    assert event.subject.startswith("Moved: ")


def test_an_event_without_a_uid_is_found_again(crm: Any) -> None:
    first = import_file(crm, "edge_tzid_without_vtimezone.ics")
    again = import_file(crm, "edge_tzid_without_vtimezone.ics")
    assert first.created == 4 and again.created == 0
    assert all(r.ical_uid for r in activities(crm))


def test_all_day_events_are_stored_as_dates_not_midnight(crm: Any) -> None:
    import_file(crm, "outlook12_holidays_allday.ics")
    new_year = next(r for r in activities(crm) if r.subject == "Germany: New Years Day")
    assert (new_year.all_day, new_year.start_date, new_year.end_date) == (True, dt.date(2008, 1, 1), dt.date(2008, 1, 1))
    assert new_year.starts_at is None and new_year.ends_at is None


def test_windows_display_and_custom_zone_ids_resolve_to_iana(crm: Any) -> None:
    for name in ("exchange2010_windows_tzid.ics", "vtimezone_custom_america_new_york.ics",
                 "outlook12_windows_tzid_sydney.ics", "exchange2010_timezone_same_start.ics"):
        import_file(crm, name)
    zones = {r.ical_uid[:12]: (r.timezone, r.starts_at) for r in activities(crm)}
    assert zones["minimal-demo"] == ("America/New_York", dt.datetime(2024, 10, 28, 21, 0, tzinfo=dt.UTC))
    assert zones["noend123"] == ("America/New_York", dt.datetime(2014, 8, 29, 12, 0, tzinfo=dt.UTC))
    sydney = zones["CommaTest"]
    assert sydney[0].startswith("Australia/") and sydney[1] == dt.datetime(2008, 5, 30, 5, 0, tzinfo=dt.UTC)
    assert zones["040000008200"][0] == "America/Los_Angeles"


def test_floating_times_are_read_in_the_calendars_zone(crm: Any) -> None:
    import_file(crm, "google_x_wr_timezone_no_vtimezone.ics")
    noon = next(r for r in activities(crm) if "noon" in r.subject)
    assert noon.timezone == "America/New_York"
    assert noon.starts_at == dt.datetime(2021, 12, 22, 17, 0, tzinfo=dt.UTC)


def test_a_series_is_one_activity_and_its_moved_occurrences_point_at_it(crm: Any) -> None:
    summary = import_file(crm, "thunderbird_moved_occurrences.ics")
    assert summary.created == 5  # the file's five components, nothing expanded
    rows = activities(crm)
    series = next(r for r in rows if r.rrule and r.subject == "test7")
    moved = [r for r in rows if r.series_id == series.id]
    assert moved and all(r.recurrence_id for r in moved)
    assert series.rrule.startswith("FREQ=DAILY")


def test_broken_values_are_repaired_not_fatal(crm: Any) -> None:
    import_file(crm, "google_birthdays_calendar.ics")
    import_file(crm, "exchange_cdo_vtimezone_rrule.ics")
    by_subject = {r.subject: r for r in activities(crm) if r.rrule}
    assert by_subject["PErson #2's birthday"].rdates == ["2012-12-10", "2013-12-10"]
    assert by_subject["Sprint 25 Daily Standup"].rrule == "FREQ=DAILY;UNTIL=20150722T080000Z;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;WKST=SU"


def test_tasks_come_from_vtodo(crm: Any) -> None:
    import_file(crm, "edge_tzid_without_vtimezone.ics")
    assert [r.kind for r in activities(crm)].count("task") == 1


def test_alarms_become_reminders_of_the_user_once(crm: Any, make_user: Any) -> None:
    make_user(crm, "ann")
    before = dt.datetime(2024, 10, 1, tzinfo=dt.UTC)
    first = import_file(crm, "google_alarm_attendee_rrule.ics", user="ann", now=before)
    again = import_file(crm, "google_alarm_attendee_rrule.ics", user="ann", now=before)
    (event,) = activities(crm)
    assert len(event.alarms) == 4  # two of them at the same time: one reminder
    assert first.reminders == 3 and again.reminders == 0
    with crm.unit_of_work() as uow:
        times = sorted(r.remind_at for r in uow.query("reminder").all())
    assert times[-1] == event.starts_at - dt.timedelta(minutes=min(a["minutes"] for a in event.alarms))
    assert import_file(crm, "google_alarm_attendee_rrule.ics", user="ann").reminders == 0  # all in the past now


def test_a_file_that_is_not_icalendar_is_refused_by_name(crm: Any) -> None:
    with crm.unit_of_work() as uow, pytest.raises(CalendarFileError, match="notes.txt is not an iCalendar file"):
        import_calendar(uow, b"hello", name="notes.txt")


def test_an_unknown_user_is_named(crm: Any) -> None:
    with crm.unit_of_work() as uow, pytest.raises(Exception, match="no user 'zed'"):
        import_calendar(uow, sample("exchange2010_exdate.ics"), user="zed")


def test_activities_made_here_get_a_uid(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        call = uow.create("activity", kind="call", subject="Call Ada")
        mail = uow.create("activity", kind="email", subject="Mail Ada")
        uow.commit()
    assert call.ical_uid.endswith("@crmcore") and mail.ical_uid is None
