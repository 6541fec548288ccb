"""Sync as a worker job, per CalDAV, CardDAV, IMAP or Graph account, on a schedule.

Each CalDAV calendar account (and CardDAV address book, IMAP mailbox and Graph account) has one queued job of kind ``calendar_sync.sync`` (dedupe key
``calendar_sync:<account id>``): queued for now when the account is made, it syncs the account
(:func:`~crm_calendar_sync.sync.sync_account`, in the worker's unit of work, so its changes
are audited like any other) and queues the next run ``sync_interval_minutes`` later. Deleting
the account cancels its job. A sync that fails (the server is down) is retried by the worker
with its back-off, then kept as failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmcore.jobs import cancel_many, current_job, enqueue, enqueue_many

from crm_calendar_sync.carddav import sync_addressbook
from crm_calendar_sync.credentials import CalendarSettings
from crm_calendar_sync.sync import sync_account

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["SYNC_JOB", "handlers", "job_key", "on_accounts_created", "on_accounts_deleted", "run_sync"]

SYNC_JOB = "calendar_sync.sync"
#: The account kinds synchronised by the worker.
SYNCED_KINDS = ("caldav", "carddav", "imap", "graph")
log = logging.getLogger(__name__)


def job_key(account_id: int) -> str:
    return f"calendar_sync:{account_id}"


def run_sync(uow: UnitOfWork, payload: dict[str, Any]) -> None:
    """The job's handler: sync the account, then queue its next run."""
    found = uow.get_many("calendar_account", [payload["account_id"]])
    if not found or found[0].get("kind") not in SYNCED_KINDS:
        return  # deleted or changed into another kind meanwhile: no more runs
    kind = found[0].get("kind")
    if kind == "imap":
        from crm_calendar_sync.archive import fetch_imap

        summary: Any = fetch_imap(uow, found[0])
    elif kind == "graph":
        from crm_calendar_sync.graph import sync_graph

        summary = sync_graph(uow, found[0])
    else:
        summary = sync_addressbook(uow, found[0]) if kind == "carddav" else sync_account(uow, found[0])
    log.info("calendar account %s synced: %s", found[0].id, summary.line())
    minutes = uow.crm.state(CalendarSettings).sync_interval_minutes
    running = current_job()
    now = running.now if running is not None else dt.datetime.now(dt.UTC)
    enqueue(uow, SYNC_JOB, {"account_id": found[0].id}, run_at=now + dt.timedelta(minutes=minutes),
            key=job_key(found[0].id))


def handlers() -> dict[str, Any]:
    return {SYNC_JOB: run_sync}


def on_accounts_created(uow: UnitOfWork, records: Sequence[Record]) -> None:
    """Queue the first sync of each CalDAV, CardDAV, IMAP and Graph account made, for now."""
    jobs = [({"account_id": r.id}, None, job_key(r.id)) for r in records if r.get("kind") in SYNCED_KINDS]
    if jobs:
        enqueue_many(uow, SYNC_JOB, jobs)


def on_accounts_deleted(uow: UnitOfWork, records: Sequence[Record]) -> None:
    if records:
        cancel_many(uow, [job_key(r.id) for r in records])
