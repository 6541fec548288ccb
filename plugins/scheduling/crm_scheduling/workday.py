"""Each resource's day, and the bookings that no longer fit.

:func:`board` tells each technician where to go on a day: the bookings in time order, each with
the order, the customer, the site and the travel before it. :func:`conflicts` checks the
bookings of a period again against the hard constraints (an absence or holiday recorded since,
skills changed, a window moved), and :func:`replan` takes the orders of conflicting bookings
off their resource and proposes them again.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from crm_scheduling import booking as bookings
from crm_scheduling import planning
from crm_scheduling.resources import day_span

if TYPE_CHECKING:
    from crmcore import UnitOfWork

    from crm_scheduling.solver import Proposal

__all__ = ["board", "conflicts", "conflicting_orders", "replan"]

_FIELDS = ("id", "resource_id", "order_id", "starts_at", "ends_at", "travel_minutes")


def board(uow: UnitOfWork, day: dt.date) -> list[str]:
    """The day of every active resource as text, one block per resource."""
    lo, hi = day_span(day)
    rows = uow.select("booking", (*_FIELDS, "order_id.subject", "order_id.account_id.name",
                                  "order_id.site_address", "order_id.priority")).where(
        ("starts_at", "<", hi), ("ends_at", ">", lo)).order_by("starts_at").all()
    out = []
    for r in uow.select("resource", ("id", "name", "home_address")).where(
            active=True).order_by("name").all():
        mine = [b for b in rows if b["resource_id"] == r["id"]]
        jobs = "1 job" if len(mine) == 1 else f"{len(mine)} jobs"
        out.append(f"{r['name']} ({jobs}) from {r['home_address'] or 'home base'}")
        for b in mine:
            site = " ".join((b["order_id.site_address"] or "").split()) or "site not given"
            out.append(f"  {b['starts_at']:%H:%M}-{b['ends_at']:%H:%M} order {b['order_id']} "
                       f"({b['order_id.priority']}) {b['order_id.subject']} - "
                       f"{b['order_id.account_id.name'] or ''}, {site}; "
                       f"{b['travel_minutes'] or 0} min travel before")
    return out


def _bookings(uow: UnitOfWork, first: dt.date, last: dt.date) -> list[dict]:
    return uow.select("booking", _FIELDS).where(
        ("starts_at", "<", day_span(last)[1]), ("ends_at", ">", day_span(first)[0])
    ).order_by("starts_at").all()


def conflicts(uow: UnitOfWork, first: dt.date, last: dt.date) -> list[str]:
    """One line per broken hard constraint of the bookings from *first* to *last*."""
    rows = _bookings(uow, first, last)
    found = bookings.conflicts(uow, rows, ignore=[r["id"] for r in rows])
    return [f"booking {row['id']} (order {row['order_id']}): {reason}"
            for row, reasons in zip(rows, found, strict=True) for reason in reasons]


def conflicting_orders(uow: UnitOfWork, first: dt.date, last: dt.date) -> list[int]:
    """The orders whose bookings from *first* to *last* break a hard constraint now."""
    rows = _bookings(uow, first, last)
    found = bookings.conflicts(uow, rows, ignore=[r["id"] for r in rows])
    return sorted({r["order_id"] for r, why in zip(rows, found, strict=True)
                   if why and r["order_id"]})


def replan(uow: UnitOfWork, first: dt.date, last: dt.date) -> tuple[list[int], Proposal]:
    """Unbook the orders whose bookings conflict (after an absence, say) and propose them
    again; the orders unbooked and the proposal (accept it with
    :func:`crm_scheduling.planning.accept`)."""
    orders = conflicting_orders(uow, first, last)
    for order_id in orders:
        bookings.unbook(uow, order_id)
    return orders, planning.propose(uow, first, last)
