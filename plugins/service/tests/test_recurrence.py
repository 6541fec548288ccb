"""Rule dates: the arithmetic expansion of simple rules gives exactly what dateutil gives."""

from __future__ import annotations

import datetime as dt
import random

from crm_service.fieldtypes import RecurrenceRule, rule_set
from crm_service.recurrence import rule_dates

D = dt.date
NINE = dt.time(9)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _dateutil_dates(rule: str, start: dt.date, first: dt.date, last: dt.date) -> list[dt.date]:
    moments = rule_set(rule, dt.datetime.combine(start, NINE)).between(
        dt.datetime.combine(first, dt.time.min), dt.datetime.combine(last, dt.time.max),
        inc=True)
    return sorted({moment.date() for moment in moments})


def _random_rule(rng: random.Random) -> str:
    frequency = rng.choice(("DAILY", "WEEKLY", "MONTHLY", "YEARLY"))
    parts = [f"FREQ={frequency}"]
    if rng.random() < 0.5:
        parts.append(f"INTERVAL={rng.randint(1, 5)}")
    if frequency == "WEEKLY" and rng.random() < 0.6:
        parts.append("BYDAY=" + ",".join(rng.sample(WEEKDAYS, rng.randint(1, 4))))
        if rng.random() < 0.4:
            parts.append("WKST=" + rng.choice(WEEKDAYS))
    if frequency == "MONTHLY" and rng.random() < 0.6:
        days = rng.sample([*range(1, 32), *range(-31, 0)], rng.randint(1, 3))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
    rule = ";".join(parts)
    if rng.random() < 0.3:
        exdates = [D(2026, 1, 1) + dt.timedelta(days=rng.randrange(400)) for _ in range(3)]
        rule += "\nEXDATE:" + ",".join(d.strftime("%Y%m%d") for d in exdates)
    return rule


def test_simple_rules_give_the_dates_dateutil_gives() -> None:
    rng = random.Random(16)
    for _ in range(1500):
        rule = _random_rule(rng)
        start = D(2023, 1, 1) + dt.timedelta(days=rng.randrange(1500))
        first = D(2025, 6, 1) + dt.timedelta(days=rng.randrange(500))
        last = first + dt.timedelta(days=rng.randrange(800))
        assert list(rule_dates(rule, start, NINE, first, last)) == _dateutil_dates(
            rule, start, first, last), (rule, start, first, last)


def test_month_ends_and_leap_days_recur_only_where_they_exist() -> None:
    assert rule_dates("FREQ=MONTHLY", D(2026, 1, 31), NINE, D(2026, 1, 1), D(2026, 6, 30)) == (
        D(2026, 1, 31), D(2026, 3, 31), D(2026, 5, 31))
    assert rule_dates("FREQ=MONTHLY;BYMONTHDAY=-1", D(2026, 1, 5), NINE, D(2026, 1, 1),
                      D(2026, 3, 31)) == (D(2026, 1, 31), D(2026, 2, 28), D(2026, 3, 31))
    assert rule_dates("FREQ=YEARLY", D(2024, 2, 29), NINE, D(2024, 1, 1), D(2032, 12, 31)) == (
        D(2024, 2, 29), D(2028, 2, 29), D(2032, 2, 29))


def test_a_plan_started_long_ago_recurs_from_its_start_not_from_the_window() -> None:
    # every third day from 1 January 2000: the window starts off the rule, on its step
    dates = rule_dates("FREQ=DAILY;INTERVAL=3", D(2000, 1, 1), NINE, D(2026, 3, 1),
                       D(2026, 3, 10))
    assert dates == tuple(d for d in _dateutil_dates("FREQ=DAILY;INTERVAL=3", D(2000, 1, 1),
                                                     D(2026, 3, 1), D(2026, 3, 10)))
    assert all((d - D(2000, 1, 1)).days % 3 == 0 for d in dates) and len(dates) == 3


def test_other_rules_are_expanded_by_dateutil() -> None:
    for text in ("FREQ=MONTHLY;BYDAY=1MO", "FREQ=WEEKLY;COUNT=3",
                 "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                 "FREQ=YEARLY;BYMONTH=3,9;BYMONTHDAY=15", "FREQ=DAILY;UNTIL=20260310"):
        rule = RecurrenceRule().parse(text)
        assert list(rule_dates(rule, D(2026, 3, 2), NINE, D(2026, 3, 1), D(2027, 3, 1))) == (
            _dateutil_dates(rule, D(2026, 3, 2), D(2026, 3, 1), D(2027, 3, 1))), text


def test_a_rule_recurring_twice_a_day_gives_the_date_once() -> None:
    rule = RecurrenceRule().parse("FREQ=DAILY;BYHOUR=9,15")
    assert rule_dates(rule, D(2026, 3, 2), NINE, D(2026, 3, 2), D(2026, 3, 4)) == (
        D(2026, 3, 2), D(2026, 3, 3), D(2026, 3, 4))
