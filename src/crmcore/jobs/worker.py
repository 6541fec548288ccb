"""The worker: claims due jobs and runs each in its own unit of work (``crm worker``).

:func:`run_worker` loops: it gives the jobs of stopped workers back to the queue
(:func:`reclaim`), claims a batch of due jobs (:func:`claim`) and runs them one by one
(:func:`run_job`); with ``once=True`` it returns when nothing is due any more, otherwise it polls
until stopped.

Claiming is one statement. On PostgreSQL it is ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
SKIP LOCKED)``, so workers side by side never take the same job. On SQLite, which has one writer
at a time, the same ``UPDATE ... WHERE status = 'queued' ... RETURNING`` is the first statement
of its transaction, so it waits for the write lock and sees the latest rows: a job is claimed
once. A claim sets the job running, counts an attempt and records the worker and the time.

Each job runs in a unit of work of the system actor whose first statement re-checks that the
worker still holds the job (and takes the row, or SQLite's write lock); the handler's writes and
the job's ``done`` commit together, so a job's work is committed at most once even when a worker
is presumed dead and its job reclaimed. A handler that raises rolls its unit back; the job is
queued again after an exponential delay (:func:`retry_delay`) or, after its last attempt, kept as
``failed`` with the error. A job whose worker stopped mid-run (no result within the lock
timeout) is queued again; on PostgreSQL a job whose unit is still open is never taken that way.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import ConflictError, CrmError, NotFoundError
from crmcore.jobs.queue import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Handler,
    Job,
    error_text,
    job_handlers,
    unknown_kind_message,
    utcnow,
)
from crmcore.storage.engine import lost_race

if TYPE_CHECKING:
    from crmcore.app import Crm

__all__ = [
    "RETRIED",
    "SUPERSEDED",
    "TAKEN_OVER",
    "WorkerSettings",
    "WorkerStats",
    "RunningJob",
    "claim",
    "current_job",
    "default_worker_id",
    "reclaim",
    "release",
    "retry_delay",
    "run_job",
    "run_worker",
    "stop_on_signals",
    "worker_settings",
]

log = logging.getLogger(__name__)

#: Outcomes of :func:`run_job` besides ``done`` and ``failed``: queued again for a later attempt;
#: failed but cancelled, since a newer job of its key is queued (that one does the work); or
#: taken over by another worker (the job was reclaimed meanwhile; nothing was written).
RETRIED = "retried"
SUPERSEDED = "superseded"
TAKEN_OVER = "taken over"
#: How often a job whose unit lost a race for the database is run again at once.
CONFLICT_TRIES = 3


@attrs.frozen
class WorkerSettings:
    """How workers behave (``[plugins."core.jobs"]`` in the settings).

    :param batch_size: jobs claimed at a time.
    :param lock_timeout: seconds after which a running job without a result is presumed
        abandoned by its worker and queued again.
    :param retry_delay: seconds before the second attempt; each further one waits twice as long.
    :param retry_delay_max: the longest wait between two attempts, in seconds.
    """

    batch_size: int = 10
    lock_timeout: float = 900.0
    retry_delay: float = 30.0
    retry_delay_max: float = 3600.0


@attrs.frozen
class RunningJob:
    """The job a handler runs, as :func:`current_job` tells it.

    :ivar job: the job (``attempts`` counts this run).
    :ivar now: the time the worker acts at: the clock's when the job started, or the ``now``
        given to :func:`run_worker` (tests freeze time with it). Handlers that compare times
        should use it rather than the clock.
    :ivar worker_id: the worker running it.
    """

    job: Job
    now: dt.datetime
    worker_id: str


_running: contextvars.ContextVar[RunningJob | None] = contextvars.ContextVar("crmcore_running_job", default=None)


def current_job() -> RunningJob | None:
    """The job the calling handler runs, or ``None`` outside a job.

    Example::

        def escalate(uow, payload):
            running = current_job()
            now = running.now if running else datetime.now(UTC)
    """
    return _running.get()


def worker_settings(crm: Crm) -> WorkerSettings:
    """The worker settings of *crm* (the defaults unless the settings change them)."""
    return crm.find_state(WorkerSettings) or WorkerSettings()


def retry_delay(attempts: int, base: float = 30.0, cap: float = 3600.0) -> dt.timedelta:
    """How long a job waits after its *attempts*-th failed attempt: ``base · 2^(attempts-1)``,
    at most *cap* seconds (30 s, 60 s, 120 s, ... with the defaults)."""
    exponent = max(attempts, 1) - 1
    seconds = cap if exponent >= 64 else min(base * 2**exponent, cap)
    return dt.timedelta(seconds=seconds)


def default_worker_id() -> str:
    """``host:pid:random``: names the worker in ``locked_by`` and the logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


