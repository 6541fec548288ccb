"""Contracts at the right moment: the account owner is reminded ``[plugins.documents]
reminder_days`` days before a contract's notice date and before its end date, through the job
queue.

Writing a contract's dates queues (or moves, or cancels) two jobs per document, keyed
``documents.contract:<id>:notice`` and ``...:end``; the worker runs them at their time. The
handler reads the document again as the system: a job whose date no longer matches the
document does nothing (the later write queued the right one). Otherwise it gives the owner of
the document's account (the account it is attached to, or the account of the record it is
attached to) a task due on that day, with a reminder due now (``crm reminders``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crmcore.jobs import cancel_many, current_job, enqueue_many, schedule_reminder

from crm_documents.settings import documents_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["JOB", "handlers", "remind", "schedule"]

log = logging.getLogger(__name__)

JOB = "documents.contract_reminder"
_WHEN = {"notice": "notice_date", "end": "valid_until"}
_SAY = {"notice": "last day to give notice", "end": "ends"}


def _key(document_id: int, which: str) -> str:
    return f"documents.contract:{document_id}:{which}"


def _at(uow: UnitOfWork, day: dt.date, days_before: int) -> dt.datetime:
    zone = uow.registry.timezone or dt.UTC
    return dt.datetime.combine(day - dt.timedelta(days=days_before), dt.time(9, 0), tzinfo=zone)


def schedule(uow: UnitOfWork, documents: Iterable[Record]) -> None:
    """Queue, move or cancel the reminders of *documents* (set-based: one statement each)."""
    before = documents_settings(uow.crm).reminder_days
    jobs: list[tuple[Any, dt.datetime, str]] = []
    gone: list[str] = []
    for document in documents:
        for which, field in _WHEN.items():
            day = document.values.get(field)
            if document.values.get("kind") == "contract" and day is not None:
                payload = {"document_id": document.id, "which": which, "day": day.isoformat()}
                jobs.append((payload, _at(uow, day, before), _key(document.id, which)))
            else:
                gone.append(_key(document.id, which))
    if jobs:
        enqueue_many(uow, JOB, jobs)
    if gone:
        cancel_many(uow, gone)


def cancel(uow: UnitOfWork, documents: Iterable[Record]) -> None:
    """Cancel the reminders of deleted *documents*."""
    keys = [_key(d.id, which) for d in documents for which in _WHEN]
    if keys:
        cancel_many(uow, keys)


def _account_id(uow: UnitOfWork, document: Record) -> int | None:
    if document.values.get("account_id"):
        return int(document.values["account_id"])
    entity, record_id = document.values.get("record_entity"), document.values.get("record_id")
    if entity == "account":
        return int(record_id)
    if entity in uow.registry and uow.registry.entity(entity).has_field("account_id"):
        found = uow.get_many(entity, [record_id])
        if found and found[0].values.get("account_id"):
            return int(found[0].values["account_id"])
    return None


def remind(uow: UnitOfWork, payload: dict[str, Any]) -> Record | None:
    """The job: the task and reminder of one contract date for the account owner; ``None``
    when there is nothing to remind (the document or its account gone, the date changed, no
    owner)."""
    found = uow.get_many("document", [payload["document_id"]])
    which = payload["which"]
    if not found:
        return None
    document = found[0]
    day = document.values.get(_WHEN[which])
    if (
        document.values.get("kind") != "contract"
        or day is None
        or day.isoformat() != payload["day"]
    ):
        return None
    account_id = _account_id(uow, document)
    accounts = uow.get_many("account", [account_id]) if account_id else []
    owner = accounts[0].values.get("owner_id") if accounts else None
    if owner is None:
        log.warning("contract document %s has no account owner to remind", document.id)
        return None
    subject = f"Contract {document.values['title']!r}: {_SAY[which]} {day.isoformat()}"
    task = uow.create(
        "activity",
        kind="task",
        subject=subject[:200],
        account_id=account_id,
        owner_id=owner,
        due_at=dt.datetime.combine(day, dt.time(9, 0), tzinfo=uow.registry.timezone or dt.UTC),
        description=f"document {document.id}",
    )
    running = current_job()
    schedule_reminder(
        uow, task, owner, running.now if running else dt.datetime.now(dt.UTC), subject
    )
    return task


def handlers() -> dict[str, Any]:
    """The job handlers of the plugin."""
    return {JOB: remind}
