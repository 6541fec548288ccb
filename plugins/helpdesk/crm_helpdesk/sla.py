"""SLA clocks of tickets: the policy that applies, the due times, pauses, and the breach sweep.

When a ticket is opened (or its priority or account changes) the most specific active
``sla_policy`` for its priority and its account's support tier gives two targets in business
minutes of the policy's calendar: the first response and the resolution. The due times are
computed once, in business time, and stored on the ticket with the moments a warning is due
(``warning_percent`` of the target), so the worker's check is plain SQL over time stamps:

:func:`sla_sweep` runs four set-based updates through the unit of work over all open tickets
(breaches, then warnings, of both targets: :meth:`crmcore.query.Select.update`, with the hooks,
versions and audit of any update), creates an ``sla_event`` per change with one
:meth:`~crmcore.storage.uow.UnitOfWork.create_many`, and enqueues the escalations
(:mod:`crm_helpdesk.escalation`) as a few jobs of many tickets each. No statement runs per
ticket.

While a ticket waits on the customer (``pending_customer``) its clocks stand still: on leaving
that stage, the business minutes spent waiting are added to ``sla_paused_minutes`` and the due
times move by as much.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.calendars import BusinessCalendar, load_calendars
from crmcore.errors import ValidationError
from crmcore.jobs import enqueue

from crm_helpdesk.entities import ACTIVE_STAGES, DONE_STAGES
from crm_helpdesk.scope import system_scope

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "ESCALATE_JOB",
    "QueueStatus",
    "SweepResult",
    "Targets",
    "clock_fields",
    "load_calendar",
    "sla_status",
    "sla_sweep",
    "targets_for",
]

log = logging.getLogger(__name__)

#: The job kind of escalations (payload: event, target, ticket_ids).
ESCALATE_JOB = "helpdesk.escalate"
#: Tickets per escalation job.
ESCALATION_BATCH = 200


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- calendars and policies ----------------------------------------------------------------------


def load_calendar(uow: UnitOfWork, calendar_id: int) -> BusinessCalendar:
    """The :class:`BusinessCalendar` of ``business_calendar`` *calendar_id* with its hours and
    holidays (:func:`crmcore.calendars.load_calendars`), read with the unit's rights (the help
    desk reads calendars, which are configuration, in its system scope).

    :raises NotFoundError: when there is no such calendar the actor may read.
    :raises ValidationError: when the calendar has no opening hours at all.
    """
    uow.get("business_calendar", calendar_id)
    return load_calendars(uow, [calendar_id])[calendar_id]


@attrs.frozen
class Targets:
    """What the policy of a ticket asks: business minutes per target, on a calendar."""

    policy_id: int
    calendar: BusinessCalendar
    response_minutes: int | None
    resolution_minutes: int | None
    warning_percent: int


def _specificity(policy: Record) -> tuple[int, int]:
    named = 2 * (policy.values.get("priority") is not None)
    return (-(named + (policy.values.get("support_tier") is not None)), policy.id)


def targets_for(uow: UnitOfWork, priority: str | None, tier: str | None) -> Targets | None:
    """The targets of the most specific active policy for *priority* and *tier* (a policy
    naming both beats one naming either, which beats one naming neither; then the lowest id),
    or ``None`` when no policy applies (or its calendar has no opening hours: a warning is
    logged, and tickets open without clocks rather than not at all). Policies and calendars are
    read with the unit's rights (the help desk reads them in its system scope)."""
    candidates = (
        uow.query("sla_policy")
        .where(
            {"any": [("active", "is null"), ("active", "=", True)]},
            {"any": [("priority", "is null"), ("priority", "=", priority)]},
            {"any": [("support_tier", "is null"), ("support_tier", "=", tier or "basic")]},
        )
        .all()
    )
    if not candidates:
        return None
    policy = min(candidates, key=_specificity).values
    try:
        calendar = load_calendar(uow, policy["calendar_id"])
    except ValidationError:  # a calendar without hours: the ticket opens, without clocks
        log.warning(
            "SLA policy %s: its calendar %s has no opening hours; no SLA clocks set",
            policy["id"],
            policy["calendar_id"],
        )
        return None
    return Targets(
        policy["id"],
        calendar,
        policy["first_response_minutes"],
        policy["resolution_minutes"],
        policy["warning_percent"] or 0,
    )


