"""Occurrences are expanded inside a window only, in the zone a series was planned in, with
exclusions, additions and overrides; the counts match the corpus' reference expansion."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from calendar_support import PLUGINS, activities, import_file

from crm_calendar_sync.recurrence import expand, occurrences, rule_text

#: The window of the corpus' reference counts (PROVENANCE.md: "expanding occurrences over
#: 2000-2030", up to the first day of 2030).
DECADES = (dt.date(2000, 1, 1), dt.date(2029, 12, 31))


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    return crm_factory(plugins=PLUGINS)


@pytest.mark.parametrize(("name", "count"), [
    ("davx5_android_exdate.ics", 7),
    ("nextcloud_sabredav_weekly_two_exdates.ics", 6),
    ("google_moved_occurrence_recurrence_id.ics", 6),
    ("thunderbird_moved_occurrences.ics", 7),
    ("exchange2010_exdate.ics", 2),
    # the reference reads UNTIL=20200916T230000Z of these all-day series as the 16th; it is the
    # UTC time of midnight of the 17th in London, the last Thursday of the series: 2 more
    ("exchange2010_rrule_until_utc_recurid.ics", 26),
    ("zimbra_recur_instances_attendees.ics", 209),
])
def test_occurrences_match_the_reference_expansion(crm: Any, name: str, count: int) -> None:
    import_file(crm, name)
    with crm.unit_of_work() as uow:
        assert len(occurrences(uow, DECADES)) == count


def test_a_series_keeps_its_wall_time_across_daylight_saving(crm: Any) -> None:
    import_file(crm, "nextcloud_sabredav_weekly_two_exdates.ics")  # 00:30 Berlin, weekly from 2019-03-04
    with crm.unit_of_work() as uow:
        found = occurrences(uow, (dt.date(2019, 3, 1), dt.date(2019, 4, 30)))
    berlin = [o.starts_at.astimezone(dt.timezone(dt.timedelta(hours=1))) for o in found]
    assert {o.starts_at.hour for o in found} == {23, 22}  # 23:30 UTC in winter, 22:30 UTC in summer
    assert len(berlin) == 6


def test_an_override_stands_in_for_its_occurrence(crm: Any) -> None:
    import_file(crm, "google_rrule_exdate_recurid_alarm.ics")
    series, moved = activities(crm)
    with crm.unit_of_work() as uow:
        found = occurrences(uow, (dt.date(2014, 8, 1), dt.date(2014, 8, 2)))
    assert [(o.activity_id, o.starts_at) for o in found] == [(moved.id, moved.starts_at)]


def test_the_window_bounds_the_expansion_of_an_endless_series(crm: Any) -> None:
    import_file(crm, "nextcloud_sabredav_allday_daily.ics")  # all-day, every day, no end
    with crm.unit_of_work() as uow:
        week = occurrences(uow, (dt.date(2030, 1, 1), dt.date(2030, 1, 7)))
    assert [o.start_date for o in week] == [dt.date(2030, 1, d) for d in range(1, 8)]
    assert all(o.starts_at is None for o in week)


def test_until_is_read_in_the_form_the_start_needs() -> None:
    zoned = dt.datetime(2020, 1, 1, 9, tzinfo=dt.UTC)
    assert rule_text("FREQ=DAILY;UNTIL=20200105", zoned) == "FREQ=DAILY;UNTIL=20200105T235959Z"
    assert rule_text("FREQ=DAILY;UNTIL=20200916T230000Z", dt.datetime(2020, 9, 3)) == "FREQ=DAILY;UNTIL=20200917T235959"
    values = {"starts_at": zoned, "timezone": "UTC", "rrule": "FREQ=DAILY;UNTIL=20200103T090000Z",
              "exdates": ["2020-01-02T09:00:00Z"], "rdates": ["2020-01-10"]}
    days = expand(values, zoned, zoned + dt.timedelta(days=30))
    assert [d.day for d in days] == [1, 3, 10]
