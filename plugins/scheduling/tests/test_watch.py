"""Conflicts checked on every change: an absence, a skill, working hours, a holiday or an
order's window changed after a booking was made flags the booking with the reason, the change
back clears it, and a booking moved into a conflict is refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from scheduling_support import MONDAY, at, order, world

from crm_scheduling import booking, watch, workday
from crm_scheduling.errors import BookingRefused

PLUGINS = ["scheduling"]


def _booked(crm: Any) -> tuple[dict[str, Any], int]:
    """Bob booked for a pump (hydraulics 3) on Monday 14:00-15:00 UTC."""
    ids = world(crm)
    oid = order(crm, ids, "Pump", skills={"hydraulics": 3})
    with crm.unit_of_work() as uow:
        made = booking.book(uow, ids["bob"], oid, at(14), at(15))
        uow.commit()
    ids["order"] = oid
    return ids, made.id


def _conflict(crm: Any, booking_id: int) -> str | None:
    with crm.unit_of_work() as uow:
        return uow.get("booking", booking_id).conflict


def test_an_absence_over_a_booking_flags_it_and_removing_the_absence_clears_it(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids, made = _booked(crm)
    with crm.unit_of_work() as uow:
        absence = uow.create("absence", resource_id=ids["bob"], kind="sickness",
                             starts_at=at(13), ends_at=at(17))
        uow.create("absence", resource_id=ids["ann"], starts_at=at(8), ends_at=at(17))
        uow.commit()
    assert "2027-01-18 14:00-15:00 UTC is outside the working hours of Bob" in _conflict(crm, made)
    with crm.unit_of_work() as uow:
        assert [b["id"] for b in watch.flagged(uow, MONDAY, MONDAY)] == [made]
        assert workday.conflicts(uow, MONDAY, MONDAY) == [
            f"booking {made} (order {ids['order']}): 2027-01-18 14:00-15:00 UTC is outside the "
            "working hours of Bob (calendar, holidays, absences)"]
        uow.update(absence, starts_at=at(15, 30))  # moved past the booking
        uow.commit()
    assert _conflict(crm, made) is None
    with crm.unit_of_work() as uow:
        uow.update("absence", absence.id, starts_at=at(8))
        uow.commit()
    assert _conflict(crm, made) is not None
    with crm.unit_of_work() as uow:
        uow.delete("absence", absence.id)
        uow.commit()
    assert _conflict(crm, made) is None


def test_a_skill_lowered_or_removed_flags_the_bookings_that_need_it(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids, made = _booked(crm)
    with crm.unit_of_work() as uow:
        skill = uow.query("resource_skill").where(resource_id=ids["bob"],
                                                  skill="hydraulics").first()
        uow.update(skill, level=2)
        uow.commit()
    assert _conflict(crm, made) == "Bob lacks hydraulics at level 3 (has 2)"
    with crm.unit_of_work() as uow:
        uow.delete(uow.get("resource_skill", skill.id))
        uow.commit()
    assert _conflict(crm, made) == "Bob lacks hydraulics at level 3 (has 0)"
    with crm.unit_of_work() as uow:
        uow.create("resource_skill", resource_id=ids["bob"], skill="hydraulics", level=4)
        uow.commit()
    assert _conflict(crm, made) is None


def test_working_hours_a_holiday_and_the_order_window_are_watched(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids, made = _booked(crm)
    with crm.unit_of_work() as uow:
        uow.update("resource", ids["bob"], day_end="12:00")
        uow.commit()
    assert "outside the working hours of Bob" in _conflict(crm, made)
    with crm.unit_of_work() as uow:
        uow.update("resource", ids["bob"], day_end="17:00")
        uow.commit()
    assert _conflict(crm, made) is None
    with crm.unit_of_work() as uow:
        holiday = uow.create("business_holiday", calendar_id=ids["calendar"], day=MONDAY,
                             name="Fair")
        uow.commit()
    assert "outside the working hours of Bob" in _conflict(crm, made)
    with crm.unit_of_work() as uow:
        uow.delete(holiday)
        hours = uow.query("business_hours").where(calendar_id=ids["calendar"],
                                                  weekday="mon").first()
        uow.update(hours, opens="15:00")  # the calendar opens after the booking starts
        uow.commit()
    assert "outside the working hours of Bob" in _conflict(crm, made)
    with crm.unit_of_work() as uow:
        uow.update("business_hours", hours.id, opens="00:00")
        uow.update("service_order", ids["order"], window_end=at(14, 30))
        uow.commit()
    assert _conflict(crm, made) == (f"it misses the window of order {ids['order']} "
                                    "(2027-01-18 08:00 UTC to 2027-01-18 14:30 UTC)")
    with crm.unit_of_work() as uow:
        uow.create("order_skill", order_id=ids["order"], skill="welding", min_level=1)
        uow.update("service_order", ids["order"], window_end=at(17))
        uow.commit()
    assert _conflict(crm, made) == "Bob lacks welding at level 1 (has 0)"


def test_a_calendar_left_without_hours_flags_the_bookings_of_its_resources(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids, made = _booked(crm)
    with crm.unit_of_work() as uow:
        removed = uow.delete_where("business_hours", {"calendar_id": ids["calendar"]})
        uow.commit()
    assert removed == 5
    assert "outside the working hours of Bob" in _conflict(crm, made)


def test_a_booking_moved_into_a_conflict_is_refused_and_moved_clear_of_it_is_cleared(
        crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids, made = _booked(crm)
    with crm.unit_of_work() as uow:
        uow.create("absence", resource_id=ids["bob"], starts_at=at(13), ends_at=at(17))
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(BookingRefused) as refused:
        uow.update("booking", made, starts_at=at(16), ends_at=at(17))
    assert refused.value.reasons == [
        f"booking of resource {ids['bob']} at 2027-01-18 16:00: 2027-01-18 16:00-17:00 UTC is "
        "outside the working hours of Bob (calendar, holidays, absences)"]
    with crm.unit_of_work() as uow:
        uow.update("booking", made, starts_at=at(10), ends_at=at(11))
        uow.commit()
    assert _conflict(crm, made) is None


def test_bookings_of_finished_orders_are_left_alone(crm_factory) -> None:
    crm = crm_factory(plugins=PLUGINS)
    ids, made = _booked(crm)
    with crm.unit_of_work() as uow:
        uow.move(uow.get("service_order", ids["order"]), "cancelled")
        uow.create("absence", resource_id=ids["bob"], starts_at=at(8), ends_at=at(17))
        uow.commit()
    assert _conflict(crm, made) is None
