"""A small world the scheduling tests share: plain functions over the public API. Monday 2027-01-18
(ISO week 2027-W03); two technicians working 08:00-17:00 UTC on a Monday to Friday calendar
(open all day: the shifts give the hours): Ann (electrical 3, hydraulics 2, territory North,
home at 0.0, 0.0) and Bob (hydraulics 4, territory South, home at 0.0, 1.0, about 111 km east),
and a van.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import Crm
from crmcore.calendars import WEEKDAYS, create_calendar

MONDAY = dt.date(2027, 1, 18)


def at(hour: int, minute: int = 0, day: dt.date = MONDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def world(crm: Crm) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        calendar = create_calendar(uow, "Office", dict.fromkeys(WEEKDAYS[:5], ["00:00-24:00"]))
        north = uow.create("territory", name="North")
        south = uow.create("territory", name="South")
        harbour = uow.create("territory", name="Harbour", parent_id=north.id)
        ann_user = uow.create("user", username="ann")
        bob_user = uow.create("user", username="bob")
        ann = uow.create("resource", name="Ann", user_id=ann_user.id, territory_id=north.id,
                         home_latitude="0", home_longitude="0", calendar_id=calendar,
                         cost_per_hour="60.00 EUR")
        bob = uow.create("resource", name="Bob", user_id=bob_user.id, territory_id=south.id,
                         home_latitude="0", home_longitude="1", calendar_id=calendar,
                         cost_per_hour="50.00 EUR")
        van = uow.create("resource", name="Van 1", kind="vehicle", calendar_id=calendar)
        uow.create_many("resource_skill", [
            {"resource_id": ann.id, "skill": "electrical", "level": 3},
            {"resource_id": ann.id, "skill": "hydraulics", "level": 2},
            {"resource_id": bob.id, "skill": "hydraulics", "level": 4},
        ])
        account = uow.create("account", name="Acme")
        uow.commit()
    return {"calendar": calendar, "north": north.id, "south": south.id,
            "harbour": harbour.id, "ann": ann.id, "bob": bob.id, "van": van.id,
            "ann_user": ann_user.id, "bob_user": bob_user.id, "account": account.id}


def order(crm: Crm, ids: dict[str, Any], subject: str = "Visit", *,
          skills: dict[str, int] | None = None, **values: Any) -> int:
    values.setdefault("window_start", at(8))
    values.setdefault("window_end", at(17))
    values.setdefault("duration_minutes", 60)
    with crm.unit_of_work() as uow:
        record = uow.create("service_order", subject=subject, account_id=ids["account"],
                            **values)
        uow.create_many("order_skill", [{"order_id": record.id, "skill": s, "min_level": lvl}
                                        for s, lvl in (skills or {}).items()])
        uow.commit()
    return record.id
