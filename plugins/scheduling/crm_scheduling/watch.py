"""Conflicts checked on every change: what a write elsewhere does to the bookings already made.

A booking is checked when it is written (:func:`crm_scheduling.booking.check_bookings` refuses
one that breaks a hard constraint). Bookings already made can break one later, when something
they rely on changes; the after-write hooks of the plugin call :func:`after_write` for

- an absence created, moved or removed (the bookings of its resource in its span, before and
  after the change);
- a skill of a resource added, lowered or removed (the resource's bookings of orders that need
  that skill);
- a resource's working time changed (``calendar_id``, ``day_start``, ``day_end``, ``timezone``,
  ``active``: all its bookings);
- the hours or holidays of a business calendar changed (the bookings of the resources on it;
  for a holiday, those of its day);
- the skills an order needs, or its time window, changed (the bookings of that order).

Only bookings still to be worked are looked at: those of orders that are ``new``,
``scheduled`` or ``in_progress``, and bookings without an order. Each is checked again against
every hard constraint (:func:`crm_scheduling.booking.conflicts`), and its ``conflict`` field
set to the reasons (one a line) or cleared, in the same unit of work as the change, by the
system on behalf of the user who made it (the audit says so). ``crm schedule conflicts`` and
:func:`flagged` list them; a booking moved by hand is checked as it is written and its flag
cleared.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crm_scheduling import booking as bookings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["OPEN_ORDER_STAGES", "RESOURCE_TIME_FIELDS", "WATCHED", "after_write", "flagged",
           "recheck", "values_of"]

log = logging.getLogger(__name__)

#: Orders whose bookings are still to be worked.
OPEN_ORDER_STAGES = ("new", "scheduled", "in_progress")
#: The fields of a resource that make its working time.
RESOURCE_TIME_FIELDS = ("calendar_id", "day_start", "day_end", "timezone", "active")
#: The entities whose writes are watched.
WATCHED = ("absence", "resource_skill", "resource", "business_hours", "business_holiday",
           "order_skill", "service_order")
_FIELDS = ("id", "resource_id", "order_id", "activity_id", "starts_at", "ends_at",
           "travel_minutes", "conflict")
_CHUNK = 500
_REASON = "bookings are checked again when what they rely on changes"

Span = tuple[dt.datetime, dt.datetime]


def after_write(uow: UnitOfWork, entity: str, rows: Sequence[Mapping[str, Any]],
                changed: Iterable[str] | None = None) -> int:
    """Check again the bookings a write of *entity* may have broken or mended, and flag them.

    :param rows: the values of the records written (before and after an update, both).
    :param changed: the fields an update changed (``None``: a create or a delete).
    :returns: the number of bookings whose flag changed.
    """
    if entity not in WATCHED or not rows:
        return 0
    changed = None if changed is None else set(changed)
    with uow.system_scope(_REASON):
        found = _affected(uow, entity, rows, changed)
        return recheck(uow, found) if found else 0


def _affected(uow: UnitOfWork, entity: str, rows: Sequence[Mapping[str, Any]],
              changed: set[str] | None) -> list[dict[str, Any]]:
    if entity == "absence":
        spans: dict[int, list[Span]] = {}
        for r in rows:
            spans.setdefault(r["resource_id"], []).append((r["starts_at"], r["ends_at"]))
        return _of_resources(uow, spans)
    if entity == "resource_skill":
        skills = sorted({r["skill"] for r in rows})
        needs = _chunks(uow, "order_skill", ("order_id",), "skill", skills)
        orders = {s["order_id"] for s in needs}
        found = _of_resources(uow, dict.fromkeys({r["resource_id"] for r in rows}))
        return [b for b in found if b["order_id"] in orders]
    if entity == "resource":
        if changed is not None and not changed & set(RESOURCE_TIME_FIELDS):
            return []
        return _of_resources(uow, dict.fromkeys({r["id"] for r in rows}))
    if entity in ("business_hours", "business_holiday"):
        calendars = sorted({r["calendar_id"] for r in rows})
        resources = [r["id"] for r in _chunks(uow, "resource", ("id",), "calendar_id", calendars)]
        if entity == "business_hours":
            return _of_resources(uow, dict.fromkeys(resources))
        days = [(dt.datetime.combine(r["day"], dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=1),
                 dt.datetime.combine(r["day"], dt.time(), tzinfo=dt.UTC) + dt.timedelta(days=2))
                for r in rows]
        return _of_resources(uow, {i: days for i in resources})
    if entity == "service_order" and changed is not None and not changed & {
            "window_start", "window_end"}:
        return []
    orders = sorted({r["order_id" if entity == "order_skill" else "id"] for r in rows})
    return _open(uow, _chunks(uow, "booking", _FIELDS, "order_id", orders))


def _chunks(uow: UnitOfWork, entity: str, fields: tuple[str, ...], key: str,
            values: Sequence[Any], *conditions: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    values = [v for v in values if v is not None]
    for start in range(0, len(values), _CHUNK):
        found += uow.select(entity, fields).where((key, "in", list(values[start:start + _CHUNK])),
                                                  *conditions).all()
    return found


def _of_resources(uow: UnitOfWork, spans: Mapping[int, list[Span] | None]) -> list[dict[str, Any]]:
    """The open bookings of the resources of *spans* (all of them, or those overlapping one of
    the resource's spans)."""
    ids = sorted(i for i in spans if i is not None)
    conditions: list[Any] = []
    bounded = [s for i in ids for s in spans[i] or ()]
    if bounded and all(spans[i] for i in ids):
        conditions = [("starts_at", "<", max(e for _, e in bounded)),
                      ("ends_at", ">", min(s for s, _ in bounded))]
    rows = _chunks(uow, "booking", _FIELDS, "resource_id", ids, *conditions)
    rows = [b for b in rows if not spans[b["resource_id"]] or any(
        b["starts_at"] - dt.timedelta(minutes=b["travel_minutes"] or 0) < e and b["ends_at"] > s
        for s, e in spans[b["resource_id"]] or ())]
    return _open(uow, rows)


def _open(uow: UnitOfWork, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    orders = sorted({b["order_id"] for b in rows if b["order_id"]})
    live = {o["id"] for o in _chunks(uow, "service_order", ("id",), "id", orders,
                                     ("status", "in", list(OPEN_ORDER_STAGES)))}
    return sorted((b for b in rows if not b["order_id"] or b["order_id"] in live),
                  key=lambda b: (b["resource_id"], b["starts_at"]))


def recheck(uow: UnitOfWork, rows: Sequence[Mapping[str, Any]]) -> int:
    """Check *rows* (bookings with their ``conflict``) against every hard constraint and write
    the flags that changed, one set-based update per distinct reason; the number changed."""
    found = bookings.conflicts(uow, list(rows), ignore=[r["id"] for r in rows])
    updates: dict[str | None, list[int]] = {}
    for row, reasons in zip(rows, found, strict=True):
        text = "\n".join(reasons)[:4000] or None
        if text != row.get("conflict"):
            updates.setdefault(text, []).append(row["id"])
    with uow.system_scope(_REASON):
        for text, ids in updates.items():
            uow.update_where("booking", ("id", "in", ids), set={"conflict": text})
    changed = sum(len(ids) for ids in updates.values())
    if changed:
        log.info("bookings flagged or cleared after a change: %s", changed)
    return changed


def flagged(uow: UnitOfWork, first: dt.date | None = None,
            last: dt.date | None = None) -> list[dict[str, Any]]:
    """The bookings flagged as conflicting (from *first* to *last* when given), in time order."""
    query = uow.select("booking", _FIELDS).where(("conflict", "is not null"))
    if first is not None:
        query = query.where(("ends_at", ">", dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)))
    if last is not None:
        query = query.where(("starts_at", "<", dt.datetime.combine(
            last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)))
    return query.order_by("starts_at").all()


def values_of(records: Iterable[Record]) -> list[dict[str, Any]]:
    """The values of *records* with their ids, as :func:`after_write` takes them."""
    return [{**r.values, "id": r.id} for r in records]