@attrs.define
class WorkerStats:
    """What one run of :func:`run_worker` did.

    :ivar done: jobs that succeeded.
    :ivar retried: jobs that failed and were queued for a later attempt.
    :ivar failed: jobs that failed their last attempt.
    :ivar superseded: jobs that failed while a newer job of their key was queued.
    :ivar taken_over: jobs another worker had reclaimed before this one ran them.
    :ivar reclaimed: running jobs of stopped workers given back to the queue.
    """

    worker_id: str
    done: int = 0
    retried: int = 0
    failed: int = 0
    superseded: int = 0
    taken_over: int = 0
    reclaimed: int = 0
    seconds: float = 0.0

    @property
    def ran(self) -> int:
        """Jobs this worker ran to an outcome."""
        return self.done + self.retried + self.failed + self.superseded

    def count(self, outcome: str) -> None:
        if outcome == DONE:
            self.done += 1
        elif outcome == RETRIED:
            self.retried += 1
        elif outcome == FAILED:
            self.failed += 1
        elif outcome == SUPERSEDED:
            self.superseded += 1
        else:
            self.taken_over += 1

    def summary(self) -> str:
        """One line, such as ``3 jobs run: 2 done, 1 to retry, 0 failed in 0.2 s``."""
        if not self.ran:
            text = "no jobs were due"
        else:
            text = (f"{self.ran} job{'s' if self.ran != 1 else ''} run: {self.done} done, "
                    f"{self.retried} to retry, {self.failed} failed")
        if self.superseded:
            text += f", {self.superseded} superseded by a newer job of their key"
        if self.reclaimed:
            text += f"; {self.reclaimed} reclaimed from stopped workers"
        if self.taken_over:
            text += f"; {self.taken_over} taken over by other workers"
        return f"{text} in {self.seconds:.1f} s"


# -- the queue's statements -----------------------------------------------------------------------


def _superseded(table: sa.Table) -> sa.ColumnElement[bool]:
    """The job has a key and another job of that key is queued (it then does the work)."""
    other = table.alias("other_job")
    return sa.and_(table.c.key.is_not(None), sa.exists().where(other.c.queued_key == table.c.key))


def _back_in_queue(table: sa.Table, *, final: sa.ColumnElement[bool] | None, error: Any, now: dt.datetime) -> dict[str, Any]:
    """SET values that put running jobs back in the queue: ``failed`` where *final* holds,
    ``cancelled`` when a newer job of their key is queued, else ``queued`` (with their key)."""
    superseded = _superseded(table)

    def case(if_final: Any, if_superseded: Any, otherwise: Any) -> Any:
        branches = [*(((final, if_final),) if final is not None else ()), (superseded, if_superseded)]
        if all(value is None for _, value in branches) and otherwise is None:
            return None  # a bare NULL takes the column's type; a CASE of NULLs would be text
        return sa.case(*branches, else_=otherwise)

    superseded_note = sa.literal("superseded by a newer job with the same key")
    return {
        "status": case(FAILED, CANCELLED, QUEUED),
        "queued_key": case(None, None, table.c.key),
        "last_error": case(error, superseded_note, error if error is not None else table.c.last_error),
        "finished_at": case(now, now, None),
        "locked_by": case(table.c.locked_by, None, None),
        "locked_at": case(table.c.locked_at, None, None),
        "version": table.c.version + 1,
        "updated_at": now,
        "updated_by": None,
    }


def _update(connection: sa.Connection, statement: Any) -> list[str]:
    """Run an UPDATE of jobs that may put a key back, returning the new status of each job it
    changed. On PostgreSQL a job of that key queued at the same moment by another transaction
    makes it fail once, and the second try sees that job."""
    table = statement.table
    statement = statement.returning(table.c.status)
    for attempt in range(2):
        try:
            with connection.begin_nested():
                return list(connection.execute(statement).scalars())
        except sa.exc.IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def claim(crm: Crm, worker_id: str, limit: int = 10, *, now: dt.datetime | None = None) -> list[Job]:
    """Take up to *limit* due jobs (queued, ``run_at <= now``), oldest first, for *worker_id*.

    The claim commits at once: the jobs are ``running``, locked by the worker, one attempt more.
    """
    now = now or utcnow()
    table = crm.registry.table("job")
    due = (
        sa.select(table.c.id).where(table.c.status == QUEUED, table.c.run_at <= now)
        .order_by(table.c.run_at, table.c.id).limit(limit)
    )
    with crm.connect() as connection:
        if connection.dialect.name == "postgresql":
            # a materialized CTE: as a subquery of IN, PostgreSQL may scan it again per row and,
            # skipping what it locked meanwhile, take more than *limit* jobs
            chosen = due.with_for_update(skip_locked=True).cte("due_job").prefix_with("MATERIALIZED")
            which = table.c.id == chosen.c.id
        else:
            which = table.c.id.in_(due)
        statement = (
            sa.update(table).where(which, table.c.status == QUEUED)
            .values(status=RUNNING, locked_by=worker_id, locked_at=now, attempts=table.c.attempts + 1,
                    queued_key=None, version=table.c.version + 1, updated_at=now, updated_by=None)
            .returning(*table.c)
        )
        with connection.begin():
            rows = connection.execute(statement).mappings().all()
    jobs = sorted((Job.from_row(row) for row in rows), key=lambda job: (job.run_at, job.id))
    if jobs:
        log.debug("worker %s claimed jobs %s", worker_id, [job.id for job in jobs])
    return jobs


