"""The documents plugin's record hooks.

- A document names the record it is attached to by ``record_entity`` and ``record_id`` (any
  entity type) or by one of the core's link fields (opportunity, contact, lead, account, the
  most specific wins); the plugin fills in the other form, and the account of the record
  when the actor may read it. The record must be one the actor may read.
- A contract's dates must fit (the end not before the start, a notice period of zero days or
  more); the notice date is the end date minus the notice period.
- A version's uploader is the actor; a version does not change once written.
- Writing or deleting a contract queues, moves or cancels its reminders
  (:mod:`crm_documents.contracts`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.errors import PermissionDeniedError, ValidationError

from crm_documents import contracts
from crm_documents.entities import LINKS

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["after_delete", "after_write", "before_create", "before_update"]

_LINK_FIELDS = dict(LINKS)
_DATES = ("valid_from", "valid_until", "notice_days")


def before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None] | None:
    if entity == "document":
        return [_document(uow, values) for values in items]
    if entity == "document_version" and not uow.actor.is_system:
        return [{"uploader_id": uow.actor.user_id} for _ in items]
    return None


def _document(uow: UnitOfWork, merged: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    entity, record_id = merged.get("record_entity"), merged.get("record_id")
    if entity is None and record_id is None:
        for name, field in LINKS:
            if merged.get(field) is not None:
                entity, record_id = name, merged[field]
                changes.update(record_entity=name, record_id=record_id)
                break
    if entity is not None or record_id is not None:
        changes.update(_attached(uow, entity, record_id, merged))
    changes.update(_dates({**merged, **changes}))
    return changes


def _attached(
    uow: UnitOfWork, entity: Any, record_id: Any, merged: dict[str, Any]
) -> dict[str, Any]:
    if entity is None or record_id is None:
        raise ValidationError(
            {"record_id": ["give both record_entity and record_id, or neither"]}, entity="document"
        )
    if entity not in uow.registry or entity in ("document", "document_version"):
        raise ValidationError(
            {"record_entity": [f"no entity type {entity!r} to attach a document to"]},
            entity="document",
        )
    found = uow.get_many(entity, [int(record_id)])
    if not found:
        raise ValidationError(
            {
                "record_id": [
                    f"no {entity} {record_id} you may read; attach documents to records "
                    "you can open"
                ]
            },
            entity="document",
        )
    changes: dict[str, Any] = {}
    link = _LINK_FIELDS.get(entity)
    if link is not None and merged.get(link) is None:
        changes[link] = int(record_id)
    account = int(record_id) if entity == "account" else found[0].values.get("account_id")
    if (
        account is not None
        and merged.get("account_id") is None
        and uow.get_many("account", [account])
    ):
        changes["account_id"] = account
    return changes


def _dates(merged: dict[str, Any]) -> dict[str, Any]:
    start, end, notice = (
        merged.get("valid_from"),
        merged.get("valid_until"),
        merged.get("notice_days"),
    )
    if start is not None and end is not None and end < start:
        raise ValidationError(
            {"valid_until": [f"the contract ends ({end}) before it starts ({start})"]},
            entity="document",
        )
    if notice is not None and notice < 0:
        raise ValidationError(
            {"notice_days": [f"a notice period is zero days or more, got {notice}"]},
            entity="document",
        )
    if end is None:
        return {"notice_date": None}
    return {"notice_date": end - dt.timedelta(days=notice or 0)}


def before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None] | None:
    if entity == "document_version" and not uow.actor.is_system:
        raise PermissionDeniedError(
            "a document version does not change; add a new version instead",
            reasons=["document versions are kept as written"],
        )
    if entity != "document":
        return None
    found: list[dict[str, Any] | None] = []
    for record, changes in items:
        merged = {**record.values, **changes}
        result: dict[str, Any] = {}
        if {"record_entity", "record_id"} & set(changes):
            result.update(
                _attached(uow, merged.get("record_entity"), merged.get("record_id"), merged)
            )
        if set(_DATES) & set(changes):
            result.update(_dates(merged))
        found.append(result or None)
    return found


def after_write(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "document":
        contracts.schedule(uow, records)


def after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "document":
        contracts.cancel(uow, records)
