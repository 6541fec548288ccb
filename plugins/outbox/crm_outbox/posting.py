"""Posting requests: :class:`OutboxItem` and :func:`post`, which writes them in the caller's unit
of work, so that they exist once the change that decided them commits, and never otherwise.

Posting also queues the worker's delivery job (one job, whatever the number of posts), so that
``crm worker`` delivers the requests soon after the commit.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConflictError, ValidationError
from crmcore.jobs import enqueue

from crm_outbox.entities import KEY_LENGTH, PENDING
from crm_outbox.settings import outbox_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["DELIVER_JOB", "OutboxItem", "default_key", "post", "queue_delivery"]

#: The kind (and dedupe key) of the worker's delivery job.
DELIVER_JOB = "outbox.deliver"
#: What an idempotency key may hold: it names a file of the file sink and goes in an HTTP header.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]*")


def default_key(source_entity: str, source_id: int, kind: str) -> str:
    """The key of a request given none: ``<source_entity>:<source_id>:<kind>`` (one request of a
    kind per source record)."""
    return f"{source_entity}:{source_id}:{kind}"


@attrs.frozen
class OutboxItem:
    """A request to post: what to ask (*kind*, *payload*), of whom (*sink*, a name of
    ``[outbox.sinks]``), about which record (*source_entity*, *source_id*), and its
    idempotency *key* (by default ``<source_entity>:<source_id>:<kind>``)."""

    kind: str
    sink: str
    payload: Mapping[str, Any]
    source_entity: str
    source_id: int
    key: str | None = None

    @property
    def idempotency_key(self) -> str:
        """The key the request is posted under."""
        if self.key is not None:
            return self.key
        return default_key(self.source_entity, self.source_id, self.kind)


def post(uow: UnitOfWork, items: Sequence[OutboxItem]) -> list[int]:
    """Write one request per item in *uow*'s transaction and queue their delivery.

    The requests are written by the system on behalf of the acting user (who needs no
    privilege on requests), with one ``INSERT`` for all of them.

    :returns: the ids of the new requests, in the order of *items*.
    :raises ValidationError: naming the item for an empty kind, an unknown sink, a payload
        that is not a mapping, a bad key or a key given twice.
    :raises ConflictError: naming the key of a request posted before.
    """
    if not items:
        return []
    settings = outbox_settings(uow.crm)
    keys: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC)
    rows = []
    for index, item in enumerate(items):
        key = _check(index, item, settings.sinks)
        if key in keys:
            raise _invalid(
                "idempotency_key",
                f"outbox items {keys[key]} and {index} share the idempotency key {key!r}; "
                "give each request its own key",
            )
        keys[key] = index
        rows.append(
            {
                "kind": item.kind,
                "sink": item.sink,
                "payload": dict(item.payload),
                "idempotency_key": key,
                "source_entity": item.source_entity,
                "source_id": item.source_id,
                "supply_state": "requested",
                "delivery": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
            }
        )
    with uow.system_scope("requests to other systems are posted to the outbox"):
        taken = uow.find_many(
            "outbox_request", "idempotency_key", list(keys), fields=("idempotency_key",)
        )
        if taken:
            key = taken[0].idempotency_key
            raise ConflictError(
                f"an outbox request with the idempotency key {key!r} exists already "
                f"(request {taken[0].id}); post a new request under another key",
                entity="outbox_request",
                id=taken[0].id,
            )
        made = uow.create_many("outbox_request", rows)
        queue_delivery(uow)
    return [record.id for record in made]


def queue_delivery(
    uow: UnitOfWork, run_at: dt.datetime | None = None, *, key: str | None = DELIVER_JOB
) -> None:
    """Queue the worker's delivery job at *run_at* (default: now). With the default *key*,
    one such job is queued at most (queueing again moves it); ``key=None`` adds one."""
    enqueue(uow, DELIVER_JOB, {}, run_at=run_at, key=key)


def _check(index: int, item: Any, sinks: Mapping[str, Any]) -> str:
    where = f"outbox item {index}"
    if not isinstance(item, OutboxItem):
        raise ValidationError(f"{where} must be an OutboxItem, got {type(item).__name__}")
    if not isinstance(item.kind, str) or not item.kind.strip():
        raise _invalid("kind", f"{where}: kind must be a non-empty text, got {item.kind!r}")
    if item.sink not in sinks:
        known = ", ".join(sorted(sinks)) or "none"
        raise _invalid(
            "sink", f"{where}: unknown sink {item.sink!r}; sinks in [outbox.sinks]: {known}"
        )
    if not isinstance(item.payload, Mapping):
        raise _invalid(
            "payload",
            f"{where}: payload must be a mapping (a JSON object), "
            f"got {type(item.payload).__name__}",
        )
    try:
        json.dumps(item.payload, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _invalid(
            "payload",
            f"{where}: payload must hold JSON values only (write decimals, dates and "
            f"money as text): {exc}",
        ) from None
    if not isinstance(item.source_id, int) or isinstance(item.source_id, bool):
        raise _invalid(
            "source_id", f"{where}: source_id must be a record id, got {item.source_id!r}"
        )
    key = item.idempotency_key
    if not isinstance(key, str) or len(key) > KEY_LENGTH or not _KEY.fullmatch(key):
        raise _invalid(
            "idempotency_key",
            f"{where}: idempotency key {key!r} must be 1 to {KEY_LENGTH} letters, digits and "
            "'.', '_', ':', '@', '+', '-', starting with a letter or digit",
        )
    return key


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})
