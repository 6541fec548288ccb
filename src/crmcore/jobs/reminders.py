"""Reminders: a user is reminded of an activity at a time, through the worker.

A reminder (entity type ``reminder``) belongs to one activity and reminds one user. It is
``scheduled`` until its time comes; then the worker makes it ``due`` and it shows in the user's
due list (:func:`due_reminders`, ``crm reminders``). The user may :func:`snooze` it (``snoozed``
until the new time, then due again) or :func:`dismiss` it. Deleting the activity deletes its
reminders.

Every reminder that is scheduled or snoozed has one queued job of kind ``reminder.due`` with the
dedupe key ``reminder:<id>``: the record hooks of :mod:`crmcore.builtin.jobs` enqueue it when a
reminder is created or its time changes and cancel it when the reminder is dismissed or
deleted, whichever way that happens (these functions, ``crm create``, an import), so the
reminder and its job cannot disagree. The job carries the time it was scheduled for; a job left
over from an earlier time does nothing.

A user sees, snoozes and dismisses only their own reminders: a restriction on the one access
predicate (every read path, in SQL) limits reminders to ``user_id = <the acting user>``; the
system actor sees all. Snoozing and dismissing also need the ``update`` privilege on
reminders, creating one the ``create`` privilege, as for any entity.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.actors import Actor
from crmcore.errors import ValidationError
from crmcore.jobs.queue import cancel, enqueue, utcnow
from crmcore.records import Record

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "DISMISSED",
    "DUE",
    "MAX_SNOOZE_MINUTES",
    "REMINDER_DUE",
    "REMINDER_STATUSES",
    "SCHEDULED",
    "SNOOZED",
    "check_create",
    "check_update",
    "dismiss",
    "due_reminders",
    "job_key",
    "make_due",
    "on_created",
    "on_deleted",
    "on_updated",
    "schedule_reminder",
    "snooze",
]

SCHEDULED = "scheduled"
DUE = "due"
SNOOZED = "snoozed"
DISMISSED = "dismissed"
REMINDER_STATUSES = (SCHEDULED, DUE, SNOOZED, DISMISSED)
#: The kind of the job that makes a reminder due.
REMINDER_DUE = "reminder.due"
#: The longest snooze: one week.
MAX_SNOOZE_MINUTES = 7 * 24 * 60
_WAITING = (SCHEDULED, SNOOZED)


def job_key(reminder_id: int) -> str:
    """The dedupe key of the job of reminder *reminder_id*."""
    return f"reminder:{reminder_id}"


def schedule_reminder(
    uow: UnitOfWork,
    activity: Record | int,
    user_id: Record | Actor | int | None,
    remind_at: dt.datetime | str,
    message: str | None = None,
) -> Record:
    """Remind a user of *activity* at *remind_at*; the worker makes the reminder due then.

    Scheduling the same reminder again (same activity, user and time, not dismissed) returns
    the existing one, with *message* if one is given: one reminder, one job.

    :param activity: the activity (record or id); the actor must be able to read it.
    :param user_id: who is reminded (a user record, an actor or an id); ``None`` for the acting
        user.
    :param remind_at: when: an aware datetime, or text / a naive datetime in the deployment's
        time zone. A time in the past makes the reminder due at the worker's next run.
    :param message: an optional text shown with the reminder.
    :returns: the reminder.
    :raises NotFoundError: when the activity does not exist or the actor may not read it.
    :raises ValidationError: for a missing user or a bad time.
    """
    activity_id = activity.id if isinstance(activity, Record) else activity
    uow.get("activity", activity_id)
    user = _user_id(uow, user_id)
    etype = uow.registry.entity("reminder")
    try:
        when = etype.field("remind_at").parse(remind_at)
    except ValueError as exc:
        raise ValidationError({"remind_at": [str(exc)]}, entity="reminder") from None
    same = (
        uow.query("reminder")
        .where(activity_id=activity_id, user_id=user, remind_at=when)
        .where(("status", "!=", DISMISSED))
        .order_by("id").first()
    )
    if same is not None:
        if message is not None and message != same.get("message"):
            return uow.update(same, message=message)
        return same
    return uow.create("reminder", activity_id=activity_id, user_id=user, remind_at=when, message=message)


def due_reminders(uow: UnitOfWork, user_id: Record | Actor | int | None = None) -> list[Record]:
    """The due reminders of a user, oldest first, through the actor's read path.

    :param user_id: whose reminders; ``None`` for the acting user's (the system actor: every
        user's).
    """
    query = uow.query("reminder").where(status=DUE)
    if user_id is not None or not uow.actor.is_system:
        query = query.where(user_id=_user_id(uow, user_id))
    return query.order_by("remind_at", "id").all()


def snooze(uow: UnitOfWork, reminder_id: int, minutes: int, *, now: dt.datetime | None = None) -> Record:
    """Put a reminder off by *minutes*: ``snoozed`` now, due again at now + *minutes*.

    :raises NotFoundError: when the reminder does not exist or is not the actor's.
    :raises ValidationError: for a dismissed reminder, or *minutes* outside 1 to one week.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_SNOOZE_MINUTES:
        raise ValidationError(
            {"minutes": [f"snooze for a whole number of minutes from 1 to {MAX_SNOOZE_MINUTES}, got {minutes!r}"]},
            entity="reminder",
        )
    reminder = uow.get("reminder", reminder_id)
    if reminder.status == DISMISSED:
        raise ValidationError(
            f"reminder {reminder.id} is dismissed; only scheduled, snoozed or due reminders can be snoozed",
            entity="reminder",
        )
    return uow.update(reminder, status=SNOOZED, remind_at=(now or utcnow()) + dt.timedelta(minutes=minutes))


