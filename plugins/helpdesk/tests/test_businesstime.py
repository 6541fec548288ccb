"""The business-time calculator, on fixed dates in several time zones (no app, no database)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_helpdesk.businesstime import BusinessCalendar, parse_window, parse_windows

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
SYDNEY = ZoneInfo("Australia/Sydney")
OFFICE = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def local(tz: ZoneInfo, *parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=tz)  # type: ignore[misc]


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)  # type: ignore[misc]


# -- reading hours ------------------------------------------------------------------------------


def test_a_window_is_read_from_text_or_pairs() -> None:
    assert parse_window("09:00-17:30") == (540, 1050)
    assert parse_window(("08:15", "24:00")) == (495, 1440)
    assert parse_window((0, 60)) == (0, 60)


@pytest.mark.parametrize(
    "text", ["9-17", "17:00-09:00", "09:00-24:30", "25:00-26:00", "09:60-10:00", "noon"]
)
def test_a_malformed_window_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="mon"):
        parse_window(text, where="mon")


def test_overlapping_windows_are_merged() -> None:
    assert parse_windows(["13:00-17:00", "09:00-12:00", "11:30-13:00"]) == ((540, 1020),)
    assert parse_windows(["13:00-17:00", "09:00-12:00"]) == ((540, 720), (780, 1020))


def test_an_unknown_weekday_is_refused() -> None:
    with pytest.raises(ValueError, match="'monday'"):
        BusinessCalendar.from_hours(BERLIN, {"monday": ["09:00-17:00"]})


def test_a_calendar_without_any_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="no opening hours"):
        BusinessCalendar.from_hours(BERLIN, {}, name="empty")


# -- adding business minutes --------------------------------------------------------------------


def test_adding_inside_one_window() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    assert calendar.add(local(BERLIN, 2026, 3, 24, 10, 0), 90) == local(BERLIN, 2026, 3, 24, 11, 30)


def test_a_clock_started_at_night_begins_at_the_next_opening() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    assert calendar.add(local(BERLIN, 2026, 3, 24, 22, 0), 30) == local(BERLIN, 2026, 3, 25, 9, 30)


def test_adding_zero_minutes_gives_the_start() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    start = local(BERLIN, 2026, 3, 28, 12, 0)  # a Saturday
    assert calendar.add(start, 0) == start


def test_a_clock_ending_at_closing_time_ends_there() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    assert calendar.add(local(BERLIN, 2026, 3, 24, 9, 0), 480) == local(BERLIN, 2026, 3, 24, 17, 0)


def test_negative_minutes_are_refused() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    with pytest.raises(ValueError, match="negative"):
        calendar.add(local(BERLIN, 2026, 3, 24, 9, 0), -5)


def test_a_naive_start_is_refused() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add(dt.datetime(2026, 3, 24, 9, 0), 5)


def test_lunch_breaks_do_not_count() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, {"tue": ["09:00-12:00", "13:00-17:00"]})
    assert calendar.add(local(BERLIN, 2026, 3, 24, 11, 0), 120) == local(BERLIN, 2026, 3, 24, 14, 0)


def test_berlin_friday_afternoon_over_the_weekend_summer_time_begins() -> None:
    # 2026-03-29 (Sunday): clocks go from 02:00 CET to 03:00 CEST
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    due = calendar.add(local(BERLIN, 2026, 3, 27, 16, 0), 120)
    assert due == utc(2026, 3, 30, 8, 0)  # Monday 10:00 CEST
    assert due.astimezone(BERLIN).hour == 10


def test_berlin_friday_afternoon_over_the_weekend_summer_time_ends() -> None:
    # 2026-10-25 (Sunday): clocks go from 03:00 CEST back to 02:00 CET
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    due = calendar.add(local(BERLIN, 2026, 10, 23, 16, 0), 120)
    assert due == utc(2026, 10, 26, 9, 0)  # Monday 10:00 CET


def test_a_round_the_clock_day_has_23_hours_when_summer_time_begins() -> None:
    calendar = BusinessCalendar.always_open(BERLIN)
    assert (
        calendar.between(local(BERLIN, 2026, 3, 28, 12, 0), local(BERLIN, 2026, 3, 29, 12, 0))
        == 23 * 60
    )
    assert calendar.add(local(BERLIN, 2026, 3, 29, 1, 30), 60) == local(BERLIN, 2026, 3, 29, 3, 30)


def test_a_round_the_clock_day_has_25_hours_when_summer_time_ends() -> None:
    calendar = BusinessCalendar.always_open(BERLIN)
    assert (
        calendar.between(local(BERLIN, 2026, 10, 24, 12, 0), local(BERLIN, 2026, 10, 25, 12, 0))
        == 25 * 60
    )


def test_a_night_shift_in_the_skipped_hour_opens_at_the_change() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, {d: ["02:00-04:00"] for d in ("sat", "sun")})
    assert calendar.windows(dt.date(2026, 3, 29)) == (
        (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)),
    )
    assert calendar.between(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 6, 0)) == 60


def test_a_night_shift_in_the_repeated_hour_spans_both_occurrences() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, {d: ["02:00-04:00"] for d in ("sat", "sun")})
    assert calendar.windows(dt.date(2026, 10, 25)) == (
        (utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 3, 0)),
    )
    assert calendar.between(utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 6, 0)) == 180


def test_new_york_over_the_weekend_daylight_saving_begins() -> None:
    # 2026-03-08 (Sunday): 02:00 EST -> 03:00 EDT
    calendar = BusinessCalendar.from_hours(NEW_YORK, OFFICE)
    due = calendar.add(local(NEW_YORK, 2026, 3, 6, 16, 0), 120)
    assert due == utc(2026, 3, 9, 14, 0)  # Monday 10:00 EDT


def test_new_york_over_the_weekend_daylight_saving_ends() -> None:
    # 2026-11-01 (Sunday): 02:00 EDT -> 01:00 EST
    calendar = BusinessCalendar.from_hours(NEW_YORK, OFFICE)
    assert calendar.add(local(NEW_YORK, 2026, 10, 30, 16, 30), 60) == utc(2026, 11, 2, 14, 30)


def test_new_york_holiday_is_skipped() -> None:
    calendar = BusinessCalendar.from_hours(NEW_YORK, OFFICE, holidays=[dt.date(2026, 7, 3)])
    due = calendar.add(local(NEW_YORK, 2026, 7, 2, 16, 30), 60)
    assert due == local(NEW_YORK, 2026, 7, 6, 9, 30)


def test_kolkata_half_hour_offset_six_day_week_and_a_monday_holiday() -> None:
    hours = {d: ["10:00-18:30"] for d in ("mon", "tue", "wed", "thu", "fri", "sat")}
    calendar = BusinessCalendar.from_hours(KOLKATA, hours, holidays=[dt.date(2026, 1, 26)])
    due = calendar.add(local(KOLKATA, 2026, 1, 24, 18, 0), 60)  # Saturday 18:00
    assert due == utc(2026, 1, 27, 5, 0)  # Tuesday 10:30 IST
    assert (
        calendar.between(local(KOLKATA, 2026, 1, 23, 10, 0), local(KOLKATA, 2026, 1, 27, 10, 0))
        == 2 * 510
    )


def test_sydney_over_easter_when_daylight_saving_ends() -> None:
    # 2026-04-05 (Sunday): 03:00 AEDT -> 02:00 AEST; Good Friday 04-03, Easter Monday 04-06
    calendar = BusinessCalendar.from_hours(
        SYDNEY, OFFICE, holidays=[dt.date(2026, 4, 3), dt.date(2026, 4, 6)]
    )
    due = calendar.add(local(SYDNEY, 2026, 4, 2, 16, 0), 120)  # Thursday 16:00 AEDT
    assert due == utc(2026, 4, 7, 0, 0)  # Tuesday 10:00 AEST


def test_sydney_when_daylight_saving_begins() -> None:
    # 2026-10-04 (Sunday): 02:00 AEST -> 03:00 AEDT
    calendar = BusinessCalendar.always_open(SYDNEY)
    assert (
        calendar.between(local(SYDNEY, 2026, 10, 3, 12, 0), local(SYDNEY, 2026, 10, 4, 12, 0))
        == 23 * 60
    )


# -- counting business minutes ------------------------------------------------------------------


def test_a_week_of_office_hours() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    assert (
        calendar.between(local(BERLIN, 2026, 3, 23, 9, 0), local(BERLIN, 2026, 3, 30, 9, 0))
        == 5 * 480
    )


def test_counting_backwards_is_negative() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE)
    assert (
        calendar.between(local(BERLIN, 2026, 3, 24, 11, 0), local(BERLIN, 2026, 3, 24, 10, 0))
        == -60
    )


def test_nothing_counts_on_a_weekend_or_a_holiday() -> None:
    calendar = BusinessCalendar.from_hours(BERLIN, OFFICE, holidays=[dt.date(2026, 12, 25)])
    assert calendar.between(local(BERLIN, 2026, 3, 28, 0, 0), local(BERLIN, 2026, 3, 30, 0, 0)) == 0
    assert (
        calendar.between(local(BERLIN, 2026, 12, 25, 0, 0), local(BERLIN, 2026, 12, 26, 0, 0)) == 0
    )
    assert not calendar.is_open(local(BERLIN, 2026, 12, 25, 10, 0))
    assert calendar.is_open(local(BERLIN, 2026, 12, 24, 10, 0))


ZONES = st.sampled_from([BERLIN, NEW_YORK, KOLKATA, SYDNEY, dt.UTC])
MOMENTS = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=ZONES
)


@settings(max_examples=150, deadline=None)
@given(start=MOMENTS, minutes=st.integers(min_value=1, max_value=20_000), zone=ZONES)
def test_counting_undoes_adding(start: dt.datetime, minutes: int, zone: ZoneInfo) -> None:
    calendar = BusinessCalendar.from_hours(
        zone, {**OFFICE, "sat": ["10:00-13:00"]}, holidays=[dt.date(2026, 3, 30)]
    )
    due = calendar.add(start, minutes)
    assert due > start
    assert abs(calendar.between(start, due) - minutes) < 1e-6
    assert calendar.is_open(due - dt.timedelta(seconds=1))