def reclaim(crm: Crm, timeout: float, *, now: dt.datetime | None = None) -> int:
    """Queue again the jobs running for longer than *timeout* seconds without a result.

    Their worker is presumed stopped: the job is queued (due at once), or failed when that
    was its last attempt. On PostgreSQL a job whose unit of work is still open is left alone.

    :returns: how many jobs were reclaimed.
    """
    now = now or utcnow()
    table = crm.registry.table("job")
    condition = sa.and_(table.c.status == RUNNING, table.c.locked_at < now - dt.timedelta(seconds=timeout))
    stale = sa.select(table.c.id).where(condition)
    error = (sa.literal("worker ") + sa.func.coalesce(table.c.locked_by, "?")
             + sa.literal(f" stopped before finishing it (no result within {timeout:g} s)"))
    with crm.connect() as connection:
        # almost always there is none: a plain read first, so that a poll writes nothing
        found = connection.execute(sa.select(table.c.id).where(condition).limit(1)).first()
        connection.rollback()
        if found is None:
            return 0
        if connection.dialect.name == "postgresql":
            stale = stale.with_for_update(skip_locked=True)
        values = _back_in_queue(table, final=table.c.attempts >= table.c.max_attempts, error=error, now=now)
        with connection.begin():
            try:
                count = len(_update(connection, sa.update(table).where(table.c.id.in_(stale)).values(values)))
            except sa.exc.IntegrityError:  # two stale jobs of one key: one at a time
                count = 0
                for job_id in connection.execute(stale).scalars().all():
                    count += len(_update(connection, sa.update(table).where(table.c.id == job_id).values(values)))
    if count:
        log.warning("reclaimed %d job(s) whose worker stopped before finishing them", count)
    return count


def release(crm: Crm, worker_id: str, job_ids: Sequence[int], *, now: dt.datetime | None = None) -> int:
    """Give claimed jobs that *worker_id* did not start back to the queue (their attempt is not
    counted). A stopping worker calls it for the rest of its batch.

    :returns: how many jobs were released.
    """
    if not job_ids:
        return 0
    now = now or utcnow()
    table = crm.registry.table("job")
    mine = sa.and_(table.c.id.in_(list(job_ids)), table.c.status == RUNNING, table.c.locked_by == worker_id)
    values = {**_back_in_queue(table, final=None, error=None, now=now), "attempts": table.c.attempts - 1}
    with crm.connect() as connection, connection.begin():
        count = len(_update(connection, sa.update(table).where(mine).values(values)))
    log.debug("worker %s released %d job(s)", worker_id, count)
    return count


# -- running one job ------------------------------------------------------------------------------


def run_job(
    crm: Crm,
    job: Job,
    worker_id: str,
    *,
    now: dt.datetime | None = None,
    handlers: Mapping[str, Handler] | None = None,
    settings: WorkerSettings | None = None,
) -> str:
    """Run one claimed *job* in its own unit of work of the system actor.

    The handler's writes and the job's ``done`` commit together. A handler that raises rolls
    its unit back; the job is then queued for a later attempt, or kept as ``failed`` with the
    error after its last one. A unit that lost a race for the database is run again at once.

    :param now: the time the worker acts at (tests freeze it); default: the clock.
    :returns: ``"done"``, ``"retried"``, ``"failed"``, ``"superseded"`` (failed while a newer
        job of its key is queued: it is cancelled), or ``"taken over"`` when another worker
        reclaimed the job meanwhile (nothing is written then).
    """
    handlers = job_handlers(crm) if handlers is None else handlers
    settings = settings or worker_settings(crm)
    failure: Exception | None = None
    for _ in range(CONFLICT_TRIES):
        try:
            return _run_once(crm, job, worker_id, handlers, now)
        except ConflictError as exc:
            failure = exc
            log.info("job %s (%s) lost a race for the database; running it again", job.id, job.kind)
        except Exception as exc:  # whatever a handler raises is its job's failure, kept on the job
            failure = exc
            break
        except BaseException:  # interrupted: the job goes back to the queue for another worker
            with contextlib.suppress(Exception):
                release(crm, worker_id, [job.id])
            raise
    assert failure is not None
    return _failed(crm, job, worker_id, failure, now or utcnow(), settings)


