"""The service plugin's daily job (``service.daily``): the contract sweep (reminders,
renewals, expiries), the contracts' recurring fees offered to billing, the SLA penalties of
new breaches and the planned service generation over the rolling horizon, at the worker's
time, then the next run a day later. The seed queues the
first run; the job's key keeps it one.

The generation runs as a chain of jobs (``service.generate``), one page of plans each: every
page is committed by the worker as its own job, and queues the next, so a run takes the memory
of one page whatever the number of plans and visits, and a failing page is retried alone."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.jobs import current_job, enqueue

from crm_service.contracts import bill_fees, contract_sweep
from crm_service.penalties import record_breaches
from crm_service.planned import generate_page

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["DAILY_JOB", "DAILY_KEY", "GENERATE_JOB", "daily", "generate", "handlers",
           "local_today", "queue_daily", "queue_generation"]

DAILY_JOB = "service.daily"
DAILY_KEY = "service:daily"
GENERATE_JOB = "service.generate"


def local_today(uow: UnitOfWork, at: dt.datetime) -> dt.date:
    """The date of *at* in the deployment's time zone."""
    return at.astimezone(uow.registry.timezone or dt.UTC).date()


def queue_daily(uow: UnitOfWork, run_at: dt.datetime | None = None) -> int:
    """Queue the daily job at *run_at* (default: now), moving the queued one if any."""
    return enqueue(uow, DAILY_JOB, None, run_at=run_at, key=DAILY_KEY, max_attempts=3)


def daily(uow: UnitOfWork, payload: Any) -> None:
    """Job ``service.daily``: sweep the contracts and generate planned service as of the
    worker's day, queue tomorrow's."""
    running = current_job()
    at = running.now if running is not None else dt.datetime.now(dt.UTC)
    today = local_today(uow, at)
    contract_sweep(uow, today)
    bill_fees(uow, today)
    record_breaches(uow, at)
    queue_generation(uow, today, at)
    queue_daily(uow, at + dt.timedelta(days=1))


def queue_generation(uow: UnitOfWork, today: dt.date, run_at: dt.datetime,
                     after: int = 0) -> int:
    """Queue the generation of planned service as of *today*, from the page of plans after
    plan id *after*, due at *run_at*."""
    return enqueue(uow, GENERATE_JOB, {"today": today.isoformat(), "after": after},
                   run_at=run_at, max_attempts=3)


def generate(uow: UnitOfWork, payload: Any) -> None:
    """Job ``service.generate``: generate one page of plans as of ``payload["today"]`` after
    plan id ``payload["after"]``, and queue the next page if there is one."""
    running = current_job()
    at = running.now if running is not None else dt.datetime.now(dt.UTC)
    today = dt.date.fromisoformat(payload["today"])
    _, after = generate_page(uow, today, after=int(payload["after"]))
    if after is not None:
        queue_generation(uow, today, at, after)


def handlers() -> dict[str, Any]:
    """The service plugin's job handlers, by kind."""
    return {DAILY_JOB: daily, GENERATE_JOB: generate}
