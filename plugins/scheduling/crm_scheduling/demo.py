"""The scheduling chapter of ``crm demo`` (``crm_demo``).

On the company the core's chapters built and the field service chapter's orders: three
technicians (the first users) with skills, territories and home bases on a workshop calendar,
one on a training course on Wednesday afternoon; a week of service orders from next Monday
(three day-long low-priority inspections, repairs needing skills, and whatever service orders
and planned visits fall in the week); a greedy proposal, explained and accepted into the
technicians' calendars; each technician's Monday; an urgent outage on Monday at 10:00
dispatched at once by displacing an inspection to another day; a booking on top of another
refused with its reason; and the week's capacity per team and skill.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.calendars import WEEKDAYS, create_calendar

from crm_scheduling import booking, capacity, planning, watch, workday
from crm_scheduling.demand import load_demand
from crm_scheduling.errors import BookingRefused

if TYPE_CHECKING:
    from crmcore import Crm
    from crmcore.demo import Story

__all__ = ["tell"]

_TECHNICIANS = (
    ("North", "0.00", "0.00", {"hydraulics": 4, "electrical": 2}),
    ("North", "0.05", "0.10", {"electrical": 4}),
    ("South", "-0.30", "0.20", {"hydraulics": 3, "gas": 3}),
)
_REPAIRS = (  # day offset, subject, skill, level, minutes, latitude, longitude, priority
    (1, "Pump pressure drops", "hydraulics", 3, 90, "0.02", "0.04", "high"),
    (0, "Cabinet trips the breaker", "electrical", 3, 60, "0.06", "0.12", "normal"),
    (1, "Boiler ignition fault", "gas", 2, 120, "-0.28", "0.18", "high"),
    (1, "Valve replacement", "hydraulics", 2, 120, "-0.10", "0.10", "normal"),
    (2, "Lighting circuit check", "electrical", 1, 60, "0.04", "0.02", "low"),
    (3, "Heat exchanger service", "hydraulics", 3, 180, "-0.25", "0.25", "normal"),
    (4, "Control board swap", "electrical", 3, 90, "0.08", "0.06", "high"),
)


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def tell(crm: Crm, echo: Any, story: Story) -> None:
    """Tell the scheduling chapter."""
    if len(story.users) < 3 or not story.accounts:
        echo("Scheduling: skipped (the demo company has fewer than three users or no accounts)")
        return
    monday = story.today + dt.timedelta(days=7 - story.today.weekday())
    friday = monday + dt.timedelta(days=4)
    users = list(story.users.values())[:3]
    accounts = list(story.accounts.values())
    echo("")
    echo("Scheduling")
    with crm.unit_of_work() as uow:
        resources = _resources(uow, users, monday)
        echo(f"  {len(resources)} technicians on the workshop calendar, 08:00-17:00 UTC; "
             f"{resources[2].name} in training on {monday + dt.timedelta(days=2)} afternoon")
        orders = _orders(uow, accounts, monday)
        demand = load_demand(uow, monday, friday)
        echo(f"  week of {monday}: {len(demand)} orders to place, {len(orders)} of them "
             "opened for the week")
        proposal = planning.propose(uow, monday, friday)
        placed = len(proposal.assignments) - len(proposal.unassigned)
        echo(f"  greedy proposal: {placed} placed, {len(proposal.unassigned)} not placed, "
             f"{proposal.total_km:.0f} km of travel")
        first_repair = next(a for a in proposal.assignments if a.demand.id == orders[3])
        echo(f"  order {first_repair.demand.id} ({first_repair.demand.subject}): "
             f"{first_repair.reason}")
        made = planning.accept(uow, proposal)
        echo(f"  accepted: {len(made)} bookings, each a meeting on its technician's calendar")
        for line in workday.board(uow, monday):
            echo(f"  {line}")
        outage = uow.create("service_order", subject="Production line down",
                            account_id=accounts[0].id, priority="urgent",
                            duration_minutes=120, latitude="0.01", longitude="0.01",
                            window_start=_at(monday, 10), window_end=_at(monday, 17))
        uow.create("order_skill", order_id=outage.id, skill="hydraulics", min_level=3)
        dispatched = planning.dispatch(uow, outage.id, _at(monday, 10))
        a = dispatched.assignment
        names = {r.id: r.name for r in resources}
        echo(f"  urgent order {outage.id} at {monday} 10:00: {names.get(a.resource_id)} from "
             f"{a.starts_at:%H:%M}" if a.starts_at else f"  urgent order {outage.id}: no one")
        for move in dispatched.moves:
            where = (f"to {names[move.resource_id]} on {move.starts_at:%Y-%m-%d %H:%M}"
                     if move.resource_id else "unplaced, to plan again")
            echo(f"    displaces order {move.demand.id} ({move.demand.subject}) {where}")
        planning.accept(uow, dispatched.proposal, dispatched.unbook)
        try:
            booking.book(uow, resources[0].id, orders[4], _at(monday, 10), _at(monday, 11))
        except BookingRefused as refused:
            echo(f"  refused: {refused.reasons[0]}")
        _sick_day(uow, echo, monday + dt.timedelta(days=1))
        rows = capacity.capacity(uow, monday, monday + dt.timedelta(days=6), by="week")
        for row in rows:
            if row.group in ("team", "skill"):
                echo(f"  capacity {row.period} {row.group} {row.name}: "
                     f"{row.working / 60:.0f} h working, {row.booked / 60:.1f} h booked, "
                     f"{row.demand / 60:.1f} h unplaced demand")
        uow.commit()


def _sick_day(uow: Any, echo: Any, day: dt.date) -> None:
    """A technician booked on *day* calls in sick: the absence flags their bookings at once,
    and replanning moves those orders."""
    first = uow.select("booking", ("resource_id", "resource_id.name")).where(
        ("starts_at", ">=", _at(day, 0)), ("starts_at", "<", _at(day + dt.timedelta(days=1), 0)),
        ("order_id", "is not null")).order_by("starts_at").first()
    if first is None:
        return
    uow.create("absence", resource_id=first["resource_id"], kind="sickness",
               starts_at=_at(day, 0), ends_at=_at(day + dt.timedelta(days=1), 0))
    flagged = watch.flagged(uow, day, day)
    echo(f"  {first['resource_id.name']} off sick on {day}: {len(flagged)} booking(s) flagged "
         f"at once ({flagged[0]['conflict'].splitlines()[0]})")
    moved, proposal = workday.replan(uow, day, day)
    planning.accept(uow, proposal)
    placed = len(proposal.assignments) - len(proposal.unassigned)
    echo(f"  replanned: {len(moved)} order(s) taken off, {placed} placed again, "
         f"{len(proposal.unassigned)} left to plan (no one free in its window), "
         f"{len(workday.conflicts(uow, day, day))} conflicts left")


def _resources(uow: Any, users: list[Any], monday: dt.date) -> list[Any]:
    calendar_id = create_calendar(uow, "Workshop", dict.fromkeys(WEEKDAYS[:5], ["07:00-19:00"]),
                                  description="Opening hours; each shift lies within them")
    team = uow.create("team", name="Field technicians")
    places = {name: uow.create("territory", name=name).id for name in ("North", "South")}
    made = []
    for user, (place, lat, lon, skills) in zip(users, _TECHNICIANS, strict=False):
        resource = uow.create("resource", name=user.full_name or user.username,
                              user_id=user.id, team_id=team.id, territory_id=places[place],
                              home_latitude=lat, home_longitude=lon, calendar_id=calendar_id,
                              cost_per_hour="55.00 " + uow.crm.settings.currency)
        uow.create_many("resource_skill", [{"resource_id": resource.id, "skill": s,
                                            "level": lvl} for s, lvl in skills.items()])
        made.append(resource)
    uow.create("absence", resource_id=made[2].id, kind="training",
               starts_at=_at(monday + dt.timedelta(days=2), 12),
               ends_at=_at(monday + dt.timedelta(days=2), 17))
    uow.create("resource", name="Service van 1", kind="vehicle", calendar_id=calendar_id)
    return made


def _orders(uow: Any, accounts: list[Any], monday: dt.date) -> list[int]:
    rows = [{"subject": f"Annual inspection {i + 1}", "account_id": accounts[i % len(accounts)].id,
             "priority": "low", "duration_minutes": 480, "window_start": _at(monday, 8),
             "window_end": _at(monday + dt.timedelta(days=2), 17)} for i in range(3)]
    rows += [{"subject": subject, "account_id": accounts[(n + 1) % len(accounts)].id,
              "priority": priority, "duration_minutes": minutes, "latitude": lat,
              "longitude": lon, "window_start": _at(monday + dt.timedelta(days=day), 8),
              "window_end": _at(monday + dt.timedelta(days=day + 1), 17)}
             for n, (day, subject, _, _, minutes, lat, lon, priority) in enumerate(_REPAIRS)]
    made = uow.create_many("service_order", rows)
    uow.create_many("order_skill", [
        {"order_id": made[3 + n].id, "skill": skill, "min_level": level}
        for n, (_, _, skill, level, *_) in enumerate(_REPAIRS)])
    return [r.id for r in made]