def dismiss(uow: UnitOfWork, reminder_id: int) -> Record:
    """Dismiss a reminder: it leaves the due list and its job is cancelled.

    :raises NotFoundError: when the reminder does not exist or is not the actor's.
    """
    reminder = uow.get("reminder", reminder_id)
    if reminder.status == DISMISSED:
        return reminder
    return uow.update(reminder, status=DISMISSED)


def make_due(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """The handler of ``reminder.due`` jobs: the reminder becomes due.

    Nothing happens when the reminder is gone, dismissed or already due, or when it was
    rescheduled since this job was queued (the job of the new time does the work).
    """
    found = uow.get_many("reminder", [payload["reminder_id"]])
    if not found:
        return
    reminder = found[0]
    if reminder.status not in _WAITING or reminder.remind_at.isoformat() != payload.get("remind_at"):
        return
    uow.update(reminder, status=DUE)


# -- keeping reminder and job together (called from the record hooks) ---------------------------


def on_created(uow: UnitOfWork, reminder: Record) -> None:
    """Queue the job of a new reminder that waits for its time."""
    if reminder.get("status") in _WAITING:
        _enqueue(uow, reminder)


def on_updated(uow: UnitOfWork, new: Record, changes: dict[str, Any]) -> None:
    """Queue the job again when a waiting reminder's time or status changed; cancel it when the
    reminder was dismissed."""
    if not {"remind_at", "status"} & changes.keys():
        return
    if new.get("status") in _WAITING:
        _enqueue(uow, new)
    elif new.get("status") == DISMISSED:
        cancel(uow, job_key(new.id))


def on_deleted(uow: UnitOfWork, reminder: Record) -> None:
    """Cancel the job of a deleted reminder."""
    cancel(uow, job_key(reminder.id))


def check_update(uow: UnitOfWork, record: Record, changes: dict[str, Any]) -> None:
    """Only the worker (the system actor) makes a reminder due."""
    if changes.get("status") == DUE and not uow.actor.is_system:
        raise ValidationError(
            {"status": [f"reminder {record.id} becomes due when its time comes; snooze or dismiss it instead"]},
            entity="reminder",
        )


def check_create(uow: UnitOfWork, values: dict[str, Any]) -> None:
    """A new reminder is scheduled (or snoozed); only the worker makes one due."""
    if values.get("status") == DUE and not uow.actor.is_system:
        raise ValidationError(
            {"status": ["a new reminder is scheduled; it becomes due when its time comes"]}, entity="reminder",
        )


def _enqueue(uow: UnitOfWork, reminder: Record) -> None:
    when: dt.datetime = reminder["remind_at"]
    enqueue(uow, REMINDER_DUE, {"reminder_id": reminder.id, "remind_at": when.isoformat()}, run_at=when,
            key=job_key(reminder.id))


def _user_id(uow: UnitOfWork, user: Record | Actor | int | None) -> int:
    if user is None:
        if uow.actor.user_id is None:
            raise ValidationError({"user_id": ["the system actor has no reminders of its own; name the user to remind"]},
                                  entity="reminder")
        return uow.actor.user_id
    if isinstance(user, Record):
        return user.id
    if isinstance(user, Actor):
        if user.user_id is None:
            raise ValidationError({"user_id": ["the system actor cannot be reminded; name a user"]}, entity="reminder")
        return user.user_id
    return user
