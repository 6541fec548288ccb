"""Jobs, the worker and reminders: time-based work that ``crm worker`` runs.

Time-based rules, reminders and escalations become rows of the jobs table, written in the
caller's unit of work (:func:`enqueue`, :func:`cancel`, and for a batch :func:`enqueue_many`,
:func:`cancel_many`). Plugins name the handler of each kind of job through the
``crm_job_handlers`` hook. :func:`run_worker` (``crm worker``) claims due
jobs, runs each in its own unit of work of the system actor, retries failures with an
exponential delay and keeps a job that failed its last attempt with its error. On PostgreSQL
several workers run side by side and never run a job twice.

Example::

    from crmcore.jobs import enqueue, run_worker

    @hookimpl
    def crm_job_handlers():
        return {"helpdesk.escalate": escalate}       # escalate(uow, payload)

    with crm.unit_of_work() as uow:
        enqueue(uow, "helpdesk.escalate", {"ticket_id": 42}, run_at=timedelta(hours=8),
                key="escalate:42")
        uow.commit()

    run_worker(crm, once=True)

Reminders (:mod:`crmcore.jobs.reminders`) are built on jobs.
"""

from __future__ import annotations

from crmcore.jobs.queue import (
    CANCELLED,
    DONE,
    FAILED,
    JOB_STATUSES,
    KEY_LENGTH,
    QUEUED,
    RUNNING,
    Handler,
    Job,
    cancel,
    cancel_many,
    enqueue,
    enqueue_many,
    get_job,
    job_handlers,
    retry,
)
from crmcore.jobs.reminders import dismiss, due_reminders, schedule_reminder, snooze
from crmcore.jobs.worker import (
    RETRIED,
    SUPERSEDED,
    TAKEN_OVER,
    RunningJob,
    WorkerSettings,
    WorkerStats,
    claim,
    current_job,
    default_worker_id,
    reclaim,
    release,
    retry_delay,
    run_job,
    run_worker,
    stop_on_signals,
)

__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "JOB_STATUSES",
    "KEY_LENGTH",
    "QUEUED",
    "RETRIED",
    "RUNNING",
    "SUPERSEDED",
    "TAKEN_OVER",
    "Handler",
    "Job",
    "RunningJob",
    "WorkerSettings",
    "WorkerStats",
    "cancel",
    "cancel_many",
    "claim",
    "current_job",
    "default_worker_id",
    "dismiss",
    "due_reminders",
    "enqueue",
    "enqueue_many",
    "get_job",
    "job_handlers",
    "reclaim",
    "release",
    "retry",
    "retry_delay",
    "run_job",
    "run_worker",
    "schedule_reminder",
    "snooze",
    "stop_on_signals",
]
