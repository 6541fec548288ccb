"""Bookings: written with their activity and the order's technician, hard constraints refused
with their reasons, and no double booking even when two units of work book at once."""

from __future__ import annotations

import threading

import pytest
from scheduling_support import at, order, world

from crm_scheduling import booking, workday
from crm_scheduling.errors import BookingRefused

PLUGINS = ["scheduling"]


def test_a_booking_lands_on_the_technicians_calendar_and_schedules_the_order(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    oid = order(crm, ids, "Pump", skills={"hydraulics": 3}, window_start=None, window_end=None)
    with crm.unit_of_work() as uow:
        made = booking.book(uow, ids["bob"], oid, at(9), at(10), travel_minutes=20)
        uow.commit()
    with crm.unit_of_work() as uow:
        activity = uow.get("activity", made.activity_id)
        the_order = uow.get("service_order", oid)
        technicians = uow.select("order_technician", ("user_id",)).where(order_id=oid).all()
    assert (activity.owner_id, activity.starts_at, activity.service_order_id) == (
        ids["bob_user"], at(9), oid)
    assert the_order.status == "scheduled" and the_order.window_start == at(9)
    assert technicians == [{"user_id": ids["bob_user"]}]


@pytest.mark.parametrize(("resource", "start", "end", "reason"), [
    ("bob", 9, 10, "Bob is already booked from 2027-01-18 08:40 to 10:00 UTC (double booking)"),
    ("bob", 16, 18, "outside the working hours of Bob"),
    ("ann", 11, 12, "Ann lacks hydraulics at level 3 (has 2)"),
])
def test_a_booking_breaking_a_hard_constraint_is_refused_with_the_reason(
        crm_factory, resource, start, end, reason):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    first = order(crm, ids, "Pump", skills={"hydraulics": 3})
    second = order(crm, ids, "Valve", skills={"hydraulics": 3})
    with crm.unit_of_work() as uow:
        booking.book(uow, ids["bob"], first, at(9), at(10), travel_minutes=20)
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(BookingRefused) as refused:
        booking.book(uow, ids[resource], second, at(start), at(end))
    assert any(reason in r for r in refused.value.reasons), refused.value.reasons
    with crm.unit_of_work() as uow:
        assert uow.query("booking").count() == 1
        assert uow.get("service_order", second).status == "new"


def test_a_booking_outside_the_order_window_is_refused(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    oid = order(crm, ids, window_start=at(8), window_end=at(10))
    with crm.unit_of_work() as uow, pytest.raises(BookingRefused, match="misses the window"):
        booking.book(uow, ids["ann"], oid, at(9, 30), at(10, 30))


def test_an_absence_recorded_later_shows_as_a_conflict_and_replans_the_order(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    oid = order(crm, ids, "Pump", skills={"hydraulics": 2})
    with crm.unit_of_work() as uow:
        booking.book(uow, ids["ann"], oid, at(9), at(10))
        uow.create("absence", resource_id=ids["ann"], kind="leave", starts_at=at(0),
                   ends_at=at(23))
        uow.commit()
    with crm.unit_of_work() as uow:
        found = workday.conflicts(uow, at(0).date(), at(0).date())
        unbooked, proposal = workday.replan(uow, at(0).date(), at(0).date())
    assert found and "outside the working hours of Ann" in found[0]
    assert unbooked == [oid]
    [moved] = proposal.assignments
    assert moved.resource_id == ids["bob"]
    assert "Ann (no free time in the window" in moved.reason


def test_concurrent_bookings_of_one_resource_never_overlap(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    if crm.settings.database.startswith("sqlite"):
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    ids = world(crm)
    orders = [order(crm, ids, f"Visit {i}") for i in range(4)]
    barrier = threading.Barrier(len(orders))
    outcome: list[str] = []

    def book(oid: int) -> None:
        with crm.unit_of_work() as uow:
            barrier.wait()
            try:
                booking.book(uow, ids["ann"], oid, at(9), at(10))
                uow.commit()
                outcome.append("booked")
            except BookingRefused as exc:
                outcome.append(exc.reasons[0])

    threads = [threading.Thread(target=book, args=(oid,)) for oid in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome.count("booked") == 1
    assert all("double booking" in o for o in outcome if o != "booked")
    with crm.unit_of_work() as uow:
        assert uow.query("booking").where(resource_id=ids["ann"]).count() == 1
