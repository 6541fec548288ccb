"""Tickets: what happens when one is opened, changed, answered, resolved and reopened, and the
functions the command line (and any program) uses to work them.

The ``crm_before_create`` and ``crm_before_update`` hooks of the plugin call
:func:`on_create` and :func:`on_update`, which return the changes the help desk adds to the
write: the default queue, the account of the contact, the assignee the queue picks, the SLA
clocks, the time stamps of the ticket's life, pausing and resuming the clocks. An activity
(e-mail, call, meeting) logged on a ticket is a response: the first one stamps
``first_response_at`` (:func:`on_activity_created`) and opens a new ticket.

Working a ticket::

    from crm_helpdesk import tickets

    with crm.unit_of_work(agent) as uow:
        ticket = tickets.open_ticket(uow, "Printer on fire", account_id=7, priority="high")
        tickets.reply(uow, ticket, "We are on our way.")
        tickets.resolve(uow, ticket, articles=[12])
        uow.commit()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from crmcore.errors import NotFoundError, ValidationError
from crmcore.jobs import cancel, enqueue
from crmcore.signals import MoveEvent

from crm_helpdesk import sla
from crm_helpdesk.assignment import pick_agent
from crm_helpdesk.entities import DONE_STAGES
from crm_helpdesk.escalation import AUTO_CLOSE_JOB, auto_close_key
from crm_helpdesk.scope import referenced, system_scope
from crm_helpdesk.settings import helpdesk_settings
from crm_helpdesk.surveys import create_survey
from crm_helpdesk.workflow import TICKET_PIPELINE

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "ASSIGN_PERMISSION",
    "RESPONSE_KINDS",
    "CLOSED",
    "REOPENED",
    "RESOLVED",
    "assign",
    "close",
    "find_queue",
    "log_call",
    "on_activity_created",
    "on_activity_create",
    "on_activity_update",
    "on_create",
    "on_moved",
    "on_update",
    "open_ticket",
    "reopen",
    "reply",
    "resolve",
]

ASSIGN_PERMISSION = "helpdesk.ticket.assign"
#: Kinds of activity that answer the customer (a task does not).
RESPONSE_KINDS = ("email", "call", "meeting")
_CLOCK_INPUTS = ("priority", "account_id", "opened_at")
#: The changes of a ticket :func:`on_update` acts on.
_WATCHED = frozenset({"assignee_id", "status", "first_response_at", *_CLOCK_INPUTS})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def find_queue(uow: UnitOfWork, name_or_id: str | int) -> int:
    """The id of the queue named (or numbered) *name_or_id*, among those the actor may read.

    :raises NotFoundError: listing the queues the actor may read.
    """
    queues = uow.query("queue").order_by("name").all()
    wanted = str(name_or_id).strip()
    for queue in queues:
        if (wanted.isdigit() and queue.id == int(wanted)) or (
            str(queue.values.get("name") or "").lower() == wanted.lower()
        ):
            return queue.id
    names = [str(q.values["name"]) for q in queues if q.values.get("name") is not None]
    raise NotFoundError(
        f"no queue {name_or_id!r}; queues: {', '.join(names) or 'none'} (create one with "
        "'crm create queue name=...')",
        entity="queue",
        id=name_or_id,
    )


def _check_assigner(uow: UnitOfWork, assignee: int | None) -> None:
    if assignee is not None and assignee != uow.actor.user_id:
        uow.require("ticket", ASSIGN_PERMISSION)


def _targets(uow: UnitOfWork, values: Mapping[str, Any]) -> sla.Targets | None:
    reason = "a ticket's SLA clocks follow the deployment's policies and its account's tier"
    with system_scope(uow, reason):
        tier = sla.account_tier(uow, values.get("account_id"))
        return sla.targets_for(uow, values.get("priority"), tier)


# -- hooks ---------------------------------------------------------------------------------------


def on_create(uow: UnitOfWork, values: Mapping[str, Any]) -> dict[str, Any]:
    """The changes the help desk makes to a new ticket's validated *values*."""
    now = _now()
    changes: dict[str, Any] = {}
    _check_assigner(uow, values.get("assignee_id"))
    if values.get("opened_at") is None:
        changes["opened_at"] = now
    queue_id = values.get("queue_id")
    if queue_id is None:
        with_default = helpdesk_settings(uow.crm).default_queue
        with system_scope(uow, "a ticket without a queue goes to the deployment's default queue"):
            queue_id = next(iter(uow.query("queue").where(name=with_default).limit(1).ids()), None)
        if queue_id is not None:
            changes["queue_id"] = queue_id
    if values.get("account_id") is None and values.get("contact_id") is not None:
        contact = referenced(uow, "ticket", "contact_id", "contact", values["contact_id"])
        account_id = contact.values.get("account_id")
        if account_id is not None:
            changes["account_id"] = account_id
    assignee = values.get("assignee_id")
    if assignee is None and queue_id is not None:
        assignee = pick_agent(uow, queue_id)
        if assignee is not None:
            changes["assignee_id"] = assignee
    if assignee is not None:
        changes["assigned_at"] = now
    status = values.get("status")
    if status == "pending_customer":  # an imported ticket waiting already: its clocks stand still
        changes["sla_paused_at"] = now
    elif status in DONE_STAGES:  # an imported ticket done already
        resolved = values.get("resolved_at") or values.get("opened_at") or now
        changes["resolved_at"] = resolved
        if values.get("first_response_at") is None:
            changes["first_response_at"] = resolved
        if status == "closed" and values.get("closed_at") is None:
            changes["closed_at"] = resolved
    merged = {
        **values,
        **changes,
        "sla_paused_minutes": 0,
        "response_status": None,
        "resolution_status": None,
    }
    changes.update(sla.clock_fields(_targets(uow, merged), merged, now))
    changes.update(sla_paused_minutes=0, reopen_count=0)
    return changes