@attrs.frozen
class _Statements:
    """The per-job statements, built once per app (a worker runs them for every job)."""

    hold: Any
    done: Any

    @classmethod
    def of(cls, crm: Crm) -> _Statements:
        def make() -> _Statements:
            table = crm.registry.table("job")
            mine = sa.and_(table.c.id == sa.bindparam("job_id"), table.c.status == RUNNING,
                           table.c.locked_by == sa.bindparam("worker_id"))
            return cls(
                hold=sa.update(table).where(mine).values(locked_at=sa.bindparam("at")),
                done=sa.update(table).where(mine).values(
                    status=DONE, finished_at=sa.bindparam("at"), version=table.c.version + 1,
                    updated_at=sa.bindparam("at"), updated_by=None,
                ),
            )

        return crm.cached_state(cls, make)


def _run_once(crm: Crm, job: Job, worker_id: str, handlers: Mapping[str, Handler], now: dt.datetime | None) -> str:
    statements = _Statements.of(crm)
    ids = {"job_id": job.id, "worker_id": worker_id}
    started = now or utcnow()
    with crm.unit_of_work(Actor.system()) as uow:
        # the first statement: it checks that the job is still this worker's and takes its row
        # (PostgreSQL) or the write lock (SQLite) for the whole unit
        held = uow.connection.execute(statements.hold, {**ids, "at": started}).rowcount
        if held != 1:
            log.info("job %s (%s) was taken over by another worker", job.id, job.kind)
            return TAKEN_OVER
        handler = handlers.get(job.kind)
        if handler is None:
            raise NotFoundError(unknown_kind_message(job.kind, handlers), entity="job", id=job.id)
        token = _running.set(RunningJob(job, started, worker_id))
        try:
            handler(uow, job.payload)
        finally:
            _running.reset(token)
        finished = {**ids, "at": now or utcnow()}
        try:
            connection = uow.connection
        except CrmError:  # the handler ended the unit itself: record the outcome on its own
            connection = None
        if connection is None:
            with crm.connect() as other, other.begin():
                other.execute(statements.done, finished)
            return DONE
        connection.execute(statements.done, finished)
        try:
            uow.commit()
        except sa.exc.OperationalError as exc:
            raise lost_race(exc, timeout=crm.settings.busy_timeout) from exc
        except CrmError:
            if _is_done(crm, job.id, worker_id):  # committed; a signal receiver raised afterwards
                log.warning("job %s (%s) is done, but a signal receiver raised after the commit", job.id, job.kind)
                return DONE
            raise
    return DONE


def _is_done(crm: Crm, job_id: int, worker_id: str) -> bool:
    table = crm.registry.table("job")
    with crm.connect() as connection:
        status = connection.execute(
            sa.select(table.c.status).where(table.c.id == job_id, table.c.locked_by == worker_id)
        ).scalar()
    return status == DONE


def _failed(crm: Crm, job: Job, worker_id: str, failure: Exception, now: dt.datetime, settings: WorkerSettings) -> str:
    table = crm.registry.table("job")
    mine = sa.and_(table.c.id == job.id, table.c.status == RUNNING, table.c.locked_by == worker_id)
    final = job.attempts >= job.max_attempts
    text = error_text(failure)
    if final:
        values: dict[str, Any] = {
            "status": FAILED, "last_error": text, "finished_at": now,
            "version": table.c.version + 1, "updated_at": now, "updated_by": None,
        }
    else:
        delay = retry_delay(job.attempts, settings.retry_delay, settings.retry_delay_max)
        values = {**_back_in_queue(table, final=None, error=text, now=now), "run_at": now + delay}
    with crm.connect() as connection, connection.begin():
        changed = _update(connection, sa.update(table).where(mine).values(values))
    if not changed:
        log.info("job %s (%s) was taken over by another worker", job.id, job.kind)
        return TAKEN_OVER
    if changed[0] == CANCELLED:
        log.warning("job %s (%s) failed attempt %d of %d: %s; cancelled, a newer job of its key is queued",
                    job.id, job.kind, job.attempts, job.max_attempts, type(failure).__name__)
        return SUPERSEDED
    if final:
        log.error("job %s (%s) failed its last attempt (%d of %d): %s", job.id, job.kind, job.attempts,
                  job.max_attempts, type(failure).__name__)
        return FAILED
    log.warning("job %s (%s) failed attempt %d of %d: %s; next attempt at %s", job.id, job.kind, job.attempts,
                job.max_attempts, type(failure).__name__, values["run_at"].isoformat())
    return RETRIED


