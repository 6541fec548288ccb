"""Planned service: recurrence, exclusions, DST, holidays, exceptions and reruns."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from crmcore import ValidationError
from crmcore.calendars import WEEKDAYS, create_calendar
from service_support import account

from crm_service import planned
from crm_service.planned import Calendar, occurrences, wall_clock

D = dt.date
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _plan(**values):
    plan = {"id": 1, "rule": "FREQ=WEEKLY;BYDAY=MO", "starts_on": D(2026, 3, 2),
            "ends_on": None, "time_of_day": "09:00", "timezone": "Europe/Berlin",
            "duration_minutes": 120, "early_days": 0, "late_days": 0, "shift": "next"}
    plan.update(values)
    return plan


def test_the_wall_clock_time_holds_across_the_dst_change() -> None:
    found = occurrences(_plan(), D(2026, 3, 23), D(2026, 4, 6))
    assert [o.starts_at.strftime("%Y-%m-%d %H:%M %z") for o in found] == [
        "2026-03-23 09:00 +0100", "2026-03-30 09:00 +0200", "2026-04-06 09:00 +0200"]
    assert [o.starts_at.astimezone(dt.UTC).hour for o in found] == [8, 7, 7]


def test_a_time_skipped_by_the_spring_change_moves_on_by_the_gap() -> None:
    moment = wall_clock(D(2026, 3, 29), dt.time(2, 30), BERLIN)
    assert moment.strftime("%H:%M %z") == "03:30 +0200"


def test_buffers_open_the_window_before_and_close_it_after() -> None:
    [occ] = occurrences(_plan(early_days=2, late_days=3), D(2026, 3, 30), D(2026, 3, 30))
    assert occ.window_start == dt.datetime(2026, 3, 28, 9, tzinfo=BERLIN)
    assert occ.window_end == dt.datetime(2026, 4, 2, 11, tzinfo=BERLIN)
    # across the change the window keeps wall-clock days: 9:00 CET two days before
    assert occ.window_start.utcoffset() == dt.timedelta(hours=1)


def test_exdates_exclude_dates_of_the_rule() -> None:
    found = occurrences(_plan(rule="FREQ=WEEKLY;BYDAY=MO\nEXDATE:20260309"), D(2026, 3, 2),
                        D(2026, 3, 16))
    assert [o.rule_date for o in found] == [D(2026, 3, 2), D(2026, 3, 16)]


def test_a_holiday_shifts_the_visit_to_the_next_working_day() -> None:
    calendar = Calendar(frozenset(range(5)), {D(2026, 4, 6): "Easter Monday"})
    found = occurrences(_plan(), D(2026, 4, 6), D(2026, 4, 6), calendar=calendar)
    [occ] = found
    assert (occ.rule_date, occ.scheduled_on) == (D(2026, 4, 6), D(2026, 4, 7))
    assert occ.note == "shifted from 2026-04-06 (Easter Monday)"
    back = occurrences(_plan(shift="previous"), D(2026, 4, 6), D(2026, 4, 6),
                       calendar=calendar)
    assert back[0].scheduled_on == D(2026, 4, 3)


def test_a_weekend_date_shifts_past_the_weekend() -> None:
    found = occurrences(_plan(rule="FREQ=MONTHLY;BYMONTHDAY=1", starts_on=D(2026, 1, 1)),
                        D(2026, 3, 1), D(2026, 3, 1), calendar=Calendar())
    assert found[0].scheduled_on == D(2026, 3, 2)  # Sunday the 1st -> Monday


def test_exceptions_skip_and_move() -> None:
    exceptions = {D(2026, 3, 9): {"action": "skip", "reason": "plant closed"},
                  D(2026, 3, 16): {"action": "move", "moved_to": D(2026, 3, 18), "reason": ""}}
    found = occurrences(_plan(), D(2026, 3, 9), D(2026, 3, 16), exceptions=exceptions)
    assert [(o.rule_date, o.scheduled_on, o.status) for o in found] == [
        (D(2026, 3, 9), D(2026, 3, 9), "skipped"), (D(2026, 3, 16), D(2026, 3, 18), "moved")]


def test_a_rule_that_is_not_rfc_5545_is_refused(crm_factory) -> None:
    crm = crm_factory(plugins=["service"])
    acme = account(crm)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="RFC 5545"):
        uow.create("service_plan", name="Checks", account_id=acme, rule="every monday",
                   starts_on=D(2026, 3, 2))


@pytest.fixture
def crm(crm_factory):
    return crm_factory(plugins=["service"])


def _stored_plan(crm, **values):
    acme = account(crm)
    with crm.unit_of_work() as uow:
        calendar_id = create_calendar(uow, "Germany", dict.fromkeys(WEEKDAYS[:5], ["00:00-24:00"]),
                                      holidays={D(2026, 4, 6): "Easter Monday"})
        unit = uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                          account_id=acme)
        fields = {"name": "Pump check", "account_id": acme, "unit_id": unit.id,
                  "rule": "FREQ=WEEKLY;BYDAY=MO", "starts_on": D(2026, 3, 2),
                  "timezone": "Europe/Berlin", "calendar_id": calendar_id, "horizon_days": 28,
                  **values}
        plan = uow.create("service_plan", fields)
        uow.commit()
    return plan


def test_generation_creates_occurrences_and_orders_once(crm) -> None:
    plan = _stored_plan(crm)
    with crm.unit_of_work() as uow:
        first = planned.generate(uow, D(2026, 3, 23))
        uow.commit()
    assert (first.occurrences, first.orders) == (5, 5)  # 23.3, 30.3, 6.4 (-> 7.4), 13.4, 20.4
    with crm.unit_of_work() as uow:
        again = planned.generate(uow, D(2026, 3, 23))
        later = planned.generate(uow, D(2026, 3, 30))  # one more week on the horizon
        uow.commit()
    assert (again.occurrences, again.orders) == (0, 0)
    assert later.occurrences == 1
    with crm.unit_of_work() as uow:
        occs = uow.query("plan_occurrence").where(plan_id=plan.id).order_by("rule_date").all()
        orders = uow.query("service_order").order_by("window_start").all()
        units = uow.query("order_unit").count()
    assert [o.key for o in occs][:2] == [f"{plan.id}:2026-03-23", f"{plan.id}:2026-03-30"]
    easter = next(o for o in occs if o.rule_date == D(2026, 4, 6))
    assert easter.scheduled_on == D(2026, 4, 7) and "Easter Monday" in easter.note
    assert len(orders) == 6 and units == 6
    assert {o.status for o in orders} == {"scheduled"}
    assert orders[1].window_start == dt.datetime(2026, 3, 30, 7, tzinfo=dt.UTC)  # 09:00 CEST


def test_the_unique_key_refuses_a_second_occurrence_of_a_date(crm) -> None:
    plan = _stored_plan(crm)
    with crm.unit_of_work() as uow:
        uow.create("plan_occurrence", plan_id=plan.id, rule_date=D(2026, 3, 23),
                   scheduled_on=D(2026, 3, 23))
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="key"):
        uow.create("plan_occurrence", plan_id=plan.id, rule_date=D(2026, 3, 23),
                   scheduled_on=D(2026, 3, 24))


def test_preview_writes_nothing_and_shows_skips(crm) -> None:
    plan = _stored_plan(crm)
    with crm.unit_of_work() as uow:
        planned.skip_occurrence(uow, plan.id, D(2026, 3, 30), "plant closed")
        uow.commit()
    with crm.unit_of_work() as uow:
        shown = planned.preview(uow, plan.id, D(2026, 3, 23), D(2026, 4, 6))
        assert uow.query("plan_occurrence").count() == 0
    assert [(o.rule_date, o.status) for o in shown] == [
        (D(2026, 3, 23), "planned"), (D(2026, 3, 30), "skipped"), (D(2026, 4, 6), "planned")]


def test_skipping_and_moving_a_generated_occurrence_follow_its_order(crm) -> None:
    plan = _stored_plan(crm)
    with crm.unit_of_work() as uow:
        planned.generate(uow, D(2026, 3, 23))
        planned.skip_occurrence(uow, plan.id, D(2026, 3, 30), "plant closed")
        planned.move_occurrence(uow, plan.id, D(2026, 4, 13), D(2026, 4, 15), "crane booked")
        with pytest.raises(ValidationError, match="already has an exception"):
            planned.skip_occurrence(uow, plan.id, D(2026, 4, 13))
        uow.commit()
    with crm.unit_of_work() as uow:
        planned.generate(uow, D(2026, 3, 23))
        by_date = {o.rule_date: o for o in uow.query("plan_occurrence").all()}
        skipped = uow.query("service_order").where(occurrence_id=by_date[D(2026, 3, 30)].id)
        moved = uow.query("service_order").where(occurrence_id=by_date[D(2026, 4, 13)].id)
        assert skipped.first().status == "cancelled"
        assert moved.first().window_start == dt.datetime(2026, 4, 15, 7, tzinfo=dt.UTC)
        assert by_date[D(2026, 4, 13)].status == "moved"
        assert uow.query("plan_occurrence").count() == 5


def test_the_daily_job_generates(crm) -> None:
    from crmcore.jobs import run_worker

    from crm_service import jobs

    _stored_plan(crm)
    with crm.unit_of_work() as uow:
        jobs.queue_daily(uow, dt.datetime(2026, 3, 23, 1, tzinfo=dt.UTC))
        uow.commit()
    run_worker(crm, once=True, now=dt.datetime(2026, 3, 23, 2, tzinfo=dt.UTC))
    with crm.unit_of_work() as uow:
        assert uow.query("plan_occurrence").count() == 5


def test_the_daily_job_generates_a_page_of_plans_per_job(crm) -> None:
    from crmcore.jobs import run_worker

    from crm_service import jobs

    acme = account(crm)
    with crm.unit_of_work() as uow:
        plans = uow.create_many("service_plan", [
            {"name": f"Check {n}", "account_id": acme, "rule": "FREQ=WEEKLY;BYDAY=MO",
             "starts_on": D(2026, 3, 2), "horizon_days": 6, "create_orders": False}
            for n in range(planned._PAGE + 1)])
        jobs.queue_daily(uow, dt.datetime(2026, 3, 23, 1, tzinfo=dt.UTC))
        uow.commit()
    run_worker(crm, once=True, now=dt.datetime(2026, 3, 23, 2, tzinfo=dt.UTC))
    with crm.unit_of_work() as uow:
        pages = uow.query("job").where(kind=jobs.GENERATE_JOB).order_by("id").all()
        assert uow.query("plan_occurrence").count() == planned._PAGE + 1
    assert [(job.status, job.payload["after"]) for job in pages] == [
        ("done", 0), ("done", plans[planned._PAGE - 1].id)]