def on_update(uow: UnitOfWork, record: Record, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes the help desk adds to an update of ticket *record*."""
    if _WATCHED.isdisjoint(changes):  # the sweep marking clocks, say: nothing to add
        return {}
    now = _now()
    extra: dict[str, Any] = {}
    if "assignee_id" in changes:
        _check_assigner(uow, changes["assignee_id"])
        extra["assigned_at"] = now if changes["assignee_id"] is not None else None
    source, target = record.status, changes.get("status", record.status)
    merged = {**record.values, **changes}
    recompute = any(name in changes for name in _CLOCK_INPUTS) and source not in DONE_STAGES
    targets: sla.Targets | None = None

    def calendar_targets() -> sla.Targets | None:
        nonlocal targets
        if targets is None:
            targets = _targets(uow, merged)
        return targets

    if target != source:
        if source == "pending_customer" and merged.get("sla_paused_at") is not None:
            found = calendar_targets()
            paused = found.calendar.between(merged["sla_paused_at"], now) if found else 0
            extra["sla_paused_minutes"] = int(merged.get("sla_paused_minutes") or 0) + round(paused)
            extra["sla_paused_at"] = None
            recompute = True
        if target == "pending_customer":
            extra["sla_paused_at"] = now
        if target in DONE_STAGES and source not in DONE_STAGES:
            resolved = merged.get("resolved_at") or now
            extra["resolved_at"] = resolved
            if merged.get("first_response_at") is None:
                extra["first_response_at"] = resolved
            recompute = True
        if target == "closed":
            extra["closed_at"] = now
        if source in DONE_STAGES and target not in DONE_STAGES:
            found = calendar_targets()
            since = merged.get("resolved_at")
            waited = found.calendar.between(since, now) if found and since else 0
            extra.update(
                resolved_at=None,
                closed_at=None,
                reopen_count=int(merged.get("reopen_count") or 0) + 1,
                sla_paused_minutes=int(merged.get("sla_paused_minutes") or 0) + round(waited),
            )
            recompute = True
    if "first_response_at" in changes:
        recompute = True
    if recompute:
        state = {**merged, **extra}
        extra.update(sla.clock_fields(calendar_targets(), state, now))
    return extra


def on_activity_create(uow: UnitOfWork, values: Mapping[str, Any]) -> dict[str, Any] | None:
    """An activity about a ticket is also about the ticket's account and contact (those the
    actor sees on the ticket).

    :raises ReferenceError: when the actor may not read the ticket, as for a missing one.
    """
    ticket_id = values.get("ticket_id")
    if ticket_id is None:
        return None
    ticket = referenced(uow, "activity", "ticket_id", "ticket", ticket_id).values
    changes = {}
    for name in ("account_id", "contact_id"):
        if values.get(name) is None and ticket.get(name) is not None:
            changes[name] = ticket[name]
    return changes or None


def on_activity_update(uow: UnitOfWork, changes: Mapping[str, Any]) -> None:
    """An activity moved to another ticket must name one the actor may read.

    :raises ReferenceError: when the actor may not read the ticket, as for a missing one.
    """
    if changes.get("ticket_id") is not None:
        referenced(uow, "activity", "ticket_id", "ticket", changes["ticket_id"])


def on_activity_created(uow: UnitOfWork, activity: Record) -> None:
    """A response logged on a ticket: stamp its first response, open it if new.

    The actor needs to read the ticket, not to change it: the stamp and the move run in the
    help desk's system scope, on a ticket the actor was shown to read.
    """
    ticket_id = activity.values.get("ticket_id")
    if ticket_id is None or activity.values.get("kind") not in RESPONSE_KINDS:
        return
    referenced(uow, "activity", "ticket_id", "ticket", ticket_id)
    with system_scope(uow, "a response on a ticket stamps its first response and opens it"):
        ticket = uow.get("ticket", ticket_id)
        changes: dict[str, Any] = {}
        if ticket.first_response_at is None:
            now = _now()
            started = activity.values.get("starts_at")
            changes["first_response_at"] = (
                started if started is not None and started <= now else now
            )
        if changes:
            ticket = uow.update(ticket, changes)
        if ticket.status == "new":
            uow.move(ticket, "open")


# -- working tickets -----------------------------------------------------------------------------


def open_ticket(uow: UnitOfWork, subject: str, /, **values: Any) -> Record:
    """Open a ticket: ``open_ticket(uow, "Printer on fire", account_id=7, priority="high")``.

    ``queue`` may name the queue (by name or id) instead of ``queue_id``. The queue assigns
    it, the SLA policy sets its clocks.
    """
    queue = values.pop("queue", None)
    if queue is not None:
        values["queue_id"] = find_queue(uow, queue)
    return uow.create("ticket", subject=subject, **values)


def _ticket(uow: UnitOfWork, ticket: Record | int) -> Record:
    return uow.get("ticket", ticket.id if not isinstance(ticket, int) else ticket)


def assign(uow: UnitOfWork, ticket: Record | int, user_id: int | None = None) -> Record:
    """Give *ticket* to *user_id*, or to the agent its queue picks; a new ticket opens.

    :raises ValidationError: when no user is given and the queue picks nobody.
    """
    current = _ticket(uow, ticket)
    if user_id is None:
        if current.queue_id is None:
            raise ValidationError(
                {
                    "assignee_id": [
                        f"ticket {current.id} has no queue to pick an agent; name the user"
                    ]
                },
                entity="ticket",
            )
        user_id = pick_agent(uow, current.queue_id, exclude=current.assignee_id)
        if user_id is None:
            raise ValidationError(
                {
                    "assignee_id": [
                        f"queue {current.queue_id} has no other active agent for ticket "
                        f"{current.id} (or assigns manually); name the user"
                    ]
                },
                entity="ticket",
            )
    updated = uow.update(current, assignee_id=user_id)
    if updated.status == "new":
        updated = uow.move(updated, "open")
    return updated


def reply(
    uow: UnitOfWork,
    ticket: Record | int,
    text: str,
    *,
    kind: str = "email",
    subject: str | None = None,
    starts_at: dt.datetime | None = None,
) -> Record:
    """Answer the customer: an activity (an e-mail by default) on the ticket, done.

    :returns: the activity.
    """
    current = _ticket(uow, ticket)
    return uow.create(
        "activity",
        kind=kind,
        subject=subject or f"Re: {current.subject}"[:200],
        description=text,
        ticket_id=current.id,
        status="done",
        starts_at=starts_at,
    )


def log_call(
    uow: UnitOfWork,
    ticket: Record | int,
    subject: str,
    *,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
    notes: str | None = None,
) -> Record:
    """Log a call of the call center on the ticket (an activity of kind ``call``); the call
    answers the customer like a reply does.

    :returns: the activity.
    """
    current = _ticket(uow, ticket)
    return uow.create(
        "activity",
        kind="call",
        subject=subject,
        description=notes,
        ticket_id=current.id,
        status="done",
        starts_at=starts_at,
        ends_at=ends_at,
    )


def resolve(uow: UnitOfWork, ticket: Record | int, *, articles: Iterable[int] = ()) -> Record:
    """Resolve *ticket*, noting the knowledge base *articles* that helped; a survey is sent."""
    current = _ticket(uow, ticket)
    for article_id in dict.fromkeys(articles):
        uow.create("ticket_article", ticket_id=current.id, article_id=article_id, helped=True)
    return uow.move(current, "resolved")


def close(uow: UnitOfWork, ticket: Record | int) -> Record:
    """Close *ticket* (needs the permission ``helpdesk.ticket.close``)."""
    return uow.move(_ticket(uow, ticket), "closed")


def reopen(uow: UnitOfWork, ticket: Record | int) -> Record:
    """Reopen a resolved or closed *ticket* within the reopen window."""
    return uow.move(_ticket(uow, ticket), "open")


# -- moves ---------------------------------------------------------------------------------------

#: Signals sent after the commit when a ticket is resolved, closed or reopened (sender
#: ``"ticket"``, keyword ``event``: a :class:`crmcore.signals.MoveEvent`).
RESOLVED = "helpdesk.ticket-resolved"
CLOSED = "helpdesk.ticket-closed"
REOPENED = "helpdesk.ticket-reopened"


def on_moved(
    uow: UnitOfWork, old: Record, new: Record, source: str | None, target: str | None
) -> None:
    """After a move of a ticket: a resolution sends a survey and plans the automatic close at
    the end of the reopen window; closing or reopening cancels that plan."""
    event = MoveEvent("ticket", new, uow.actor, TICKET_PIPELINE, source, target)
    if target == "resolved":
        create_survey(uow, new)
        days = helpdesk_settings(uow.crm).reopen_window_days
        resolved = new.values.get("resolved_at") or _now()
        enqueue(
            uow,
            AUTO_CLOSE_JOB,
            {"ticket_id": new.id},
            run_at=resolved + dt.timedelta(days=days),
            key=auto_close_key(new.id),
        )
        uow.announce(RESOLVED, "ticket", event=event)
    elif source == "resolved":
        cancel(uow, auto_close_key(new.id))
    if target == "closed":
        uow.announce(CLOSED, "ticket", event=event)
    if source in DONE_STAGES and target not in DONE_STAGES:
        uow.announce(REOPENED, "ticket", event=event)
