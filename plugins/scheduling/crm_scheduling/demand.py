"""Demand: what needs a resource's time over a period.

Service orders still to do (``new`` or ``scheduled``) whose time window meets the period (an
order without a window wants the whole period): the skills they need with minimum levels
(``order_skill``), their duration, window, site coordinates, territory and priority.
Occurrences of service plans that made no service order (``create_orders`` off) are demand of
their plan's duration in their window, without skills. Planned activities marked
``needs_technician`` (a visit, a meeting on site) are demand at their own time, until a booking
names them. Activities a technician's user holds in the period are demand already placed:
they count as busy time of that resource (see :mod:`crm_scheduling.resources`), and
:func:`load_activities` lists them.

An order's territory is its own ``territory_id``; without one, with the marketing plugin
enabled, it is the territory naming the geography of the order's account or the nearest of
that geography's ancestors a territory names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from crm_scheduling.resources import day_span

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["PRIORITY_RANK", "Demand", "load_activities", "load_demand", "order_demand"]

PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
OPEN_STAGES = ("new", "scheduled")


@attrs.frozen
class Demand:
    """One piece of work to place: an order or a plan occurrence."""

    source: str  # "service_order" or "plan_occurrence"
    id: int
    subject: str
    priority: str
    minutes: int
    window_start: dt.datetime
    window_end: dt.datetime
    latitude: float | None = None
    longitude: float | None = None
    territory_id: int | None = None
    skills: Mapping[str, int] = attrs.field(factory=dict)
    booked: bool = False

    @property
    def rank(self) -> tuple[int, dt.datetime, int]:
        """The order demand is placed in: priority, then the earliest deadline."""
        return (PRIORITY_RANK.get(self.priority, 2), self.window_end, self.id)

    def __repr__(self) -> str:
        return f"<Demand {self.source} {self.id} {self.priority} {self.minutes}min>"


def _geography_territories(uow: UnitOfWork, account_ids: Iterable[int]) -> dict[int, int]:
    """``{account id: territory id}`` through the marketing geography tree."""
    wanted = sorted(set(account_ids))
    if not wanted or "geography" not in uow.crm.registry.entity_names:
        return {}
    named = {r["geography_id"]: r["id"] for r in uow.select(
        "territory", ("id", "geography_id")).where(("geography_id", "is not null")).all()}
    if not named:
        return {}
    parents = {r["id"]: r["parent_id"]
               for r in uow.select("geography", ("id", "parent_id")).all()}
    found = {}
    for r in uow.select("account", ("id", "geography_id")).where(("id", "in", wanted)).all():
        node, seen = r["geography_id"], set()
        while node is not None and node not in named and node not in seen:
            seen.add(node)
            node = parents.get(node)
        if node in named:
            found[r["id"]] = named[node]
    return found


def order_demand(uow: UnitOfWork, rows: list[dict[str, Any]], first: dt.datetime,
                 last: dt.datetime, default_minutes: int) -> list[Demand]:
    """Demand of service order *rows* (as :func:`load_demand` reads them)."""
    ids = [r["id"] for r in rows]
    skills: dict[int, dict[str, int]] = {i: {} for i in ids}
    booked: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for s in uow.select("order_skill", ("order_id", "skill", "min_level")).where(
                ("order_id", "in", chunk)).all():
            skills[s["order_id"]][s["skill"]] = s["min_level"]
        booked |= {b["order_id"] for b in uow.select("booking", ("order_id",)).where(
            ("order_id", "in", chunk)).all()}
    places = _geography_territories(
        uow, [r["account_id"] for r in rows if not r["territory_id"]])
    return [Demand(
        "service_order", r["id"], r["subject"], r["priority"] or "normal",
        r["duration_minutes"] or default_minutes, r["window_start"] or first,
        r["window_end"] or last, _f(r["latitude"]), _f(r["longitude"]),
        r["territory_id"] or places.get(r["account_id"]), skills[r["id"]], r["id"] in booked)
        for r in rows]


_ORDER_FIELDS = ("id", "subject", "priority", "duration_minutes", "window_start",
                 "window_end", "latitude", "longitude", "territory_id", "account_id", "status")


def load_demand(uow: UnitOfWork, first: dt.date, last: dt.date, *, default_minutes: int = 60,
                order_ids: Iterable[int] | None = None) -> list[Demand]:
    """The demand of the days from *first* to *last* (UTC), best placed first."""
    lo, hi = day_span(first)[0], day_span(last)[1]
    query = uow.select("service_order", _ORDER_FIELDS)
    if order_ids is not None:
        query = query.where(("id", "in", sorted(set(order_ids)) or [0]))
    else:
        query = query.where(("status", "in", list(OPEN_STAGES)),
                            {"any": [("window_start", "is null"), ("window_start", "<", hi)]},
                            {"any": [("window_end", "is null"), ("window_end", ">", lo)]})
    demand = order_demand(uow, query.all(), lo, hi, default_minutes)
    if order_ids is None:
        occurrences = uow.select("plan_occurrence", (
            "id", "key", "window_start", "window_end", "plan_id.duration_minutes",
            "plan_id.name")).where(
            ("status", "in", ["planned", "moved"]),
            ("window_start", "<", hi), ("window_end", ">", lo)).all()
        ids = [r["id"] for r in occurrences]
        with_order: set[int] = set()
        for start in range(0, len(ids), 500):
            with_order |= {r["occurrence_id"] for r in uow.select(
                "service_order", ("occurrence_id",)).where(
                ("occurrence_id", "in", ids[start:start + 500])).all()}
        demand += [Demand("plan_occurrence", r["id"], f"{r['plan_id.name']} ({r['key']})",
                          "normal", r["plan_id.duration_minutes"] or default_minutes,
                          r["window_start"], r["window_end"])
                   for r in occurrences if r["id"] not in with_order]
        demand += _activity_demand(uow, lo, hi)
    return sorted(demand, key=lambda d: d.rank)


def _activity_demand(uow: UnitOfWork, lo: dt.datetime, hi: dt.datetime) -> list[Demand]:
    rows = uow.select("activity", ("id", "subject", "starts_at", "ends_at")).where(
        needs_technician=True, status="planned").where(
        ("starts_at", "<", hi), ("ends_at", ">", lo)).all()
    ids = [r["id"] for r in rows]
    booked: set[int] = set()
    for start in range(0, len(ids), 500):
        booked |= {b["activity_id"] for b in uow.select("booking", ("activity_id",)).where(
            ("activity_id", "in", ids[start:start + 500])).all()}
    return [Demand("activity", r["id"], r["subject"], "normal",
                   max(1, int((r["ends_at"] - r["starts_at"]).total_seconds() // 60)),
                   r["starts_at"], r["ends_at"], booked=r["id"] in booked)
            for r in rows if r["ends_at"] > r["starts_at"]]


def load_activities(uow: UnitOfWork, user_ids: Iterable[int], first: dt.date,
                    last: dt.date) -> list[dict[str, Any]]:
    """The planned activities with a start and an end the users of *user_ids* own in the
    days from *first* to *last*: time already placed on their calendars."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    return uow.select("activity", ("id", "kind", "subject", "owner_id", "starts_at",
                                   "ends_at")).where(
        ("owner_id", "in", wanted), ("status", "=", "planned"),
        ("starts_at", "<", day_span(last)[1]), ("ends_at", ">", day_span(first)[0]),
    ).order_by("starts_at").all()


def _f(value: Any) -> float | None:
    return None if value is None else float(value)
