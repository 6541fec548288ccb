"""Planned service: occurrences of plans by their recurrence rule, over a rolling horizon.

A plan's rule (RFC 5545, with its EXDATE exclusions) gives the rule dates from ``starts_on``
(:func:`crm_service.recurrence.rule_dates`: common rules by arithmetic, the others by
python-dateutil). Each rule date becomes one occurrence, keyed ``<plan>:<date>``: the
key is a unique column, so a rerun, or a second worker racing the first, never adds the same
occurrence twice (the racing insert fails and its unit of work rolls back whole). A stored
exception skips a date or moves it; a date falling on a day off or a holiday of the plan's
business calendar (:mod:`crmcore.calendars`: a day without hours or a holiday) shifts to
the next (or previous) working day. The visit starts at the plan's
wall-clock time in its time zone on the day it lands on, whatever the UTC offset that day
(a time that does not exist on a spring-forward day moves on by the gap); the window opens
``early_days`` before and closes ``late_days`` (plus the duration) after.

:func:`generate` walks the active plans in pages of 500 and reads, per page, only what lies
within the horizon (holidays, exceptions, occurrences already there): nothing of the past,
whatever the number of past occurrences and orders. :func:`generate_in_batches` does the same
in a unit of work per page, committed as it goes, so its memory is that of one page whatever
the volume. :func:`preview` computes the same without writing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.calendars import BusinessCalendar, load_calendars
from crmcore.errors import ValidationError
from crmcore.fields import timezone_named

from crm_service.entities import WEEKDAYS
from crm_service.fieldtypes import parse_clock
from crm_service.recurrence import rule_dates
from crm_service.settings import service_settings

if TYPE_CHECKING:
    from crmcore import Actor, Crm, UnitOfWork
    from crmcore.records import Record

__all__ = [
    "Calendar",
    "GenerateResult",
    "Occurrence",
    "generate",
    "generate_in_batches",
    "generate_page",
    "key_change",
    "move_occurrence",
    "occurrence_key",
    "occurrences",
    "preview",
    "check_exception",
    "skip_occurrence",
    "wall_clock",
]

_PAGE = 500
_MAX_SHIFT = 31


def occurrence_key(plan_id: int, rule_date: dt.date) -> str:
    """The unique key of a plan's occurrence on a rule date."""
    return f"{plan_id}:{rule_date.isoformat()}"


def wall_clock(day: dt.date, time: dt.time, zone: dt.tzinfo) -> dt.datetime:
    """*time* on *day* in *zone*, as an aware time: the offset of that day, and a time that
    does not exist (the hour skipped in spring) moved on by the gap."""
    local = dt.datetime.combine(day, time, tzinfo=zone)
    return local.astimezone(dt.UTC).astimezone(zone)


