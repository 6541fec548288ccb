"""Resources: working time from calendar, time zone, holidays and absences; free time;
demand; capacity against demand by day and week."""

from __future__ import annotations

import datetime as dt

import pytest
from crmcore import ValidationError
from scheduling_support import MONDAY, at, order, world

from crm_scheduling import capacity
from crm_scheduling.demand import load_demand
from crm_scheduling.resources import load_resources

PLUGINS = ["scheduling"]


def test_working_time_follows_calendar_holidays_time_zone_and_absences(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    with crm.unit_of_work() as uow:
        uow.create("business_holiday", calendar_id=ids["calendar"], day=MONDAY + dt.timedelta(1),
                   name="Fair")
        uow.update("resource", ids["bob"], timezone="America/Sao_Paulo")
        uow.create("absence", resource_id=ids["ann"], kind="training", starts_at=at(13),
                   ends_at=at(15))
        uow.commit()
    with crm.unit_of_work() as uow:
        found = load_resources(uow, MONDAY, MONDAY + dt.timedelta(days=6))
        free = capacity.free_time(uow, MONDAY, MONDAY + dt.timedelta(days=6))
    ann, bob = found[ids["ann"]], found[ids["bob"]]
    assert ann.skills == {"electrical": 3, "hydraulics": 2}
    assert free[ids["ann"]][:2] == [(at(8), at(13)), (at(15), at(17))]
    days = sorted({s.date() for s, _ in free[ids["ann"]]})
    assert days == [MONDAY, MONDAY + dt.timedelta(2), MONDAY + dt.timedelta(3),
                    MONDAY + dt.timedelta(4)]  # Tuesday is a holiday, the weekend is off
    assert bob.working[0] == (at(11), at(20))  # 08:00-17:00 in Sao Paulo (UTC-3)


def test_an_absence_must_end_after_it_starts(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="before it starts"):
        uow.create("absence", resource_id=ids["ann"], starts_at=at(15), ends_at=at(13))


def test_a_territory_cannot_end_up_inside_itself(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="inside itself"):
        uow.update("territory", ids["north"], parent_id=ids["harbour"])


def test_demand_comes_from_orders_with_skills_and_plan_occurrences(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    first = order(crm, ids, "Pump", skills={"hydraulics": 3}, priority="high",
                  duration_minutes=90, latitude="0.1", longitude="0.2")
    second = order(crm, ids, "Cabinet", priority="urgent", window_end=at(12))
    later = order(crm, ids, "Later", window_start=at(8, day=MONDAY + dt.timedelta(14)),
                  window_end=at(17, day=MONDAY + dt.timedelta(14)))
    with crm.unit_of_work() as uow:
        plan = uow.create("service_plan", name="Checks", account_id=ids["account"],
                          rule="FREQ=WEEKLY;BYDAY=MO", starts_on=MONDAY, time_of_day="09:00",
                          create_orders=False, duration_minutes=30)
        uow.create("plan_occurrence", plan_id=plan.id, rule_date=MONDAY, scheduled_on=MONDAY,
                   window_start=at(9), window_end=at(12))
        uow.commit()
    with crm.unit_of_work() as uow:
        demand = load_demand(uow, MONDAY, MONDAY)
    assert [(d.source, d.id) for d in demand][:2] == [("service_order", second),
                                                     ("service_order", first)]
    assert later not in [d.id for d in demand]
    pump = next(d for d in demand if d.id == first)
    assert (pump.skills, pump.minutes, pump.latitude, pump.priority) == (
        {"hydraulics": 3}, 90, 0.1, "high")
    assert [d.minutes for d in demand if d.source == "plan_occurrence"] == [30]


def test_capacity_against_demand_per_team_skill_and_territory(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    order(crm, ids, "Pump", skills={"hydraulics": 3}, duration_minutes=120,
          territory_id=ids["south"])
    with crm.unit_of_work() as uow:
        uow.create("absence", resource_id=ids["bob"], starts_at=at(8), ends_at=at(12))
        uow.commit()
    with crm.unit_of_work() as uow:
        days = capacity.capacity(uow, MONDAY, MONDAY + dt.timedelta(days=6))
        weeks = capacity.capacity(uow, MONDAY, MONDAY + dt.timedelta(days=6), by="week")
    row = {(r.period, r.group, r.name): r for r in days}
    hydraulics = row[(MONDAY.isoformat(), "skill", "hydraulics")]
    assert (hydraulics.working, hydraulics.absent, hydraulics.demand) == (14 * 60, 240, 120)
    assert row[(MONDAY.isoformat(), "territory", "South")].demand == 120
    assert row[(MONDAY.isoformat(), "resource", "Van 1")].free == 9 * 60
    week = {(r.group, r.name): r for r in weeks if r.period == "2027-W03"}
    assert week[("resource", "Ann")].working == 5 * 9 * 60
    assert week[("team", "(no team)")].working == 3 * 45 * 60 - 240
    lines = capacity.table(days)
    assert lines[0].split()[:3] == ["period", "group", "name"]


def test_a_capacity_chart_is_a_png(crm_factory, tmp_path) -> None:
    crm = crm_factory(plugins=PLUGINS)
    world(crm)
    with crm.unit_of_work() as uow:
        rows = capacity.capacity(uow, MONDAY, MONDAY + dt.timedelta(days=4))
    path = capacity.chart(rows, tmp_path / "capacity.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_an_iso_week_is_monday_to_sunday() -> None:
    assert capacity.iso_week("2027-W03") == (MONDAY, MONDAY + dt.timedelta(days=6))
    with pytest.raises(ValidationError, match="'2027-03'"):
        capacity.iso_week("2027-03")


def test_activities_a_technician_holds_are_busy_time(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    with crm.unit_of_work() as uow:
        uow.create("activity", kind="meeting", subject="Team meeting", owner_id=ids["ann_user"],
                   starts_at=at(9), ends_at=at(10))
        uow.create("activity", kind="meeting", subject="Called off", owner_id=ids["ann_user"],
                   starts_at=at(11), ends_at=at(12), status="cancelled")
        uow.commit()
    with crm.unit_of_work() as uow:
        free = capacity.free_time(uow, MONDAY, MONDAY)
    assert free[ids["ann"]] == [(at(8), at(9)), (at(10), at(17))]
