"""The daily dunning job, run by ``crm worker``: ``billing.dunning`` makes the notices of the
day (:func:`crm_billing.dunning.run`), and queues its next run for the next day at
``dunning_hour`` in the deployment's time zone (one queued run at a time, by its dedupe key).
The e-mails go out after the job's unit of work commits, on the next worker pass of
``billing.send_notices``, which the job queues; that job commits its claim of the notices
before any message leaves, and marks each one sent in a unit of its own. The seed queues the first run.

The job logs its progress at INFO (notices considered so far, after each chunk of a run) and
its summary; the worker's ``--log-level`` decides whether they show. The summary is also the
job's result (``crm jobs``)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from crmcore.jobs import QUEUED, RUNNING, current_job, enqueue

from crm_billing.settings import BillingSettings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["DUNNING_JOB", "SEND_JOB", "dunning_job", "handlers", "next_run", "seed", "send_job"]

log = logging.getLogger(__name__)

DUNNING_JOB = "billing.dunning"
SEND_JOB = "billing.send_notices"


def next_run(uow: UnitOfWork, now: dt.datetime) -> dt.datetime:
    """The next ``dunning_hour`` after *now*, in the deployment's time zone."""
    tz = uow.registry.timezone
    hour = uow.crm.state(BillingSettings).dunning_hour
    local = now.astimezone(tz)
    at = dt.datetime.combine(local.date(), dt.time(hour), tz)
    return at if at > local else dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(hour), tz)


def dunning_job(uow: UnitOfWork, payload: Any) -> dict[str, Any]:
    """The job: dun as of the worker's day, queue the sending and the next run; returns its
    summary (shown by ``crm jobs``)."""
    from crm_billing.dunning import run

    running = current_job()
    now = running.now if running is not None else dt.datetime.now(dt.UTC)
    day = now.astimezone(uow.registry.timezone).date()

    def progress(done: int, total: int) -> None:
        log.info("dunning of %s: %d of %d notices considered", day, done, total)

    summary = run(uow, day, progress=progress)
    log.info("dunning of %s done: %s", day, "; ".join(summary.lines()))
    enqueue(uow, SEND_JOB, {}, run_at=now, key=SEND_JOB)
    enqueue(uow, DUNNING_JOB, {}, run_at=next_run(uow, now + dt.timedelta(minutes=1)), key=DUNNING_JOB)
    return {"summary": summary.lines()}


def send_job(uow: UnitOfWork, payload: Any) -> dict[str, int]:
    """Send the pending and failed e-mail notices after their claim commits with the job's
    unit of work (:func:`crm_billing.notices.send_in`): a failed commit sends nothing."""
    from crm_billing.notices import send_in

    report = send_in(uow)
    return {"sent": report.sent, "failed": report.failed, "skipped": report.skipped}


def handlers() -> dict[str, Any]:
    return {DUNNING_JOB: dunning_job, SEND_JOB: send_job}


def seed(uow: UnitOfWork) -> list[str]:
    """Queue the first dunning run when none is queued or running."""
    if uow.query("job").where(("status", "in", (QUEUED, RUNNING)), kind=DUNNING_JOB).count():
        return []
    enqueue(uow, DUNNING_JOB, {}, run_at=next_run(uow, dt.datetime.now(dt.UTC)), key=DUNNING_JOB)
    return ["dunning job queued"]