# -- the loop -------------------------------------------------------------------------------------


def run_worker(
    crm: Crm,
    once: bool = False,
    max_jobs: int | None = None,
    worker_id: str | None = None,
    poll: float = 1.0,
    *,
    now: dt.datetime | None = None,
    batch_size: int | None = None,
    lock_timeout: float | None = None,
    stop: threading.Event | None = None,
    on_job: Callable[[Job, str, float], Any] | None = None,
) -> WorkerStats:
    """Run due jobs until nothing is due (*once*), *max_jobs* ran, or *stop* is set.

    :param once: return when no job is due instead of polling.
    :param max_jobs: stop after running this many jobs.
    :param worker_id: the name in ``locked_by`` and the logs (default: host, pid, random).
    :param poll: seconds to wait when nothing is due.
    :param now: act at this time instead of the clock's (tests freeze time with it; use with
        *once*).
    :param batch_size: jobs claimed at a time (default: the settings').
    :param lock_timeout: seconds after which a job running without a result is reclaimed
        (default: the settings').
    :param stop: set it (from a signal handler or another thread) to stop after the current job;
        the rest of the batch goes back to the queue.
    :param on_job: called after each job with the job, its outcome and the seconds it took.
    :returns: the :class:`WorkerStats`.
    """
    settings = worker_settings(crm)
    settings = attrs.evolve(
        settings,
        batch_size=batch_size if batch_size is not None else settings.batch_size,
        lock_timeout=lock_timeout if lock_timeout is not None else settings.lock_timeout,
    )
    if settings.batch_size < 1:
        raise CrmError(f"batch_size must be at least 1, got {settings.batch_size!r}")
    worker_id = worker_id or default_worker_id()
    stop = stop or threading.Event()
    handlers = job_handlers(crm)
    stats = WorkerStats(worker_id)
    started = time.monotonic()
    log.info("worker %s started", worker_id)
    try:
        while not stop.is_set() and (max_jobs is None or stats.ran < max_jobs):
            clock = now or utcnow()
            limit = settings.batch_size if max_jobs is None else min(settings.batch_size, max_jobs - stats.ran)
            try:
                stats.reclaimed += reclaim(crm, settings.lock_timeout, now=clock)
                jobs = claim(crm, worker_id, limit, now=clock)
            except sa.exc.OperationalError as exc:
                if not isinstance(lost_race(exc), ConflictError):
                    raise
                log.info("worker %s: the database is busy; trying again", worker_id)
                stop.wait(poll)
                continue
            if not jobs:
                if once:
                    break
                stop.wait(poll)
                continue
            _run_batch(crm, jobs, worker_id, stats, stop, max_jobs, now, handlers, settings, on_job)
    finally:
        stats.seconds = time.monotonic() - started
        log.info("worker %s stopped: %s", worker_id, stats.summary())
    return stats


def _run_batch(
    crm: Crm, jobs: list[Job], worker_id: str, stats: WorkerStats, stop: threading.Event, max_jobs: int | None,
    now: dt.datetime | None, handlers: Mapping[str, Handler], settings: WorkerSettings,
    on_job: Callable[[Job, str, float], Any] | None,
) -> None:
    index = 0
    try:
        while index < len(jobs):
            if stop.is_set() or (max_jobs is not None and stats.ran >= max_jobs):
                break
            job = jobs[index]
            index += 1
            began = time.monotonic()
            outcome = run_job(crm, job, worker_id, now=now, handlers=handlers, settings=settings)
            stats.count(outcome)
            log.info("job %s (%s): %s", job.id, job.kind, outcome)
            if on_job is not None:
                on_job(job, outcome, time.monotonic() - began)
    finally:
        rest = [job.id for job in jobs[index:]]
        if rest:
            with contextlib.suppress(Exception):  # best effort: if it fails, the jobs are reclaimed later
                release(crm, worker_id, rest)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """Set *stop* on SIGINT or SIGTERM while the block runs (in the main thread), so the worker
    finishes its current job and returns; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: Any) -> None:
        log.info("%s received: finishing the current job", signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
