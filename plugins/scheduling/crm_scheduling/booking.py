"""Bookings: a resource's time given to an order, written through the unit of work.

Every booking written (by :func:`book`, by an accepted proposal or by hand with
``uow.create("booking", ...)``) is checked by the record hooks (:func:`check_bookings`) against
the hard constraints, and refused with :class:`~crm_scheduling.errors.BookingRefused` naming
each one broken:

- it overlaps another booking of the resource (travel before it included);
- it lies outside the resource's working hours, on a holiday or in an absence;
- the order needs a skill the resource lacks at its minimum level;
- it misses the order's time window.

The check first locks the rows of the resources booked (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite has one writer at a time), so two units of work booking one resource at
once are serialised and the second sees the first's booking: a resource is never booked
twice, whatever the concurrency.

:func:`book` also writes what a booking means elsewhere: a planned ``meeting`` activity owned by
the technician's user (linked to the order, so it shows in the order's timeline and on the
technician's calendar, which calendar sync carries on), the order's technician
(``order_technician``), and the order moved to ``scheduled`` when it was ``new``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crm_scheduling.errors import BookingRefused
from crm_scheduling.intervals import overlaps, subtract
from crm_scheduling.resources import load_resources

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["TIME_FIELDS", "book", "book_activity", "check_bookings", "conflicts", "unbook"]

TIME_FIELDS = ("resource_id", "order_id", "starts_at", "ends_at", "travel_minutes")


def _order_rules(uow: UnitOfWork, order_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    rules: dict[int, dict[str, Any]] = {}
    if not order_ids:
        return rules
    with uow.system_scope("a booking is checked against its order's needs"):
        for r in uow.select("service_order", ("id", "window_start", "window_end")).where(
                ("id", "in", list(order_ids))).all():
            rules[r["id"]] = {**r, "skills": {}}
        for s in uow.select("order_skill", ("order_id", "skill", "min_level")).where(
                ("order_id", "in", list(order_ids))).all():
            rules[s["order_id"]]["skills"][s["skill"]] = s["min_level"]
    return rules


def conflicts(uow: UnitOfWork, items: Sequence[dict[str, Any]], *,
              ignore: Sequence[int] = ()) -> list[list[str]]:
    """For each booking to write (its values), the hard constraints it breaks (empty: none).

    :param ignore: ids of bookings being changed, which do not conflict with themselves.
    """
    if not items:
        return []
    days = [v["starts_at"].date() for v in items] + [v["ends_at"].date() for v in items]
    with uow.system_scope("bookings are checked against every booking of their resource"):
        resources = load_resources(uow, min(days), max(days),
                                   ids={v["resource_id"] for v in items}, kinds=None)
        ignored = set(ignore)
        own = {}
        if ignored:
            own = {r["id"]: r for r in uow.select(
                "booking", ("id", "starts_at", "ends_at", "travel_minutes")).where(
                ("id", "in", sorted(ignored))).all()}
    rules = _order_rules(uow, sorted({v["order_id"] for v in items if v.get("order_id")}))
    placed: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    out = []
    for values in items:
        reasons: list[str] = []
        start, end = values["starts_at"], values["ends_at"]
        travel = dt.timedelta(minutes=values.get("travel_minutes") or 0)
        resource = resources.get(values["resource_id"])
        if end <= start:
            reasons.append(f"it ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        if resource is None:
            out.append([*reasons, f"resource {values['resource_id']} is not active"])
            continue
        busy = list(resource.busy)
        for booking in own.values():
            mine = (booking["starts_at"] - dt.timedelta(minutes=booking["travel_minutes"] or 0),
                    booking["ends_at"])
            busy = subtract(busy, [mine])
        clash = overlaps([*busy, *placed.get(resource.id, [])], start - travel, end)
        if clash:
            s, e = clash[0]
            reasons.append(f"{resource.name} is already booked from {s:%Y-%m-%d %H:%M} to "
                           f"{e:%H:%M} UTC (double booking)")
        if subtract([(start, end)], resource.working):
            reasons.append(f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC is outside the working "
                           f"hours of {resource.name} (calendar, holidays, absences)")
        rule = rules.get(values.get("order_id"))
        if rule:
            for skill, level in sorted(rule["skills"].items()):
                if resource.skills.get(skill, 0) < level:
                    reasons.append(f"{resource.name} lacks {skill} at level {level} (has "
                                   f"{resource.skills.get(skill, 0)})")
            if rule["window_start"] and start < rule["window_start"] or (
                    rule["window_end"] and end > rule["window_end"]):
                reasons.append(f"it misses the window of order {rule['id']} "
                               f"({_when(rule['window_start'])} to {_when(rule['window_end'])})")
        placed.setdefault(resource.id, []).append((start - travel, end))
        out.append(reasons)
    return out


def _when(value: dt.datetime | None) -> str:
    return "open" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def check_bookings(uow: UnitOfWork, items: Sequence[dict[str, Any]],
                   ignore: Sequence[int] = ()) -> None:
    """Lock the resources of *items* and refuse the whole batch if any breaks a hard
    constraint (:func:`conflicts`)."""
    if not items:
        return
    with uow.system_scope("the resources booked are locked against concurrent bookings"):
        uow.find_many("resource", "id", sorted({v["resource_id"] for v in items}), lock=True)
    reasons = [f"booking of resource {v['resource_id']} at {v['starts_at']:%Y-%m-%d %H:%M}: {r}"
               for v, found in zip(items, conflicts(uow, items, ignore=ignore), strict=True)
               for r in found]
    if reasons:
        raise BookingRefused(reasons)


def book(uow: UnitOfWork, resource_id: int, order_id: int, starts_at: dt.datetime,
         ends_at: dt.datetime, *, travel_minutes: int = 0, note: str = "") -> Record:
    """Book *resource_id* for service order *order_id*, with its activity, the order's
    technician and the order ``scheduled``.

    :raises BookingRefused: when a hard constraint is broken (nothing is written).
    """
    return uow.atomic(_book, uow, resource_id, order_id, starts_at, ends_at, travel_minutes,
                      note)


def _book(uow: UnitOfWork, resource_id: int, order_id: int, starts_at: dt.datetime,
          ends_at: dt.datetime, travel_minutes: int, note: str) -> Record:
    order = uow.get("service_order", order_id)
    resource = uow.get("resource", resource_id)
    booking = uow.create("booking", resource_id=resource_id, order_id=order_id,
                         starts_at=starts_at, ends_at=ends_at, travel_minutes=travel_minutes,
                         note=note or None)
    if resource.user_id:
        activity = uow.create(
            "activity", kind="meeting", subject=f"Service order {order.id}: {order.subject}"[:200],
            starts_at=starts_at, ends_at=ends_at, status="planned", owner_id=resource.user_id,
            account_id=order.account_id, service_order_id=order.id,
            description=note or None)
        booking = uow.update(booking, activity_id=activity.id)
        if not uow.query("order_technician").where(order_id=order.id,
                                                   user_id=resource.user_id).count():
            uow.create("order_technician", order_id=order.id, user_id=resource.user_id)
    if order.status == "new":
        window = {}
        if order.window_start is None:
            window = {"window_start": starts_at, "window_end": order.window_end or ends_at}
        uow.move(order, "scheduled", **window)
    return booking


def book_activity(uow: UnitOfWork, resource_id: int, activity_id: int, *,
                  travel_minutes: int = 0, note: str = "") -> Record:
    """Book *resource_id* for the time of activity *activity_id* (one that needs a
    technician) and add the technician's user to its participants.

    :raises BookingRefused: when a hard constraint is broken (nothing is written).
    """
    def run() -> Record:
        activity = uow.get("activity", activity_id)
        resource = uow.get("resource", resource_id)
        made = uow.create("booking", resource_id=resource_id, activity_id=activity.id,
                          starts_at=activity.starts_at, ends_at=activity.ends_at,
                          travel_minutes=travel_minutes, note=note or None)
        people = list(activity.participants or [])
        if resource.user_id and {"user_id": resource.user_id} not in people:
            uow.update(activity, participants=[*people, {"user_id": resource.user_id}])
        return made
    return uow.atomic(run)


def unbook(uow: UnitOfWork, order_id: int) -> int:
    """Remove the bookings of *order_id* and cancel their activities; the number removed."""
    rows = uow.select("booking", ("id", "activity_id")).where(order_id=order_id).all()
    activities = [r["activity_id"] for r in rows if r["activity_id"]]
    if activities:
        uow.update_where("activity", ("id", "in", activities), set={"status": "cancelled"})
    if rows:
        uow.delete_where("booking", ("id", "in", [r["id"] for r in rows]))
    return len(rows)