def account_tier(uow: UnitOfWork, account_id: int | None) -> str | None:
    """The support tier of an account (``None`` without an account, or one the unit's actor
    may not read; the help desk reads it in its system scope: the SLA policy follows the
    customer's tier, whoever opens the ticket)."""
    if account_id is None:
        return None
    found = uow.get_many("account", [account_id])
    return found[0].values.get("support_tier") if found else None


# -- clocks ----------------------------------------------------------------------------------------


def _due(
    calendar: BusinessCalendar, start: dt.datetime, minutes: float | None, paused: int
) -> dt.datetime | None:
    if minutes is None:
        return None
    return calendar.add(start, minutes + paused)


def clock_fields(
    targets: Targets | None, values: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """The SLA fields of a ticket whose values are *values* (after the change at hand).

    Due and warning times follow from ``opened_at``, the targets and the paused minutes. A
    target already ``breached`` stays so; one reached (first response, resolution) is ``met``
    or ``breached`` by its due time; otherwise it is ``pending`` again, for the sweep to warn
    about or breach when its time comes.
    """
    if targets is None:
        return {
            "sla_policy_id": None,
            "response_due": None,
            "response_warn_at": None,
            "resolution_due": None,
            "resolution_warn_at": None,
            "response_status": "none",
            "resolution_status": "none",
        }
    opened = values.get("opened_at") or now
    paused = int(values.get("sla_paused_minutes") or 0)
    calendar = targets.calendar
    result: dict[str, Any] = {"sla_policy_id": targets.policy_id}
    for target, minutes, reached in (
        ("response", targets.response_minutes, values.get("first_response_at")),
        ("resolution", targets.resolution_minutes, values.get("resolved_at")),
    ):
        due = _due(calendar, opened, minutes, paused)
        warn = None
        if minutes is not None and targets.warning_percent > 0:
            warn = _due(calendar, opened, minutes * min(targets.warning_percent, 100) / 100, paused)
        current = values.get(f"{target}_status")
        if due is None:
            status = "none"
        elif reached is not None:
            status = "met" if reached <= due and current != "breached" else "breached"
        elif current in ("warning", "breached"):
            status = current
        else:
            status = "pending"
        result.update({f"{target}_due": due, f"{target}_warn_at": warn, f"{target}_status": status})
    return result


# -- the sweep -------------------------------------------------------------------------------------


@attrs.frozen
class SweepResult:
    """What one sweep found: ticket ids per event, and the jobs it enqueued."""

    at: dt.datetime
    response_warnings: tuple[int, ...] = ()
    resolution_warnings: tuple[int, ...] = ()
    response_breaches: tuple[int, ...] = ()
    resolution_breaches: tuple[int, ...] = ()
    jobs: int = 0

    @property
    def changed(self) -> int:
        return (
            len(self.response_warnings)
            + len(self.resolution_warnings)
            + len(self.response_breaches)
            + len(self.resolution_breaches)
        )

    def summary(self) -> str:
        return (
            f"{len(self.response_breaches)} response and "
            f"{len(self.resolution_breaches)} resolution "
            f"breaches, {len(self.response_warnings)} response and {len(self.resolution_warnings)} "
            f"resolution warnings; {self.jobs} escalation job(s)"
        )


def sla_sweep(
    uow: UnitOfWork, now: dt.datetime | None = None, *, escalate: bool = True
) -> SweepResult:
    """Find, over every open ticket at once, the SLA targets that reached their warning or due
    time at *now*, mark them, record ``sla_event`` rows and enqueue their escalations.

    Four set-based updates (breaches first, so a target that is past both its warning and its
    due time is breached, not warned) over the tickets whose clocks run: in an active stage and
    not paused. They run in the help desk's system scope (the sweep is the system's, whoever
    starts it), in *uow*'s transaction; the caller commits.

    :param now: the moment to check at (default: the clock).
    :param escalate: enqueue the escalation jobs (``helpdesk.escalate``).
    :returns: the :class:`SweepResult`.
    """
    at = (now or utcnow()).astimezone(dt.UTC)
    found: dict[tuple[str, str], tuple[int, ...]] = {}
    with system_scope(uow, "the SLA sweep marks the clocks of every open ticket") as scoped:
        running = scoped.select("ticket", fields=("id",)).where(
            ("status", "in", ACTIVE_STAGES), ("sla_paused_at", "is null")
        )
        for kind, status, column in (
            ("breach", "breached", "due"),
            ("warning", "warning", "warn_at"),
        ):
            for target in ("response", "resolution"):
                before = ("pending", "warning") if kind == "breach" else ("pending",)
                due = running.where(
                    (f"{target}_status", "in", before), (f"{target}_{column}", "<=", at)
                )
                found[(kind, target)] = _mark(scoped, due, status, kind, target, at)
        jobs = 0
        if escalate:
            for (kind, target), ids in found.items():
                for start in range(0, len(ids), ESCALATION_BATCH):
                    chunk = list(ids[start : start + ESCALATION_BATCH])
                    enqueue(
                        scoped,
                        ESCALATE_JOB,
                        {"event": kind, "target": target, "ticket_ids": chunk},
                        run_at=at,
                    )
                    jobs += 1
    result = SweepResult(
        at,
        found[("warning", "response")],
        found[("warning", "resolution")],
        found[("breach", "response")],
        found[("breach", "resolution")],
        jobs,
    )
    if result.changed:
        log.info("sla sweep at %s: %s", at.isoformat(), result.summary())
    return result


def _mark(
    uow: UnitOfWork, due: Any, status: str, kind: str, target: str, at: dt.datetime
) -> tuple[int, ...]:
    """Mark the *target* of the tickets *due* selects with *status*, and record an
    ``sla_event`` of *kind* for each ticket changed; the ids changed, in order."""
    ids = due.update(set={f"{target}_status": status})
    uow.create_many(
        "sla_event",
        [{"ticket_id": i, "kind": kind, "target": target, "at": at} for i in ids],
    )
    return tuple(ids)


# -- status ----------------------------------------------------------------------------------------


@attrs.frozen
class QueueStatus:
    """The SLA state of one queue's unfinished tickets (``queue_id`` ``None``: no queue)."""

    queue_id: int | None
    name: str
    open: int
    paused: int
    warning: int
    breached: int
    next_due: dt.datetime | None


def sla_status(uow: UnitOfWork) -> list[QueueStatus]:
    """Per queue, the unfinished tickets the actor may read: how many, paused, warned about,
    breached, and the next due time of a running clock. Four aggregate queries
    (:meth:`crmcore.query.Query.aggregate`), so the read predicate and hidden fields apply as
    to any query; queues are named where the actor may read them (``#id`` else)."""
    figures: dict[int | None, dict[str, Any]] = {}

    def of(queue_id: int | None) -> dict[str, Any]:
        return figures.setdefault(
            queue_id, {"open": 0, "paused": 0, "warning": 0, "breached": 0, "due": []}
        )

    unfinished = uow.query("ticket").where(("status", "not in", DONE_STAGES))
    states = ["response_status", "resolution_status"]
    for row in unfinished.aggregate(group_by=["queue_id", *states]):
        found, held = of(row["queue_id"]), {row[name] for name in states}
        found["open"] += row["count"]
        found["warning"] += row["count"] if "warning" in held else 0
        found["breached"] += row["count"] if "breached" in held else 0
    for row in unfinished.where(("sla_paused_at", "is not null")).aggregate(group_by=["queue_id"]):
        of(row["queue_id"])["paused"] = row["count"]
    running = uow.query("ticket").where(
        ("status", "in", ACTIVE_STAGES), ("sla_paused_at", "is null")
    )
    for target in ("response", "resolution"):
        ticking = running.where((f"{target}_status", "in", ("pending", "warning")))
        for row in ticking.aggregate(group_by=["queue_id"], count=False, min=[f"{target}_due"]):
            if row[f"min_{target}_due"] is not None:
                of(row["queue_id"])["due"].append(row[f"min_{target}_due"])
    known = [q for q in figures if q is not None]
    names = {q.id: q.values.get("name") for q in uow.get_many("queue", known)}
    result = [
        QueueStatus(
            queue_id,
            str(names.get(queue_id) or f"#{queue_id}") if queue_id is not None else "(no queue)",
            found["open"],
            found["paused"],
            found["warning"],
            found["breached"],
            min(found["due"]) if found["due"] else None,
        )
        for queue_id, found in figures.items()
    ]
    return sorted(result, key=lambda status: (status.queue_id is None, status.name))
