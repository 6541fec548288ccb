"""The orders plugin's job, run by ``crm worker``: ``orders.expire_quotes`` expires the draft and
sent quotes past their ``valid_until`` (:func:`crm_orders.quotes.expire_quotes`) and queues its
next run ``expire_interval_minutes`` later (one queued run at a time, by its dedupe key). The
seed queues the first one."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.jobs import QUEUED, RUNNING, current_job, enqueue

from crm_orders.quotes import expire_quotes
from crm_orders.settings import orders_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["EXPIRE_JOB", "expire", "handlers", "queue_expiry", "seed"]

EXPIRE_JOB = "orders.expire_quotes"


def queue_expiry(uow: UnitOfWork, *, now: dt.datetime | None = None) -> None:
    """Queue the next expiry run."""
    minutes = orders_settings(uow.crm).expire_interval_minutes
    start = now or dt.datetime.now(dt.UTC)
    enqueue(uow, EXPIRE_JOB, {}, run_at=start + dt.timedelta(minutes=minutes), key=EXPIRE_JOB)


def expire(uow: UnitOfWork, payload: Any) -> int:
    """The job: expire what is due at the worker's time, queue the next run."""
    running = current_job()
    now = running.now if running is not None else dt.datetime.now(dt.UTC)
    expired = expire_quotes(uow, today=now.astimezone(uow.registry.timezone).date())
    queue_expiry(uow, now=now)
    return len(expired)


def handlers() -> dict[str, Any]:
    return {EXPIRE_JOB: expire}


def seed(uow: UnitOfWork) -> list[str]:
    """Queue the first expiry run when none is queued or running."""
    if uow.query("job").where(("status", "in", (QUEUED, RUNNING)), kind=EXPIRE_JOB).count():
        return []
    queue_expiry(uow)
    return ["quote expiry job queued"]
