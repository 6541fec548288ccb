"""The help desk's jobs, run by ``crm worker``: the SLA sweep, escalations and auto-closing.

``helpdesk.sla_sweep``
    runs :func:`~crm_helpdesk.sla.sla_sweep` at the worker's time and queues the next sweep
    ``sweep_interval_minutes`` later (one queued sweep at a time, by its dedupe key). The seed
    queues the first one.
``helpdesk.escalate``
    acts on the tickets a sweep found: a warning notifies the assignee (or the queue manager)
    with a task on the ticket; a breach does what ``escalation_actions`` says: raise the
    priority one step, reassign (to the queue's escalation queue, else to its manager), notify
    the queue manager. Each ticket's change goes through the unit of work (hooks, audit) and the
    signal ``helpdesk.ticket-breached`` or ``helpdesk.ticket-warned`` follows the commit.
``helpdesk.auto_close``
    closes a resolved ticket when its reopen window ends.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.jobs import RUNNING, enqueue

from crm_helpdesk.assignment import pick_agent
from crm_helpdesk.entities import ACTIVE_STAGES, PRIORITIES
from crm_helpdesk.settings import helpdesk_settings
from crm_helpdesk.sla import ESCALATE_JOB, sla_sweep, utcnow

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "AUTO_CLOSE_JOB",
    "BREACHED",
    "SWEEP_JOB",
    "SWEEP_KEY",
    "WARNED",
    "SlaEvent",
    "auto_close",
    "auto_close_key",
    "escalate",
    "handlers",
    "queue_sweep",
    "sweep",
]

log = logging.getLogger(__name__)

SWEEP_JOB = "helpdesk.sla_sweep"
SWEEP_KEY = "helpdesk.sla_sweep"
AUTO_CLOSE_JOB = "helpdesk.auto_close"
#: Signals sent after an escalation job committed (sender ``"ticket"``, keyword ``event``).
BREACHED = "helpdesk.ticket-breached"
WARNED = "helpdesk.ticket-warned"


@attrs.frozen
class SlaEvent:
    """What ``helpdesk.ticket-breached`` and ``helpdesk.ticket-warned`` carry.

    :ivar record: the ticket after the escalation's changes.
    :ivar target: ``"response"`` or ``"resolution"``.
    :ivar actions: what was done (``"raised priority to high"``, ...).
    """

    record: Record
    target: str
    kind: str
    actions: tuple[str, ...] = ()


def handlers() -> dict[str, Any]:
    """The job handlers of the help desk, by kind."""
    return {SWEEP_JOB: sweep, ESCALATE_JOB: escalate, AUTO_CLOSE_JOB: auto_close}


# -- the sweep -------------------------------------------------------------------------------------


def worker_time(uow: UnitOfWork, kind: str) -> dt.datetime:
    """The time the worker running a job of *kind* acts at: the job's ``locked_at`` (a worker
    given ``now=`` stamps it with that time), else the clock."""
    (row,) = uow.query("job").where(kind=kind, status=RUNNING).aggregate(max=["locked_at"])
    at = row["max_locked_at"]
    return at if at is not None else utcnow()


def queue_sweep(uow: UnitOfWork, run_at: dt.datetime | None = None) -> int:
    """Queue the SLA sweep at *run_at* (default: now), unless one is queued already: that one
    moves to *run_at*. Returns the job's id."""
    return enqueue(uow, SWEEP_JOB, None, run_at=run_at, key=SWEEP_KEY, max_attempts=3)


def sweep(uow: UnitOfWork, payload: Any) -> None:
    """Job ``helpdesk.sla_sweep``: sweep at the worker's time, queue the next sweep."""
    at = worker_time(uow, SWEEP_JOB)
    sla_sweep(uow, at)
    interval = helpdesk_settings(uow.crm).sweep_interval_minutes
    queue_sweep(uow, at + dt.timedelta(minutes=interval))


# -- escalations -----------------------------------------------------------------------------------


def _task(uow: UnitOfWork, ticket: Record, owner_id: int | None, subject: str, due: Any) -> None:
    uow.create(
        "activity",
        kind="task",
        subject=subject[:200],
        ticket_id=ticket.id,
        owner_id=owner_id,
        due_at=due,
        description=f"Ticket {ticket.id}: {ticket.subject}",
    )


def escalate(uow: UnitOfWork, payload: Any) -> None:
    """Job ``helpdesk.escalate``: act on the tickets of one sweep event (see the module docs).

    Tickets that left the active stages, or whose target is no longer warned or breached,
    are skipped: the sweep's finding is stale.
    """
    kind, target = payload["event"], payload["target"]
    tickets = uow.get_many("ticket", payload["ticket_ids"])
    queues = {q.id: q for q in uow.get_many("queue", {t.queue_id for t in tickets if t.queue_id})}
    actions = helpdesk_settings(uow.crm).escalation_actions
    expected = "breached" if kind == "breach" else "warning"
    for ticket in tickets:
        if ticket.status not in ACTIVE_STAGES or ticket.values.get(f"{target}_status") != expected:
            continue
        queue = queues.get(ticket.queue_id) if ticket.queue_id else None
        manager = queue.manager_id if queue is not None else None
        due = ticket.values.get(f"{target}_due")
        done: list[str] = []
        if kind == "warning":
            owner = ticket.assignee_id or manager
            _task(uow, ticket, owner, f"SLA warning: {target} due for ticket {ticket.id}", due)
            done.append("notified the assignee" if ticket.assignee_id else "notified the manager")
            uow.announce(WARNED, "ticket", event=SlaEvent(ticket, target, kind, tuple(done)))
            continue
        changes: dict[str, Any] = {}
        if "raise_priority" in actions and ticket.priority in PRIORITIES[:-1]:
            changes["priority"] = PRIORITIES[PRIORITIES.index(ticket.priority) + 1]
            done.append(f"raised priority to {changes['priority']}")
        if "reassign" in actions and queue is not None:
            if queue.escalation_queue_id and queue.escalation_queue_id != queue.id:
                changes["queue_id"] = queue.escalation_queue_id
                agent = pick_agent(uow, queue.escalation_queue_id, exclude=ticket.assignee_id)
                if agent is not None:
                    changes["assignee_id"] = agent
                done.append(f"moved to queue {queue.escalation_queue_id}")
            elif manager is not None and manager != ticket.assignee_id:
                changes["assignee_id"] = manager
                done.append("reassigned to the queue manager")
        if changes:
            ticket = uow.update(ticket, changes)
        if "notify_manager" in actions and manager is not None:
            _task(uow, ticket, manager, f"SLA breached: {target} of ticket {ticket.id}", due)
            done.append("notified the manager")
        log.info(
            "ticket %s breached its %s target: %s",
            ticket.id,
            target,
            "; ".join(done) or "no action",
        )
        uow.announce(BREACHED, "ticket", event=SlaEvent(ticket, target, kind, tuple(done)))


# -- closing resolved tickets ----------------------------------------------------------------------


def auto_close_key(ticket_id: int) -> str:
    return f"helpdesk.auto_close:{ticket_id}"


def auto_close(uow: UnitOfWork, payload: Any) -> None:
    """Job ``helpdesk.auto_close``: close the ticket if it is still resolved (a deleted ticket
    needs nothing)."""
    for ticket in uow.get_many("ticket", [payload["ticket_id"]]):
        if ticket.status == "resolved":
            uow.move(ticket, "closed")
