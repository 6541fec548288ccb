"""The jobs table: work to run later, written in the caller's transaction.

A job is a row of the ``job`` entity type (table ``crm_job``): a *kind* naming its handler, a
JSON *payload*, the time it is due (*run_at*) and its state. :func:`enqueue` writes it through
the caller's unit of work, so a unit that rolls back enqueues nothing. Plugins (and the core)
name their handlers by kind through the ``crm_job_handlers`` hook; :func:`job_handlers`
collects them once per app. ``crm worker`` (:mod:`crmcore.jobs.worker`) runs the due jobs.

A job may carry a dedupe *key*: while a job with that key is queued, enqueueing the key again
updates that job (its kind, payload, due time and attempts) instead of adding one, so a
reminder scheduled twice is one job. The unique column ``queued_key`` holds the key while the
job is queued and is cleared when a worker takes it, so a job of the same key may be queued
again while the first one runs. :func:`cancel` cancels the queued job of a key.

Jobs are plumbing, not business records: they are not audited, every field is read-only for
users, and the rows are written with set-based statements, not through the record hooks.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmcore.errors import CrmError, PluginError, ValidationError
from crmcore.storage.engine import lost_race

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "JOB_STATUSES",
    "QUEUED",
    "RUNNING",
    "Handler",
    "Job",
    "cancel",
    "cancel_many",
    "enqueue",
    "enqueue_many",
    "get_job",
    "job_handlers",
    "retry",
]

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
#: Every status a job can have: queued → running → done, or back to queued for a retry,
#: or failed after its last attempt; cancelled by :func:`cancel` or superseded by a newer job
#: of the same key.
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
#: The longest dedupe key.
KEY_LENGTH = 200
#: The longest error text kept on a job.
ERROR_LENGTH = 4000

#: A job handler: called with a unit of work of the system actor and the job's payload.
Handler = Callable[["UnitOfWork", Any], Any]


@attrs.frozen
class _Handlers:
    """The job handlers of an app by kind, collected once (kept as the app's state)."""

    by_kind: dict[str, Handler]


@attrs.frozen
class _Inserts:
    """The INSERTs of a job without and with a dedupe key, built once per app (kept as the
    app's state): returning the id (*one*) and for many rows (*many*)."""

    one: tuple[Any, Any]
    many: tuple[Any, Any]


@attrs.frozen
class Job:
    """One job as read from the table.

    :ivar attempts: how many times a worker started it (a claim counts as one).
    :ivar key: the dedupe key it was enqueued with, if any.
    :ivar locked_by: the worker running it, or the one that ran it last.
    :ivar locked_at: when that worker started it.
    """

    id: int
    kind: str
    payload: Any
    run_at: dt.datetime
    status: str
    attempts: int
    max_attempts: int
    key: str | None = None
    last_error: str | None = None
    locked_by: str | None = None
    locked_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Job:
        """The job of a row of ``crm_job`` (or of a job record's values)."""
        values: dict[str, Any] = {field.name: row.get(field.name) for field in attrs.fields(cls)}
        return cls(**values)

    def __repr__(self) -> str:
        return f"<Job id={self.id} kind={self.kind} status={self.status} attempts={self.attempts}/{self.max_attempts}>"


def utcnow() -> dt.datetime:
    """The current time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)


# -- handlers -----------------------------------------------------------------------------------


def job_handlers(crm: Crm) -> dict[str, Handler]:
    """Every job handler of *crm* by kind, from the ``crm_job_handlers`` hook (collected once).

    :raises PluginError: when a plugin returns something else than ``{kind: callable}``, or two
        plugins handle the same kind.
    """
    return crm.cached_state(_Handlers, lambda: _Handlers(_collect_handlers(crm))).by_kind


def _collect_handlers(crm: Crm) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    owners: dict[str, str] = {}
    for part in crm.plugins.call_each("crm_job_handlers"):
        plugin, result = part.plugin, part.result
        if not isinstance(result, Mapping):
            raise PluginError(
                f"plugin {plugin!r} returned {result!r} from crm_job_handlers; "
                "return a dict of job kind to handler function",
                plugin=plugin, hook="crm_job_handlers",
            )
        for kind, handler in result.items():
            if not isinstance(kind, str) or not kind.strip() or not callable(handler):
                raise PluginError(
                    f"plugin {plugin!r} returned {kind!r}: {handler!r} from crm_job_handlers; "
                    "each entry maps a job kind (text) to a function taking (uow, payload)",
                    plugin=plugin, hook="crm_job_handlers",
                )
            if kind in handlers:
                raise PluginError(
                    f"plugins {owners[kind]!r} and {plugin!r} both handle job kind {kind!r}; "
                    "disable one of them",
                    plugin=plugin, hook="crm_job_handlers",
                )
            handlers[kind] = handler
            owners[kind] = plugin
    return handlers


def unknown_kind_message(kind: str, handlers: Mapping[str, Handler]) -> str:
    """The message for a job whose kind no enabled plugin handles."""
    known = ", ".join(repr(k) for k in sorted(handlers)) or "none"
    return (
        f"no handler for job kind {kind!r}; known kinds: {known}; enable the plugin that handles it "
        "(its crm_job_handlers hook names the kind), or cancel the job"
    )


# -- writing ------------------------------------------------------------------------------------


def enqueue(
    uow: UnitOfWork,
    kind: str,
    payload: Any = None,
    run_at: dt.datetime | dt.timedelta | str | None = None,
    max_attempts: int = 5,
    key: str | None = None,
) -> int:
    """Queue a job in *uow*'s transaction: it exists once the unit commits, never if it rolls back.

    :param kind: the kind of work; a handler of that kind must be registered.
    :param payload: what the handler receives: any JSON value (ids, not whole records).
    :param run_at: when it is due: an aware datetime (a naive one or ISO text is read in the
        deployment's time zone), a :class:`~datetime.timedelta` from now, or ``None`` for now.
    :param max_attempts: how many times a failing job is tried before it is kept as failed.
    :param key: a dedupe key: if a job with this key is queued, that job is updated to this
        kind, payload and time (its attempts start over) instead of a second one being added.
    :returns: the job's id (the existing job's, for a key already queued).
    :raises ValidationError: for an unknown kind, a payload that is not JSON, a bad time, a
        *max_attempts* below 1 or a key that is empty or too long.
    """
    row = _job_row(uow, kind, payload, run_at, max_attempts, key, utcnow())
    statement = _inserts(uow)[key is not None]
    job_id: int = _execute(uow, statement, row).scalar_one()
    log.debug("queued job %s (%s) due %s", job_id, kind, row["run_at"].isoformat())
    return job_id


def enqueue_many(
    uow: UnitOfWork,
    kind: str,
    jobs: Iterable[tuple[Any, dt.datetime | dt.timedelta | str | None, str | None]],
    max_attempts: int = 5,
) -> int:
    """:func:`enqueue` for many jobs of one *kind*: ``(payload, run_at, key)`` each, validated
    first (a bad one queues none), then written with one statement for those with a key and one
    for those without. Where several share a key, the last one given is queued, as if each had
    been enqueued in turn.

    :returns: how many jobs were queued or updated (one per key).
    :raises ValidationError: as :func:`enqueue`, naming the payload or key at fault.
    """
    stamp = utcnow()
    keyed: dict[str, dict[str, Any]] = {}
    plain: list[dict[str, Any]] = []
    for payload, run_at, key in jobs:
        row = _job_row(uow, kind, payload, run_at, max_attempts, key, stamp)
        if row["key"] is None:
            plain.append(row)
        else:
            keyed.pop(row["key"], None)  # the last of a key wins, in its place
            keyed[row["key"]] = row
    insert, upsert = _inserts(uow, returning=False)
    for statement, rows in ((insert, plain), (upsert, list(keyed.values()))):
        for start in range(0, len(rows), 1000):
            _execute(uow, statement, rows[start:start + 1000])
    if plain or keyed:
        log.debug("queued %d jobs (%s)", len(plain) + len(keyed), kind)
    return len(plain) + len(keyed)


def cancel(uow: UnitOfWork, key: str) -> int:
    """Cancel the queued job of *key* in *uow*'s transaction (a running one finishes its run).

    :returns: how many jobs were cancelled: 1, or 0 when none of that key is queued.
    """
    return cancel_many(uow, [key])


def cancel_many(uow: UnitOfWork, keys: Iterable[str]) -> int:
    """:func:`cancel` for each of *keys*, with one statement per 500 keys.

    :returns: how many jobs were cancelled (keys with no queued job count none).
    """
    checked = []
    for key in keys:
        valid = _checked_key(key)
        if valid is None:
            raise ValidationError({"key": ["cancel needs the dedupe key the job was enqueued with"]}, entity="job")
        checked.append(valid)
    table = uow.registry.table("job")
    stamp = utcnow()
    cancelled = 0
    for start in range(0, len(checked), 500):
        statement = sa.update(table).where(table.c.queued_key.in_(checked[start:start + 500])).values(
            status=CANCELLED, queued_key=None, finished_at=stamp,
            version=table.c.version + 1, updated_at=stamp, updated_by=uow.actor.user_id,
        )
        cancelled += _execute(uow, statement).rowcount
    if cancelled:
        log.debug("cancelled the queued jobs of %d keys", cancelled)
    return cancelled


def retry(uow: UnitOfWork, job_id: int, run_at: dt.datetime | dt.timedelta | str | None = None) -> Job:
    """Queue a failed or cancelled job again, its attempts starting over.

    Needs the ``update`` privilege on jobs (the system actor has it).

    :raises NotFoundError: when there is no such job (or the actor may not read it).
    :raises ValidationError: when the job is queued or running, or when its key is held by
        another queued job (which will do the work).
    """
    uow.require("job", "update")
    job = get_job(uow, job_id)
    if job.status not in (FAILED, CANCELLED):
        raise ValidationError(
            f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried", entity="job",
        )
    table = uow.registry.table("job")
    if job.key is not None:
        holder = _execute(uow, sa.select(table.c.id).where(table.c.queued_key == job.key)).scalar()
        if holder is not None:
            raise ValidationError(
                f"job {job.id} cannot be retried: job {holder} with the same key {job.key!r} is queued and will do the work",
                entity="job",
            )
    stamp = utcnow()
    when = _due_time(uow, run_at)
    _execute(uow, sa.update(table).where(table.c.id == job.id).values(
        status=QUEUED, attempts=0, run_at=when, queued_key=job.key, finished_at=None, locked_by=None, locked_at=None,
        version=table.c.version + 1, updated_at=stamp, updated_by=uow.actor.user_id,
    ))
    return attrs.evolve(job, status=QUEUED, attempts=0, run_at=when, finished_at=None, locked_by=None, locked_at=None)


def get_job(uow: UnitOfWork, job_id: int) -> Job:
    """The job with *job_id*, if the actor may read it.

    :raises NotFoundError: when there is none.
    """
    return Job.from_row(uow.get("job", job_id).values)


# -- helpers ------------------------------------------------------------------------------------


def _due_time(uow: UnitOfWork, run_at: dt.datetime | dt.timedelta | str | None) -> dt.datetime:
    if run_at is None:
        return utcnow()
    if isinstance(run_at, dt.timedelta):
        return utcnow() + run_at
    try:
        parsed = uow.registry.entity("job").field("run_at").parse(run_at)
    except ValueError as exc:
        raise ValidationError({"run_at": [str(exc)]}, entity="job") from None
    if parsed is None:
        raise ValidationError({"run_at": [f"expected a date and time such as '2026-03-31T14:30:00+02:00', got {run_at!r}"]}, entity="job")
    return parsed  # type: ignore[no-any-return]


def _job_row(
    uow: UnitOfWork, kind: str, payload: Any, run_at: dt.datetime | dt.timedelta | str | None, max_attempts: int,
    key: str | None, stamp: dt.datetime,
) -> dict[str, Any]:
    """The row of a new job, its values checked as :func:`enqueue` documents."""
    handlers = job_handlers(uow.crm)
    if kind not in handlers:
        raise ValidationError({"kind": [unknown_kind_message(kind, handlers)]}, entity="job")
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            {"payload": [f"a job's payload must be a JSON value (ids rather than records), got {payload!r}: {exc}"]},
            entity="job",
        ) from None
    when = _due_time(uow, run_at)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValidationError({"max_attempts": [f"expected a whole number of at least 1, got {max_attempts!r}"]}, entity="job")
    key = _checked_key(key)
    user = uow.actor.user_id
    return {
        "kind": kind, "payload": payload, "run_at": when, "status": QUEUED, "attempts": 0,
        "max_attempts": max_attempts, "key": key, "queued_key": key, "version": 1,
        "created_at": stamp, "updated_at": stamp, "created_by": user, "updated_by": user,
    }


def _checked_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip() or len(key) > KEY_LENGTH:
        raise ValidationError(
            {"key": [f"a dedupe key is text of 1 to {KEY_LENGTH} characters, got {key!r}"]}, entity="job",
        )
    return key


def _inserts(uow: UnitOfWork, *, returning: bool = True) -> tuple[Any, Any]:
    """The INSERT of a job without a key and the one with a key (``ON CONFLICT (queued_key) DO
    UPDATE``), built once per app: the values come as parameters. With *returning* they
    return the job's id; without, they suit many rows at once."""
    inserts = uow.crm.cached_state(_Inserts, lambda: _make_inserts(uow))
    return inserts.one if returning else inserts.many


def _make_inserts(uow: UnitOfWork) -> _Inserts:
    table = uow.registry.table("job")
    dialect = uow.connection.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise CrmError(f"jobs need SQLite or PostgreSQL, not {dialect!r}")
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    again = {name: insert.excluded[name] for name in ("kind", "payload", "run_at", "max_attempts", "updated_at", "updated_by")}
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c.queued_key], set_={**again, "attempts": 0, "version": table.c.version + 1},
    )
    return _Inserts(one=(sa.insert(table).returning(table.c.id), upsert.returning(table.c.id)),
                    many=(sa.insert(table), upsert))


def _execute(uow: UnitOfWork, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
    try:
        return uow.connection.execute(statement, parameters)
    except sa.exc.OperationalError as exc:
        raise lost_race(exc, timeout=uow.crm.settings.busy_timeout) from exc



def error_text(exc: BaseException) -> str:
    """What a job keeps of the error that failed it: type, message and where it was raised."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        text += f" (in {code.co_name}, {code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno})"
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"

