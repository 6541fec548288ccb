"""Exporting activities as iCalendar: round trips give the same events, attendees and unknown
properties survive, all-day events stay dates, windows, the command line."""

from __future__ import annotations

import datetime as dt
from typing import Any

import icalendar
import pytest
from calendar_support import DATA, PLUGINS, SAMPLES, activities, import_file
from click.testing import CliRunner
from crmcore.cli import main

from crm_calendar_sync.exporter import export_calendar
from crm_calendar_sync.parse import MODELLED_FIELDS, plain_value


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    return crm_factory(plugins=PLUGINS)


def _export(crm: Any, **options: Any) -> bytes:
    with crm.unit_of_work() as uow:
        data = export_calendar(uow, **options)
        uow.commit()
    return data


def _events(crm: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.ical_uid, r.recurrence_id or ""): {n: plain_value(r.get(n)) for n in MODELLED_FIELDS} for r in activities(crm)}


def test_export_then_import_gives_the_same_events(crm_factory: Any) -> None:
    source = crm_factory(plugins=PLUGINS)
    for path in SAMPLES:
        import_file(source, path.name)
    exported = _export(source)
    again = import_file(source, exported)  # into the same account: nothing new, nothing changed
    assert (again.created, again.updated) == (0, 0)
    target = crm_factory(plugins=PLUGINS)
    summary = import_file(target, exported)
    assert summary.skipped == ()
    before, after = _events(source), _events(target)
    assert after.keys() == before.keys()
    for key, values in before.items():
        assert after[key] == values, key


def test_attendees_and_unknown_properties_are_kept_when_a_field_changes(crm: Any) -> None:
    import_file(crm, "blackberry_attendees_allday.ics")
    (meeting,) = activities(crm)
    with crm.unit_of_work() as uow:
        uow.update("activity", meeting.id, subject="Moved to the big room")
        uow.commit()
    (event,) = icalendar.Calendar.from_ical(_export(crm)).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Moved to the big room"
    attendees = event["ATTENDEE"]
    assert [str(a) for a in attendees] == ["MAILTO:rembrand@xs4all.nl", "MAILTO:rembrand@daxlab.com", "MAILTO:rembspam@xs4all.nl"]
    assert all(a.params["RSVP"] == "TRUE" and a.params["PARTSTAT"] == "NEEDS-ACTION" for a in attendees)
    assert str(event["X-RIM-REVISION"]) == "0" and str(event["X-MICROSOFT-CDO-ALLDAYEVENT"]) == "TRUE"


def test_a_participant_added_here_is_exported_as_an_attendee(crm: Any) -> None:
    import_file(crm, "blackberry_attendees_allday.ics")
    (meeting,) = activities(crm)
    with crm.unit_of_work() as uow:
        ada = uow.create("contact", first_name="Ada", last_name="Lovelace", email="ada@example.com")
        uow.update("activity", meeting.id, participants=[{"contact_id": ada.id}])
        uow.commit()
    (event,) = icalendar.Calendar.from_ical(_export(crm)).walk("VEVENT")
    assert [str(a) for a in event["ATTENDEE"]][-1] == "mailto:ada@example.com"
    assert len(event["ATTENDEE"]) == 4


def test_all_day_events_are_exported_as_dates(crm: Any) -> None:
    import_file(crm, "outlook12_holidays_allday.ics")
    text = _export(crm).decode()
    assert "DTSTART;VALUE=DATE:20080101\r\nDTEND;VALUE=DATE:20080102" in text or (
        "DTEND;VALUE=DATE:20080102" in text and "DTSTART;VALUE=DATE:20080101" in text)
    assert "DTSTART:20080101T" not in text


def test_activities_made_here_export_and_import_back_without_duplicates(crm: Any, make_user: Any) -> None:
    ann = make_user(crm, "ann", email="ann@example.com")
    with crm.unit_of_work() as uow:
        uow.create("activity", kind="meeting", subject="Review", owner_id=ann.user_id,
                   starts_at=dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC), ends_at=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC),
                   timezone="Europe/Paris", rrule="FREQ=WEEKLY;COUNT=4", exdates=["2026-03-09T09:00:00Z"],
                   alarms=[{"action": "DISPLAY", "minutes": 30}])
        uow.create("activity", kind="task", subject="Send the offer", owner_id=ann.user_id,
                   due_at=dt.datetime(2026, 3, 3, 17, tzinfo=dt.UTC))
        uow.create("activity", kind="meeting", subject="Offsite", owner_id=ann.user_id, all_day=True,
                   start_date=dt.date(2026, 3, 5), end_date=dt.date(2026, 3, 6))
        uow.commit()
    with crm.unit_of_work() as uow:
        data = export_calendar(uow, user=uow.get("user", ann.user_id))
        uow.commit()
    before = _events(crm)
    summary = import_file(crm, data, user="ann")
    assert (summary.created, summary.updated) == (0, 0)
    assert _events(crm) == before
    text = data.decode()
    assert "RRULE:FREQ=WEEKLY;COUNT=4" in text and "BEGIN:VTODO" in text and "TZID=Europe/Paris" in text
    assert "BEGIN:VTIMEZONE" in text and "TRIGGER:-PT30M" in text


def test_a_window_keeps_the_series_with_an_occurrence_in_it(crm: Any) -> None:
    import_file(crm, "nextcloud_sabredav_weekly_two_exdates.ics")  # weekly from 2019-03-04, 8 times
    import_file(crm, "outlook12_holidays_allday.ics")
    with crm.unit_of_work() as uow:
        data = export_calendar(uow, window=(dt.date(2019, 4, 1), dt.date(2019, 4, 10)))
    events = icalendar.Calendar.from_ical(data).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["test6"]


def test_the_command_line_imports_and_exports(crm_factory: Any, tmp_path: Any) -> None:
    crm = crm_factory(plugins=PLUGINS, file=True)
    runner = CliRunner()
    env = {"CRM_PLUGINS": "calendar_sync"}
    database = ["--db", crm.settings.database]
    path = DATA / "zimbra_recur_instances_attendees.ics"
    first = runner.invoke(main, [*database, "calendar", "import", str(path)], env=env)
    assert first.exit_code == 0, first.output
    assert "3 events: 3 created, 0 updated, 0 unchanged" in first.output
    again = runner.invoke(main, [*database, "calendar", "import", str(path)], env=env)
    assert "0 created, 0 updated, 3 unchanged" in again.output
    out = tmp_path / "out.ics"
    exported = runner.invoke(main, [*database, "calendar", "export", "--from", "2012-10-01", "--to", "2012-10-31", "-o", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    assert "3 events" in exported.output and out.read_bytes().count(b"BEGIN:VEVENT") == 3
    agenda = runner.invoke(main, [*database, "calendar", "agenda", "--from", "2012-10-01", "--to", "2012-10-31"], env=env)
    assert agenda.output.count("Crazy Event Thingy!") == 1
    bad = runner.invoke(main, [*database, "calendar", "export", "--from", "2012-10-01"], env=env)
    assert bad.exit_code != 0 and "give both --from and --to" in bad.output

