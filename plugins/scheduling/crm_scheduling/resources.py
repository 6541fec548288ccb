"""Resources as the planner sees them: skills, territory, home base, working time and busy time
over a period, read set-based (a few queries for all resources, none per resource).

Working time is the resource's shift (``day_start`` to ``day_end`` in its own time zone) within
the opening hours of its business calendar (``business_calendar`` of :mod:`crmcore.calendars`:
weekly hours in the calendar's time zone and holidays, shared with the help desk's SLA clocks
and the service plugin's planned visits; Monday to Friday without one, never on a calendar
without hours), minus its absences. Busy
time is its bookings (travel before them included) and the planned activities with a start and
an end that its user owns and no booking made.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crm_service.fieldtypes import parse_clock
from crm_service.planned import wall_clock
from crmcore.calendars import BusinessCalendar, load_calendars

from crm_scheduling.intervals import Span, merge, subtract

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.money import Money

__all__ = ["Resource", "day_span", "load_resources", "territory_parents", "working_spans"]

@attrs.frozen
class Resource:
    """One resource over a period: who or what it is, its working and busy time."""

    id: int
    name: str
    kind: str
    user_id: int | None
    team_id: int | None
    territory_id: int | None
    latitude: float | None
    longitude: float | None
    skills: Mapping[str, int]
    cost_per_hour: Money | None
    timezone: str
    working: Sequence[Span] = ()
    absent: Sequence[Span] = ()
    busy: Sequence[Span] = ()
    bookings: Sequence[Mapping[str, Any]] = ()

    @property
    def free(self) -> list[Span]:
        """Working time not busy."""
        return subtract(self.working, self.busy)

    def __repr__(self) -> str:
        return f"<Resource id={self.id} {self.name!r}>"


def day_span(day: dt.date, zone: dt.tzinfo = dt.UTC) -> Span:
    """Midnight to midnight of *day* in *zone*."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)


def working_spans(row: Mapping[str, Any], calendar: BusinessCalendar | None, first: dt.date,
                  last: dt.date) -> list[Span]:
    """The working hours of a resource (*row*: ``day_start``, ``day_end``, ``timezone``) on
    the days from *first* to *last*: its shift each day, within the opening hours of its
    *calendar* (holidays and closed weekdays give none); without a calendar, its shift from
    Monday to Friday."""
    zone = zoneinfo.ZoneInfo(row["timezone"] or "UTC")
    start = parse_clock(row["day_start"] or "08:00")
    end = parse_clock(row["day_end"] or "17:00")
    spans = []
    day = first
    while day <= last:
        if end > start and (calendar is not None or day.weekday() < 5):
            spans.append((wall_clock(day, start, zone), wall_clock(day, end, zone)))
        day += dt.timedelta(days=1)
    if calendar is None:
        return spans
    opening = calendar.spans(first - dt.timedelta(days=1), last + dt.timedelta(days=1))
    return subtract(spans, subtract(spans, opening))


def _calendars(uow: UnitOfWork, ids: Iterable[int], first: dt.date,
               last: dt.date) -> dict[int, BusinessCalendar]:
    with uow.system_scope("a resource works the hours of its calendar"):
        return load_calendars(uow, ids, first=first - dt.timedelta(days=1),
                              last=last + dt.timedelta(days=1), skip_empty=True)


def _in_chunks(uow: UnitOfWork, entity: str, fields: tuple[str, ...], key: str,
               ids: Sequence[int], *conditions: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), 500):
        rows += uow.select(entity, fields).where((key, "in", list(ids[start:start + 500])),
                                                 *conditions).all()
    return rows


