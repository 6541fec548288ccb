"""Business calendars of the core: days off and working spans on fixed dates (pure), and the
calendar records read set-based through the unit of work, shared by every plugin."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crmcore import ValidationError
from crmcore.calendars import WEEKDAYS, BusinessCalendar, create_calendar, load_calendars

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = dict.fromkeys(WEEKDAYS[:5], ["09:00-12:00", "13:00-17:00"])
MONDAY = dt.date(2026, 3, 23)


def utc(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def test_a_day_is_off_on_a_holiday_by_its_name_and_on_a_closed_weekday() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE, {dt.date(2026, 4, 6): "Easter Monday"})
    assert calendar.day_off(dt.date(2026, 4, 6)) == "Easter Monday"
    assert calendar.day_off(dt.date(2026, 4, 5)) == "sun is a day off"
    assert calendar.day_off(dt.date(2026, 4, 7)) is None
    unnamed = BusinessCalendar.from_hours(BERLIN, OFFICE, [dt.date(2026, 4, 6)])
    assert unnamed.day_off(dt.date(2026, 4, 6)) == "holiday"


def test_spans_are_the_opening_windows_of_a_period_in_utc_across_a_clock_change() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    spans = calendar.spans(dt.date(2026, 3, 27), dt.date(2026, 3, 30))  # summer time on the 29th
    assert spans == [
        (utc(dt.date(2026, 3, 27), 8), utc(dt.date(2026, 3, 27), 11)),  # CET: UTC+1
        (utc(dt.date(2026, 3, 27), 12), utc(dt.date(2026, 3, 27), 16)),
        (utc(dt.date(2026, 3, 30), 7), utc(dt.date(2026, 3, 30), 10)),  # CEST: UTC+2
        (utc(dt.date(2026, 3, 30), 11), utc(dt.date(2026, 3, 30), 15)),
    ]


def test_the_help_desk_keeps_its_import_path() -> None:
    businesstime = pytest.importorskip("crm_helpdesk.businesstime")
    assert businesstime.BusinessCalendar is BusinessCalendar


def test_calendars_are_written_and_read_back_with_hours_holidays_and_time_zone(crm_factory: Any) -> None:
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        berlin = create_calendar(uow, "Berlin office", OFFICE, timezone="Europe/Berlin",
                                 holidays={dt.date(2026, 3, 25): "Closed", dt.date(2027, 1, 1): "New Year"})
        always = create_calendar(uow, "Always", dict.fromkeys(WEEKDAYS, ["00:00-24:00"]))
        uow.commit()
    with crm.unit_of_work() as uow:
        found = load_calendars(uow, [berlin, always, 999], first=MONDAY, last=MONDAY + dt.timedelta(days=6))
        assert uow.query("business_hours").where(calendar_id=berlin).count() == 10
    assert sorted(found) == [berlin, always]
    office = found[berlin]
    assert (office.name, office.timezone) == ("Berlin office", BERLIN)
    assert office.holidays == {dt.date(2026, 3, 25)}  # the holiday outside the period is not read
    assert office.day_off(dt.date(2026, 3, 25)) == "Closed"
    # Friday 16:00 UTC is 17:00 in Berlin: two business hours later is Monday 11:00 in Berlin
    assert office.add(utc(dt.date(2026, 3, 20), 16), 120) == utc(MONDAY, 10)
    assert found[always].between(utc(MONDAY, 0), utc(MONDAY, 6)) == 360


def test_hours_that_close_before_they_open_are_refused_naming_both(crm_factory: Any) -> None:
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        calendar = uow.create("business_calendar", name="Night", timezone="UTC")
        with pytest.raises(ValidationError, match="closes at '09:00', not after it opens at '17:00'"):
            uow.create("business_hours", calendar_id=calendar.id, weekday="mon", opens="17:00", closes="09:00")
        hours = uow.create("business_hours", calendar_id=calendar.id, weekday="mon", opens="8:00", closes="24:00")
        assert (hours.opens, hours.closes) == ("08:00", "24:00")
        with pytest.raises(ValidationError, match="closes at '07:00'"):
            uow.update(hours, closes="07:00")


def test_a_calendar_without_hours_cannot_give_working_time(crm_factory: Any) -> None:
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        empty = uow.create("business_calendar", name="Nothing", timezone="UTC")
        with pytest.raises(ValidationError, match=r"business calendar 'Nothing' \(id \d+\) cannot give working time"):
            load_calendars(uow, [empty.id])
        assert load_calendars(uow, [empty.id], skip_empty=True) == {}  # "never open" to the caller


def test_an_unknown_weekday_is_refused_before_anything_is_written(crm_factory: Any) -> None:
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        with pytest.raises(ValueError, match="unknown weekday 'monday'"):
            create_calendar(uow, "Odd", {"monday": ["09:00-17:00"]})
        assert uow.query("business_calendar").count() == 0


def test_a_plugin_that_needs_calendars_cannot_run_with_them_disabled(crm_factory: Any) -> None:
    from crmcore import PluginError, PluginInfo, hookimpl

    class Clocks:
        PLUGIN = PluginInfo(name="clocks", requires=("core.calendars",))

        @hookimpl
        def crm_entity_types(self) -> None:
            return None

    with pytest.raises(PluginError, match="requires 'core.calendars', which is disabled"):
        crm_factory([Clocks()], {"crm": {"disabled": ["core.calendars"]}})
