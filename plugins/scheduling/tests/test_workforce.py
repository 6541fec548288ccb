"""Planned against actual hours, utilisation and overtime; the roster as CSV and iCalendar."""

from __future__ import annotations

import datetime as dt

from scheduling_support import MONDAY, at, order, world

from crm_scheduling import booking, workforce

PLUGINS = ["scheduling"]
SUNDAY = MONDAY + dt.timedelta(days=6)


def _week(crm_factory):
    crm = crm_factory(plugins=PLUGINS)
    ids = world(crm)
    pump = order(crm, ids, "Pump, leaking", site_address="Rua XV, 1\nBlumenau")
    with crm.unit_of_work() as uow:
        booking.book(uow, ids["bob"], pump, at(9), at(12), travel_minutes=15)
        report = uow.create("work_report", order_id=pump, work_date=MONDAY)
        uow.create("work_line", report_id=report.id, line_type="labour", quantity="10.5",
                   technician_id=ids["bob_user"], unit_price="80.00 EUR")
        uow.create("work_line", report_id=report.id, line_type="travel", quantity="30",
                   technician_id=ids["bob_user"])
        uow.commit()
    return crm, ids, pump


def test_planned_actual_overtime_and_utilisation(crm_factory) -> None:
    crm, ids, _ = _week(crm_factory)
    with crm.unit_of_work() as uow:
        rows = {h.name: h for h in workforce.hours(uow, MONDAY, SUNDAY)}
    bob = rows["Bob"]
    assert (bob.working, bob.planned, bob.actual, bob.overtime) == (45.0, 3.0, 10.5, 1.5)
    assert round(bob.utilisation, 3) == round(10.5 / 45, 3)
    assert rows["Ann"].actual == 0 and "Van 1" not in rows
    assert workforce.hours_table(list(rows.values()))[1].startswith("Ann")


def test_the_roster_as_csv_and_icalendar(crm_factory) -> None:
    crm, ids, pump = _week(crm_factory)
    with crm.unit_of_work() as uow:
        text = workforce.roster_csv(uow, MONDAY, SUNDAY)
        ics = workforce.roster_ics(uow, MONDAY, SUNDAY,
                                   stamp=dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    assert text.splitlines()[1] == (
        f'Bob,2027-01-18,09:00,12:00,15,{pump},"Pump, leaking",Acme,"Rua XV, 1 Blumenau"')
    assert "DTSTART:20270118T090000Z\r\nDTEND:20270118T120000Z\r\n" in ics
    assert f"SUMMARY:Bob: order {pump} Pump\\, leaking\r\n" in ics
    assert "LOCATION:Rua XV\\, 1 Blumenau\r\n" in ics
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.endswith("END:VCALENDAR\r\n")