def load_resources(uow: UnitOfWork, first: dt.date, last: dt.date, *,
                   ids: Iterable[int] | None = None, kinds: Iterable[str] | None = None,
                   exclude_orders: Iterable[int] = ()) -> dict[int, Resource]:
    """The active resources (or those of *ids*) with their time from *first* to *last*
    (whole days in UTC, a day either side for time zones).

    :param exclude_orders: orders whose bookings do not count as busy (when replanning them).
    """
    query = uow.select("resource", ("id", "name", "kind", "user_id", "team_id", "territory_id",
                                    "home_latitude", "home_longitude", "calendar_id",
                                    "day_start", "day_end", "timezone", "cost_per_hour"))
    query = query.where(active=True)
    if ids is not None:
        query = query.where(("id", "in", sorted(set(ids)) or [0]))
    if kinds is not None:
        query = query.where(("kind", "in", list(kinds)))
    rows = query.order_by("id").all()
    if not rows:
        return {}
    rids = [r["id"] for r in rows]
    lo = day_span(first - dt.timedelta(days=1))[0]
    hi = day_span(last + dt.timedelta(days=1))[1]
    calendars = _calendars(uow, [r["calendar_id"] for r in rows if r["calendar_id"]],
                           first - dt.timedelta(days=1), last + dt.timedelta(days=1))
    skills: dict[int, dict[str, int]] = {i: {} for i in rids}
    for r in _in_chunks(uow, "resource_skill", ("resource_id", "skill", "level"),
                        "resource_id", rids):
        skills[r["resource_id"]][r["skill"]] = r["level"]
    absent: dict[int, list[Span]] = {i: [] for i in rids}
    for r in _in_chunks(uow, "absence", ("resource_id", "starts_at", "ends_at"), "resource_id",
                        rids, ("starts_at", "<", hi), ("ends_at", ">", lo)):
        absent[r["resource_id"]].append((r["starts_at"], r["ends_at"]))
    busy: dict[int, list[Span]] = {i: [] for i in rids}
    bookings: dict[int, list[dict[str, Any]]] = {i: [] for i in rids}
    skip = set(exclude_orders)
    booked_activities: set[int] = set()
    for r in _in_chunks(uow, "booking", ("id", "resource_id", "order_id", "activity_id",
                                         "starts_at", "ends_at", "travel_minutes"),
                        "resource_id", rids, ("starts_at", "<", hi), ("ends_at", ">", lo)):
        if r["activity_id"]:
            booked_activities.add(r["activity_id"])
        if r["order_id"] in skip:
            continue
        travel = dt.timedelta(minutes=r["travel_minutes"] or 0)
        busy[r["resource_id"]].append((r["starts_at"] - travel, r["ends_at"]))
        bookings[r["resource_id"]].append(r)
    by_user = {r["user_id"]: r["id"] for r in rows if r["user_id"]}
    if by_user:
        for r in _in_chunks(uow, "activity", ("id", "owner_id", "participants", "starts_at",
                                              "ends_at"), "owner_id", sorted(by_user),
                            ("starts_at", "<", hi), ("ends_at", ">", lo),
                            ("status", "=", "planned")):
            if r["id"] not in booked_activities and r["ends_at"] and r["starts_at"]:
                busy[by_user[r["owner_id"]]].append((r["starts_at"], r["ends_at"]))
    found = {}
    for r in rows:
        calendar = calendars.get(r["calendar_id"])
        working = [] if r["calendar_id"] and calendar is None else working_spans(
            r, calendar, first - dt.timedelta(days=1), last + dt.timedelta(days=1))
        gone = merge(absent[r["id"]])
        found[r["id"]] = Resource(
            id=r["id"], name=r["name"], kind=r["kind"], user_id=r["user_id"],
            team_id=r["team_id"], territory_id=r["territory_id"],
            latitude=_float(r["home_latitude"]), longitude=_float(r["home_longitude"]),
            skills=skills[r["id"]], cost_per_hour=r["cost_per_hour"],
            timezone=r["timezone"] or "UTC",
            working=subtract(working, gone), absent=gone, busy=merge(busy[r["id"]]),
            bookings=sorted(bookings[r["id"]], key=lambda b: b["starts_at"]))
    return found


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def territory_parents(uow: UnitOfWork) -> dict[int, int | None]:
    """``{territory id: parent id}`` of every territory (a small table, read whole)."""
    return {r["id"]: r["parent_id"] for r in uow.select("territory", ("id", "parent_id")).all()}