def key_change(values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The change that gives an occurrence about to be written its key (``None`` when it has
    the right one already)."""
    key = occurrence_key(values["plan_id"], values["rule_date"])
    return None if values.get("key") == key else {"key": key}


@attrs.frozen
class Calendar:
    """Working weekdays and holidays (``{day: name}``), a day-only calendar for pure use.

    Stored plans run on the core's business calendars (:class:`crmcore.calendars.BusinessCalendar`,
    whose :meth:`~crmcore.calendars.BusinessCalendar.day_off` answers the same question: a day
    without hours, or a holiday, is off)."""

    workdays: frozenset[int] = frozenset(range(5))
    holidays: Mapping[dt.date, str] = attrs.field(factory=dict)

    def day_off(self, day: dt.date) -> str | None:
        """Why *day* is off (the holiday's name, or ``"day off"``), or ``None``."""
        if day in self.holidays:
            return self.holidays[day] or "holiday"
        if day.weekday() not in self.workdays:
            return f"{WEEKDAYS[day.weekday()]} is a day off"
        return None


@attrs.frozen
class Occurrence:
    """One visit of a plan, as generated or previewed."""

    rule_date: dt.date
    scheduled_on: dt.date
    starts_at: dt.datetime
    window_start: dt.datetime
    window_end: dt.datetime
    status: str = "planned"
    note: str = ""


def _shift(day: dt.date, calendar: Calendar | BusinessCalendar,
           direction: str) -> tuple[dt.date, str]:
    why = calendar.day_off(day)
    if why is None or direction == "none":
        return day, ""
    step = dt.timedelta(days=1 if direction == "next" else -1)
    moved = day
    for _ in range(_MAX_SHIFT):
        moved += step
        if calendar.day_off(moved) is None:
            return moved, f"shifted from {day} ({why})"
    return day, ""


def occurrences(
    plan: Mapping[str, Any], first: dt.date, last: dt.date, *,
    calendar: Calendar | BusinessCalendar | None = None,
    exceptions: Mapping[dt.date, Mapping[str, Any]] | None = None,
) -> list[Occurrence]:
    """The occurrences of *plan* (its field values) whose rule dates fall from *first* to
    *last*, skipped ones included with status ``skipped`` (pure: no database)."""
    return [Occurrence(*values) for values in _expand(plan, first, last, calendar, exceptions)]


#: The aware start of a wall-clock time on a day in a zone, cached: plans share days and zones.
_wall_clock = functools.lru_cache(maxsize=8192)(wall_clock)


def _expand(
    plan: Mapping[str, Any], first: dt.date, last: dt.date, calendar: Calendar | None,
    exceptions: Mapping[dt.date, Mapping[str, Any]] | None,
) -> Iterator[tuple[dt.date, dt.date, dt.datetime, dt.datetime, dt.datetime, str, str]]:
    """The fields of :class:`Occurrence`, in its order, for each occurrence of
    :func:`occurrences`."""
    if plan.get("ends_on") is not None:
        last = min(last, plan["ends_on"])
    zone = timezone_named(plan.get("timezone") or "UTC")
    time = parse_clock(plan.get("time_of_day") or "09:00")
    dates = rule_dates(plan["rule"], plan["starts_on"], time, first, last)
    if not dates:
        return
    early = dt.timedelta(days=plan.get("early_days") or 0)
    late = dt.timedelta(days=plan.get("late_days") or 0,
                        minutes=plan.get("duration_minutes") or 0)
    shift = plan.get("shift") or "next"
    exceptions = exceptions or {}
    for rule_date in dates:
        exception = exceptions.get(rule_date)
        status, note, day = "planned", "", rule_date
        if exception is not None and exception["action"] == "skip":
            status, note = "skipped", exception.get("reason") or "skipped"
        elif exception is not None and exception.get("moved_to") is not None:
            status, day = "moved", exception["moved_to"]
            note = f"moved from {rule_date}" + (f": {exception['reason']}"
                                                if exception.get("reason") else "")
        elif calendar is not None:
            day, note = _shift(rule_date, calendar, shift)
        starts = _wall_clock(day, time, zone)
        yield rule_date, day, starts, starts - early, starts + late, status, note[:200]


def _calendars(uow: UnitOfWork, ids: Iterable[int], first: dt.date,
               last: dt.date) -> dict[int, BusinessCalendar]:
    span = dt.timedelta(days=_MAX_SHIFT + 1)
    return load_calendars(uow, ids, first=first - span, last=last + span, skip_empty=True)


def _exceptions(uow: UnitOfWork, plan_ids: Sequence[int], first: dt.date,
                last: dt.date) -> dict[int, dict[dt.date, dict[str, Any]]]:
    found: dict[int, dict[dt.date, dict[str, Any]]] = {i: {} for i in plan_ids}
    rows = uow.select("plan_exception", ("plan_id", "day", "action", "moved_to", "reason")).where(
        ("plan_id", "in", list(plan_ids)), ("day", ">=", first), ("day", "<=", last)
    ).order_by("id").all()
    for row in rows:
        found[row["plan_id"]][row["day"]] = row
    return found


_PLAN_FIELDS = ("id", "name", "account_id", "contract_id", "unit_id", "rule", "starts_on",
                "ends_on", "time_of_day", "timezone", "duration_minutes", "early_days",
                "late_days", "horizon_days", "calendar_id", "shift", "create_orders")


def preview(uow: UnitOfWork, plan: Record | int, first: dt.date,
            last: dt.date) -> list[Occurrence]:
    """What :func:`generate` would make of *plan* from *first* to *last*, skipped
    occurrences included, writing nothing."""
    plan_id = plan if isinstance(plan, int) else plan.id
    row = uow.select("service_plan", _PLAN_FIELDS).where(id=plan_id).first()
    if row is None:
        raise ValidationError({"plan_id": [f"no service plan {plan_id!r}"]}, entity="service_plan")
    calendars = _calendars(uow, [row["calendar_id"]] if row["calendar_id"] else [], first, last)
    return occurrences(row, first, last, calendar=calendars.get(row["calendar_id"]),
                       exceptions=_exceptions(uow, [plan_id], first, last)[plan_id])


@attrs.define
class GenerateResult:
    """What one run of :func:`generate` created."""

    plans: int = 0
    occurrences: int = 0
    orders: int = 0

    def add(self, other: GenerateResult) -> None:
        """Count *other* (a page's result) in."""
        self.plans += other.plans
        self.occurrences += other.occurrences
        self.orders += other.orders

    def summary(self) -> str:
        return (f"{self.plans} plans: {self.occurrences} occurrences and {self.orders} "
                "service orders created")


def generate(
    uow: UnitOfWork, today: dt.date, *, plan_ids: Sequence[int] | None = None
) -> GenerateResult:
    """Create the occurrences (and their service orders) of active plans from *today* to
    each plan's horizon that do not exist yet, in *uow* (all or nothing when it commits).

    :param plan_ids: only these plans (default: every active plan).
    """
    result = GenerateResult()
    after: int | None = 0
    while after is not None:
        done, after = generate_page(uow, today, after=after, plan_ids=plan_ids)
        result.add(done)
    return result


def generate_page(
    uow: UnitOfWork, today: dt.date, *, after: int = 0, plan_ids: Sequence[int] | None = None,
    page: int = _PAGE,
) -> tuple[GenerateResult, int | None]:
    """:func:`generate` for the next *page* active plans by id after *after*.

    :returns: what it created, and the plan id the next page starts after (``None`` when
        this page was the last).
    """
    plans = _plan_page(uow, today, plan_ids, after, page)
    result = GenerateResult(plans=len(plans))
    if plans:
        _generate_page(uow, plans, today, service_settings(uow.crm).plan_horizon_days, result)
    return result, plans[-1]["id"] if len(plans) == page else None


def generate_in_batches(
    crm: Crm, today: dt.date, *, actor: Actor | str | None = None,
    plan_ids: Sequence[int] | None = None, page: int = _PAGE,
) -> GenerateResult:
    """:func:`generate` one page of *page* plans at a time, each in a unit of work of its own
    (as *actor*, default the system) committed before the next page is read, so the memory
    it takes stays that of one page however many plans and occurrences there are. A failure
    leaves the pages before it committed; a rerun goes on where it stopped (what exists is
    not made again).

    :returns: what all the pages created together.
    """
    result = GenerateResult()
    after: int | None = 0
    while after is not None:
        with crm.unit_of_work(actor) as uow:
            done, after = generate_page(uow, today, after=after, plan_ids=plan_ids, page=page)
            uow.commit()
        result.add(done)
    return result


def _plan_page(uow: UnitOfWork, today: dt.date, plan_ids: Sequence[int] | None, after: int,
               page: int) -> list[dict[str, Any]]:
    """The next *page* active plans by id after *after* still running on *today*."""
    select = uow.select("service_plan", _PLAN_FIELDS).where(
        ("id", ">", after), ("starts_on", "<=", today + dt.timedelta(days=3660)),
        {"any": [("ends_on", "is null"), ("ends_on", ">=", today)]}, active=True)
    if plan_ids is not None:
        select = select.where(("id", "in", list(plan_ids)))
    return select.order_by("id").limit(page).all()


def _generate_page(uow: UnitOfWork, plans: list[dict[str, Any]], today: dt.date,
                   default_horizon: int, result: GenerateResult) -> None:
    last = max(today + dt.timedelta(days=p["horizon_days"] or default_horizon) for p in plans)
    ids = [p["id"] for p in plans]
    calendars = _calendars(uow, [p["calendar_id"] for p in plans if p["calendar_id"]], today,
                           last)
    exceptions = _exceptions(uow, ids, today, last)
    existing = {(r["plan_id"], r["rule_date"]) for r in uow.select(
        "plan_occurrence", ("plan_id", "rule_date")).where(
        ("plan_id", "in", ids), ("rule_date", ">=", today), ("rule_date", "<=", last)).all()}
    rows: list[dict[str, Any]] = []
    owners: list[dict[str, Any]] = []
    for plan in plans:
        plan_id = plan["id"]
        until = today + dt.timedelta(days=plan["horizon_days"] or default_horizon)
        for rule_date, day, starts, opens, closes, status, note in _expand(
                plan, today, until, calendars.get(plan["calendar_id"]), exceptions[plan_id]):
            if status == "skipped" or (plan_id, rule_date) in existing:
                continue
            rows.append({"plan_id": plan_id, "key": f"{plan_id}:{rule_date.isoformat()}",
                         "rule_date": rule_date, "scheduled_on": day, "starts_at": starts,
                         "window_start": opens, "window_end": closes, "status": status,
                         "note": note or None})
            owners.append(plan)
    if not rows:
        return
    made = uow.create_many("plan_occurrence", rows, known={"service_plan": ids})
    result.occurrences += len(made)
    orders = [(occ, plan) for occ, plan in zip(made, owners, strict=True) if plan["create_orders"]]
    if not orders:
        return
    created = uow.create_many("service_order", [
        {"subject": f"{plan['name']} ({occ.scheduled_on})"[:200], "account_id": plan["account_id"],
         "contract_id": plan["contract_id"], "status": "scheduled",
         "window_start": occ.window_start, "window_end": occ.window_end, "occurrence_id": occ.id}
        for occ, plan in orders
    ])
    result.orders += len(created)
    units = [{"order_id": order.id, "unit_id": plan["unit_id"]}
             for order, (_, plan) in zip(created, orders, strict=True) if plan["unit_id"]]
    if units:
        uow.create_many("order_unit", units)


def _exception(uow: UnitOfWork, plan_id: int, day: dt.date, values: dict[str, Any]) -> Record:
    if uow.select("plan_exception").where(plan_id=plan_id, day=day).count():
        raise ValidationError(
            {"day": [f"plan {plan_id} already has an exception on {day}"]},
            entity="plan_exception")
    return uow.create("plan_exception", {"plan_id": plan_id, "day": day, **values})


def skip_occurrence(uow: UnitOfWork, plan_id: int, day: dt.date, reason: str = "") -> Record:
    """Skip the visit of rule date *day*: stored as an exception; an occurrence already
    generated is marked skipped and its open service order cancelled."""
    record = _exception(uow, plan_id, day, {"action": "skip", "reason": reason or None})
    occ = uow.query("plan_occurrence").where(plan_id=plan_id, rule_date=day).first()
    if occ is not None:
        uow.update(occ, status="skipped", note=(reason or "skipped")[:200])
        open_orders = uow.query("service_order").where(
            ("status", "in", ["new", "scheduled"]), occurrence_id=occ.id).all()
        if open_orders:
            uow.move_many(open_orders, "cancelled")
    return record


def move_occurrence(uow: UnitOfWork, plan_id: int, day: dt.date, to: dt.date,
                    reason: str = "") -> Record:
    """Move the visit of rule date *day* to *to*: stored as an exception; an occurrence
    already generated and its open service order move with it."""
    record = _exception(uow, plan_id, day, {"action": "move", "moved_to": to,
                                            "reason": reason or None})
    occ = uow.query("plan_occurrence").where(plan_id=plan_id, rule_date=day).first()
    if occ is not None:
        [moved] = [o for o in preview(uow, plan_id, day, day) if o.rule_date == day]
        occ = uow.update(occ, status="moved", scheduled_on=moved.scheduled_on,
                         starts_at=moved.starts_at, window_start=moved.window_start,
                         window_end=moved.window_end, note=moved.note)
        for order in uow.query("service_order").where(
                ("status", "in", ["new", "scheduled"]), occurrence_id=occ.id).all():
            uow.update(order, window_start=moved.window_start, window_end=moved.window_end)
    return record


def check_exception(values: Mapping[str, Any]) -> None:
    """A move names the day it moves to.

    :raises ValidationError: for a move without ``moved_to``.
    """
    if values.get("action") == "move" and values.get("moved_to") is None:
        raise ValidationError(
            {"moved_to": [f"moving the visit of {values.get('day')} needs the day it moves to"]},
            entity="plan_exception")
