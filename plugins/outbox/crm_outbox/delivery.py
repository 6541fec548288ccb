"""Delivery: the worker's side of the outbox.

:func:`deliver` loops over batches: it **claims** due requests in a short transaction of its
own (pending ones whose time has come, and ``delivering`` ones whose worker's lease ran out),
marking them ``delivering`` under the worker's name with a lease and counting the attempt; it
**hands** each sink its part of the batch outside any transaction (in a thread of its own,
while the main thread records the previous batch and claims the next); then it **records** the
outcomes in another short transaction: delivered, answered (a sink's synchronous answer, with
the ``outbox_answered`` hook), or failed, either back to ``pending`` after a growing delay or
``failed`` after the last attempt.

Two workers never deliver the same request at once: a claim is a versioned update, so of two
workers claiming the same rows one wins and the other claims again and finds them taken. A
worker that dies keeps its requests only until its lease runs out; another worker then claims
and delivers them again, and the sinks' idempotency (the file sink never writes a file twice,
the HTTP sink's receiver dedups on the ``Idempotency-Key`` header) makes that second delivery
a no-op for the other system. Outcomes are recorded only for requests the worker still holds.

The worker's job ``outbox.deliver`` (queued by every post) runs :func:`deliver`; when requests
wait for a later attempt, it queues itself again for the earliest of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import attrs
from crmcore import Actor, Record
from crmcore.errors import BusyError, ConflictError, CrmError, NotFoundError, ValidationError
from crmcore.jobs import current_job, default_worker_id

from crm_outbox.access import RETRY_PERMISSION
from crm_outbox.answers import apply_answers, collect_file_answers
from crm_outbox.entities import DELIVERED, DELIVERING, FAILED, PENDING
from crm_outbox.posting import DELIVER_JOB, queue_delivery
from crm_outbox.settings import OutboxSettings, outbox_settings
from crm_outbox.sinks import Outcome, OutgoingRequest

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork

__all__ = ["DELIVER_JOB", "DeliveryStats", "deliver", "deliver_job", "retry", "retry_failed"]

log = logging.getLogger(__name__)

#: How often a claim that lost a race for the rows is tried again at once.
_CLAIM_TRIES = 5
#: Claims lost in a row (each after its tries) before a run leaves the rest to other workers.
_LOST_CLAIMS = 20
#: Requests a run retries before it leaves the rest to the next run (its claims name them).
_MAX_TRIED = 5000
_ENTITY = "outbox_request"
#: The fields of a claimed request a sink gets.
_HANDED = ("idempotency_key", "kind", "sink", "payload", "source_entity", "source_id", "attempts")


@attrs.define
class DeliveryStats:
    """What one run of :func:`deliver` did.

    :ivar delivered: requests their sink took.
    :ivar duplicates: of those, requests the sink had already (delivered by a worker that
        stopped before recording it): not delivered a second time.
    :ivar retried: requests that failed and wait for a later attempt.
    :ivar failed: requests that failed their last attempt (or were refused for good).
    :ivar answered: supply states changed by the sinks' answers.
    :ivar taken_over: requests another worker took over before this one recorded them.
    :ivar next_retry_at: when the earliest request to retry is due (a delivery job is queued
        for then), or ``None``.
    """

    worker_id: str
    delivered: int = 0
    duplicates: int = 0
    retried: int = 0
    failed: int = 0
    answered: int = 0
    taken_over: int = 0
    batches: int = 0
    seconds: float = 0.0
    next_retry_at: dt.datetime | None = None

    @property
    def handled(self) -> int:
        """Requests this run claimed."""
        return self.delivered + self.retried + self.failed + self.taken_over

    def summary(self) -> str:
        """One line, such as ``3 requests: 2 delivered, 1 to retry, 0 failed in 0.1 s``."""
        if not self.handled and not self.answered:
            return f"no requests were due ({self.seconds:.1f} s)"
        text = (
            f"{self.handled} request{'s' if self.handled != 1 else ''}: {self.delivered} "
            f"delivered, {self.retried} to retry, {self.failed} failed"
        )
        if self.duplicates:
            text += f" ({self.duplicates} found already delivered)"
        if self.answered:
            text += f"; {self.answered} answered"
        if self.taken_over:
            text += f"; {self.taken_over} taken over by other workers"
        return f"{text} in {self.seconds:.1f} s"


def deliver(
    crm: Crm,
    *,
    limit: int | None = None,
    now: dt.datetime | None = None,
    worker_id: str | None = None,
    batch_size: int | None = None,
) -> DeliveryStats:
    """Deliver the due requests of *crm* to their sinks, batch by batch, until none is due or
    *limit* requests were claimed; then read the answers files of the file sinks.

    :param limit: claim at most this many requests.
    :param now: act at this time instead of the clock's (tests move time with it).
    :param worker_id: the name the claims carry (default: host, pid, random).
    :param batch_size: requests per batch (default: ``[plugins.outbox] batch_size``).
    :returns: the :class:`DeliveryStats`.
    """
    settings = outbox_settings(crm)
    size = batch_size or settings.batch_size
    stats = DeliveryStats(worker_id or default_worker_id())
    started = time.monotonic()
    tried: set[int] = set()  # requests this run retried: each is tried once per run
    lost = 0  # claims lost in a row
    claimed_total = 0
    pending: tuple[list[OutgoingRequest], Future[dict[str, Outcome]]] | None = None
    fresh: list[OutgoingRequest] | None = None  # claimed, not handed to the sinks yet
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="outbox-sink") as sinks:
            try:
                while True:
                    over = (limit is not None and claimed_total >= limit) or len(
                        tried
                    ) >= _MAX_TRIED
                    wanted = size if limit is None else min(size, limit - claimed_total)
                    claimed = fresh = (
                        []
                        if over
                        else _claim(crm, settings, stats.worker_id, wanted, now or _utcnow(), tried)
                    )
                    if pending is not None:  # the batch the sinks had while this one was claimed
                        records, handed = pending
                        outcomes = handed.result()
                        pending = None
                        tried.update(_record(crm, settings, stats, records, outcomes, now))
                    if claimed is None:  # other workers claimed first, again and again
                        lost += 1
                        if lost < _LOST_CLAIMS:
                            continue
                        log.info(
                            "outbox worker %s stops: other workers keep claiming first",
                            stats.worker_id,
                        )
                        break
                    lost = 0
                    if not claimed:
                        break
                    claimed_total += len(claimed)
                    stats.batches += 1
                    pending = (claimed, sinks.submit(_hand_over, settings, claimed))
                    fresh = None
            except BaseException:  # interrupted: what the sinks did not finish goes back at once
                if pending is not None:
                    with contextlib.suppress(BaseException):
                        pending[1].result()
                    _release(crm, stats.worker_id, pending[0])
                if fresh:
                    _release(crm, stats.worker_id, fresh)
                raise
        if stats.next_retry_at is not None:  # the worker comes back for the earliest retry
            with crm.unit_of_work(Actor.system()) as uow:
                queue_delivery(uow, stats.next_retry_at, key=None)
                uow.commit()
        stats.answered += collect_file_answers(crm, settings)
    finally:
        stats.seconds = time.monotonic() - started
    log.info("outbox worker %s: %s", stats.worker_id, stats.summary())
    return stats


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _due(now: dt.datetime) -> dict[str, Any]:
    return {
        "any": [
            {"all": [("delivery", "=", PENDING), ("next_attempt_at", "<=", now)]},
            {"all": [("delivery", "=", DELIVERING), ("lease_until", "<", now)]},
        ]
    }


def _claim(
    crm: Crm,
    settings: OutboxSettings,
    worker_id: str,
    size: int,
    now: dt.datetime,
    tried: set[int] | None = None,
) -> list[OutgoingRequest] | None:
    """Claim up to *size* due requests for *worker_id* in a transaction of their own, leaving
    out those *tried* already by this run.

    The due requests are picked by id, then claimed with set-based updates whose filter says
    again that they are due (one update per attempts count, usually one): a request another
    worker claimed meanwhile is not matched, and of two units updating the same row, the
    second loses on the row's version and claims again.

    :returns: the claimed requests (those a sink needs: key, kind, payload, ...), ``[]`` when
        none is due, or ``None`` when other workers won every try.
    """
    due_now: list[Any] = [_due(now)]
    if tried:
        due_now.append(("id", "not in", sorted(tried)))
    lease = now + dt.timedelta(seconds=settings.lease_seconds)
    for attempt in range(_CLAIM_TRIES):
        try:
            with crm.unit_of_work(Actor.system()) as uow:
                due = (
                    uow.query(_ENTITY)
                    .where(*due_now)
                    .order_by("next_attempt_at")
                    .limit(size)
                    .fields(*_HANDED)
                    .all()
                )
                if not due:
                    return []
                by_attempts: dict[int, list[int]] = defaultdict(list)
                for record in due:
                    by_attempts[record.attempts or 0].append(record.id)
                claimed: list[int] = []
                for attempts, ids in by_attempts.items():
                    claimed += (
                        uow.select(_ENTITY)
                        .where(("id", "in", ids), *due_now)
                        .update(
                            set={
                                "delivery": DELIVERING,
                                "locked_by": worker_id,
                                "lease_until": lease,
                                "attempts": attempts + 1,
                                "last_attempt_at": now,
                            }
                        )
                    )
                uow.commit()
            if not claimed:  # all taken by others between the read and the update: look again
                raise ConflictError("the due requests were claimed by other workers meanwhile")
            taken = set(claimed)  # what a request is asked is never changed: read it with its id
            return [
                OutgoingRequest(
                    r.id,
                    r.idempotency_key,
                    r.kind,
                    r.sink,
                    r.payload,
                    r.source_entity,
                    r.source_id,
                    (r.attempts or 0) + 1,
                )
                for r in due
                if r.id in taken
            ]
        except (ConflictError, BusyError):  # another worker claimed some of them first
            log.debug("outbox worker %s lost a claim (try %d)", worker_id, attempt + 1)
            time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # jitter: workers drift apart
    return None


def _release(crm: Crm, worker_id: str, claimed: Sequence[OutgoingRequest]) -> None:
    """Give requests *worker_id* claimed but did not hand over back to the other workers (best
    effort: what it cannot release waits for the lease to run out)."""
    try:
        with crm.unit_of_work(Actor.system()) as uow:
            uow.select(_ENTITY).where(
                ("id", "in", [request.id for request in claimed]),
                ("locked_by", "=", worker_id),
                ("delivery", "=", DELIVERING),
            ).update(set={"delivery": PENDING, "locked_by": None, "lease_until": None})
            uow.commit()
    except Exception:  # the lease still ends; nothing else to do
        log.warning(
            "outbox worker %s could not release %d request(s); they wait for the lease",
            worker_id,
            len(claimed),
        )


def _hand_over(settings: OutboxSettings, claimed: Sequence[OutgoingRequest]) -> dict[str, Outcome]:
    """Give each sink its requests; ``{key: outcome}`` (a sink that raised fails its batch)."""
    by_sink: dict[str, list[OutgoingRequest]] = defaultdict(list)
    for request in claimed:
        by_sink[request.sink].append(request)
    outcomes: dict[str, Outcome] = {}
    for name, requests in by_sink.items():
        sink = settings.sinks.get(name)
        if sink is None:
            error = (
                f"sink {name!r} is not in [outbox.sinks]; add it to the settings, then "
                "`crm outbox retry --failed`"
            )
            outcomes.update((r.key, Outcome.failed(r.key, error, retry=False)) for r in requests)
            continue
        try:
            answered = list(sink.deliver(requests))
        except Exception as exc:  # a sink's failure is its batch's, kept on each request
            error = f"sink {name!r} raised {type(exc).__name__}: {exc}"
            log.warning(
                "outbox sink %s failed a batch of %d: %s", name, len(requests), type(exc).__name__
            )
            answered = [Outcome.failed(r.key, error) for r in requests]
        outcomes.update((outcome.key, outcome) for outcome in answered)
        for request in requests:
            if request.key not in outcomes:
                outcomes[request.key] = Outcome.failed(
                    request.key, f"sink {name!r} gave no outcome for the request"
                )
    return outcomes


def _record(
    crm: Crm,
    settings: OutboxSettings,
    stats: DeliveryStats,
    claimed: Sequence[OutgoingRequest],
    outcomes: dict[str, Outcome],
    now: dt.datetime | None,
) -> list[int]:
    """Record the outcomes of the requests *stats*' worker still holds, in one transaction.

    :returns: the ids of the requests to retry later."""
    at = now or _utcnow()
    for attempt in range(_CLAIM_TRIES):
        try:
            with crm.unit_of_work(Actor.system()) as uow:
                counts = _write_outcomes(uow, settings, stats.worker_id, claimed, outcomes, at)
                uow.commit()
            break
        except (ConflictError, BusyError):
            if attempt == _CLAIM_TRIES - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    delivered, duplicates, retried, failed, answered, held, again, next_at = counts
    if next_at is not None and (stats.next_retry_at is None or next_at < stats.next_retry_at):
        stats.next_retry_at = next_at
    stats.delivered += delivered
    stats.duplicates += duplicates
    stats.retried += retried
    stats.failed += failed
    stats.answered += answered
    stats.taken_over += len(claimed) - held
    return again


def _write_outcomes(
    uow: UnitOfWork,
    settings: OutboxSettings,
    worker_id: str,
    claimed: Sequence[OutgoingRequest],
    outcomes: dict[str, Outcome],
    at: dt.datetime,
) -> tuple[int, int, int, int, int, int, list[int], dt.datetime | None]:
    """Write the outcomes set-based: one update for the delivered requests, one per distinct
    failure (error and next time); each matches only requests *worker_id* still holds."""
    mine = [("locked_by", "=", worker_id), ("delivery", "=", DELIVERING)]
    released = {"locked_by": None, "lease_until": None}
    delivered: list[int] = []
    failures: dict[tuple[str, Any], list[int]] = defaultdict(list)
    answers: dict[int, tuple[str, str]] = {}
    duplicate_ids: set[int] = set()
    for request in claimed:
        outcome = outcomes[request.key]
        if outcome.ok:
            delivered.append(request.id)
            if outcome.duplicate:
                duplicate_ids.add(request.id)
            if outcome.state is not None:
                answers[request.id] = (request.key, outcome.state)
        elif outcome.retry and request.attempt < settings.max_attempts:
            failures[(outcome.error or "failed", at + settings.delay(request.attempt))].append(
                request.id
            )
        else:
            failures[(outcome.error or "failed", None)].append(request.id)
    held = (
        uow.select(_ENTITY)
        .where(("id", "in", delivered), *mine)
        .update(set={**released, "delivery": DELIVERED, "delivered_at": at, "last_error": None})
        if delivered
        else []
    )
    again: list[int] = []
    failed = 0
    for (error, next_at), ids in failures.items():
        changes = {**released, "last_error": error}
        changes.update(
            {"delivery": FAILED}
            if next_at is None
            else {"delivery": PENDING, "next_attempt_at": next_at}
        )
        done = uow.select(_ENTITY).where(("id", "in", ids), *mine).update(set=changes)
        if next_at is None:
            failed += len(done)
        else:
            again += done
    kept = set(held)
    answered = 0
    if answers:
        pairs = [answers[i] for i in held if i in answers]
        answered = _answer(uow, pairs, at) if pairs else 0
    duplicates = len(duplicate_ids & kept)
    return (
        len(held),
        duplicates,
        len(again),
        failed,
        answered,
        len(held) + len(again) + failed,
        again,
        min((next_at for (_, next_at) in failures if next_at is not None), default=None),
    )


def _answer(uow: UnitOfWork, pairs: list[tuple[str, str]], at: dt.datetime) -> int:
    """Apply a sink's synchronous answers, all or nothing within the unit: a hook refusing
    them leaves the deliveries recorded, the supply states unchanged and the error on the
    requests (the other system's answer can be given again with ``crm outbox answer``)."""
    try:
        return int(uow.atomic(apply_answers, uow, pairs, at=at, skip_invalid=True))
    except CrmError as exc:
        log.error(
            "answers to %d outbox request(s) not recorded: %s", len(pairs), type(exc).__name__
        )
        note = f"delivered, but its answer was not recorded: {exc}"
        for state in sorted({state for _, state in pairs}):
            keys = [key for key, given in pairs if given == state]
            uow.select(_ENTITY).where(("idempotency_key", "in", keys)).update(
                set={"last_error": f"{note} (answer: {state})"}
            )
        return 0


# -- the worker's job -------------------------------------------------------------------------


def deliver_job(uow: UnitOfWork, payload: Any) -> None:
    """The handler of the ``outbox.deliver`` job: :func:`deliver`, outside the job's unit.

    Delivery talks to other systems and must not hold the database while it does (on SQLite
    the job's unit holds the write lock), so the handler commits the job's unit first (the
    worker then records the job as done on its own) and delivers in short transactions of its
    own; requests it could not deliver are due again through their own retry times.
    """
    crm = uow.crm
    running = current_job()
    uow.commit()
    stats = deliver(crm, worker_id=running.worker_id if running else None)
    if stats.handled or stats.answered:
        log.info("outbox.deliver job: %s", stats.summary())


# -- retrying by hand -------------------------------------------------------------------------


def retry(uow: UnitOfWork, ids: Sequence[int]) -> list[int]:
    """Send failed (or pending) requests *ids* again at once, their attempts counted anew.

    Needs the ``outbox.outbox_request.retry`` privilege.

    :returns: the ids of the requests queued again.
    :raises NotFoundError: naming an id that is not a request.
    :raises ValidationError: naming a request that is delivered or being delivered.
    """
    uow.require(_ENTITY, RETRY_PERMISSION)
    with uow.system_scope("failed outbox requests are sent again on request"):
        found = {record.id: record for record in uow.find_many(_ENTITY, "id", list(ids))}
        for request_id in ids:
            record = found.get(request_id)
            if record is None:
                raise NotFoundError(
                    f"outbox request {request_id!r} not found; "
                    "`crm outbox list` shows the requests",
                    entity=_ENTITY,
                    id=request_id,
                )
            if record.delivery in (DELIVERED, DELIVERING):
                raise ValidationError(
                    f"outbox request {request_id} is {record.delivery}; only failed or pending "
                    "requests are sent again",
                    entity=_ENTITY,
                )
        return _requeue(uow, [found[i] for i in dict.fromkeys(ids)])


def retry_failed(uow: UnitOfWork) -> list[int]:
    """Send every failed request again at once (``crm outbox retry --failed``).

    :returns: the ids of the requests queued again.
    """
    uow.require(_ENTITY, RETRY_PERMISSION)
    with uow.system_scope("failed outbox requests are sent again on request"):
        return _requeue(uow, uow.query(_ENTITY).where(delivery=FAILED).all())


def _requeue(uow: UnitOfWork, records: Sequence[Record]) -> list[int]:
    if not records:
        return []
    now = _utcnow()
    uow.update_many(
        _ENTITY,
        [
            (
                record,
                {
                    "delivery": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "locked_by": None,
                    "lease_until": None,
                },
            )
            for record in records
        ],
    )
    queue_delivery(uow)
    return [record.id for record in records]
