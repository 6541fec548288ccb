"""Documents and their versions: attaching a document to any record, adding versions whose
content goes to the content store, reading them back, and finding documents by title, kind,
record and dates.

The plugin's record hooks (:mod:`crm_documents.hooks`) keep a document consistent whatever
API wrote it: the record it is attached to must be one the actor may read; a core link field
(account, contact, lead, opportunity) and the record entity and id say the same; the notice
date follows the end date and the notice period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore.errors import NotFoundError, ValidationError

from crm_documents import text
from crm_documents.entities import LINKS
from crm_documents.settings import store

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["add_version", "attach", "content", "find", "versions"]

_LISTED = (
    "id",
    "title",
    "kind",
    "record_entity",
    "record_id",
    "filename",
    "content_type",
    "size",
    "version_count",
    "valid_from",
    "valid_until",
    "notice_days",
    "notice_date",
    "owner_id",
    "updated_at",
)


def _data(source: bytes | str | Path) -> tuple[bytes, str | None]:
    if isinstance(source, bytes):
        return source, None
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise ValidationError(
            {"content": [f"cannot read {str(path)!r}: {exc.strerror}; give a readable file"]},
            entity="document_version",
        ) from None


def attach(
    uow: UnitOfWork,
    record: Record | tuple[str, int],
    title: str,
    source: bytes | str | Path | None = None,
    *,
    kind: str = "other",
    filename: str | None = None,
    media_type: str | None = None,
    valid_from: dt.date | str | None = None,
    valid_until: dt.date | str | None = None,
    notice_days: int | None = None,
    comment: str | None = None,
) -> Record:
    """A new document titled *title* attached to *record* (a record, or ``(entity, id)`` of
    any entity type), with a first version from *source* (bytes or a file path) if given.

    :raises NotFoundError: when the actor may not read the record.
    :raises ValidationError: for an unknown kind, dates that do not fit, or a bad content.
    """
    entity, record_id = (record.entity, record.id) if not isinstance(record, tuple) else record
    if entity not in uow.registry or entity in ("document", "document_version"):
        raise ValidationError(
            {"record_entity": [f"no entity type {entity!r} to attach a document to"]},
            entity="document",
        )
    if not uow.get_many(entity, [int(record_id)]):
        raise ValidationError(
            {
                "record_id": [
                    f"no {entity} {record_id} you may read; attach documents to records "
                    "you can open"
                ]
            },
            entity="document",
        )
    values: dict[str, Any] = {
        "title": title,
        "kind": kind,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "notice_days": notice_days,
    }
    link = dict(LINKS).get(entity)
    if link is not None:  # the hook derives the record from the core's link field
        values[link] = int(record_id)
    document = uow.create("document", {k: v for k, v in values.items() if v is not None})
    if link is None:
        with uow.system_scope("a document is attached to a record its author may read") as scoped:
            scoped.update(document, record_entity=entity, record_id=int(record_id))
        document = uow.get("document", document.id)
    if source is not None:
        add_version(
            uow, document, source, filename=filename, media_type=media_type, comment=comment
        )
        document = uow.get("document", document.id)
    return document


def add_version(
    uow: UnitOfWork,
    document: Record | int,
    source: bytes | str | Path,
    *,
    filename: str | None = None,
    media_type: str | None = None,
    comment: str | None = None,
) -> Record:
    """A new version of *document* from *source* (bytes or a file path): the content goes to
    the store by its hash (kept once however often it is added), its text is extracted for
    search (PDF and text files), and the document takes the new version's file metadata.

    :raises NotFoundError: when the actor may not read the document.
    :raises PermissionDeniedError: when the actor may not update it.
    """
    current = uow.get("document", document if isinstance(document, int) else document.id)
    uow.check_access_many([current], "update")
    data, named = _data(source)
    name = filename or named
    media = media_type or text.media_type(name, data)
    digest, size, _new = store(uow.crm).put(data)
    number = (current.values.get("version_count") or 0) + 1
    version = uow.create(
        "document_version",
        document_id=current.id,
        number=number,
        content_hash=digest,
        size=size,
        media_type=media,
        filename=name,
        comment=comment,
    )
    current = uow.update(
        current,
        filename=name,
        content_type=media,
        size=size,
        checksum=f"sha256:{digest}",
        uri=str(store(uow.crm).path(digest)),
    )
    with uow.system_scope("a new version sets its document's count and searchable text") as scoped:
        scoped.update(current, version_count=number, content_text=text.extract(data, media))
    return version


def versions(uow: UnitOfWork, document: Record | int) -> list[Record]:
    """The versions of *document*, first first.

    :raises NotFoundError: when the actor may not read the document.
    """
    current = uow.get("document", document if isinstance(document, int) else document.id)
    return uow.query("document_version").where(document_id=current.id).order_by("number").all()


def content(
    uow: UnitOfWork, document: Record | int, number: int | None = None
) -> tuple[Record, bytes]:
    """The version *number* of *document* (default: the latest) and its content.

    :raises NotFoundError: when the actor may not read the document, or it has no such
        version.
    """
    found = versions(uow, document)
    if number is not None:
        found = [v for v in found if v.values["number"] == number]
    if not found:
        doc_id = document if isinstance(document, int) else document.id
        what = f"version {number}" if number is not None else "a version"
        raise NotFoundError(f"document {doc_id} has no {what}", entity="document_version")
    version = found[-1]
    return version, store(uow.crm).get(version.values["content_hash"])


def find(
    uow: UnitOfWork,
    *,
    title: str | None = None,
    kind: str | None = None,
    record: Record | tuple[str, int] | None = None,
    account_id: int | None = None,
    ending_before: dt.date | None = None,
    ending_after: dt.date | None = None,
    notice_before: dt.date | None = None,
    valid_on: dt.date | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The documents the actor may read that match every condition given, by end date then
    title: *title* contained (any case), *kind*, attached to *record* (or to any record of
    account *account_id*: its own documents and those linked to it), ending before or after a
    day, with a notice date before a day, or valid on a day. Rows of :data:`_LISTED` fields.
    """
    conditions: list[Any] = []
    if title:
        conditions.append(("title", "contains", title))
    if kind:
        conditions.append(("kind", "=", kind))
    if record is not None:
        entity, record_id = (record.entity, record.id) if not isinstance(record, tuple) else record
        conditions += [("record_entity", "=", entity), ("record_id", "=", int(record_id))]
    if account_id is not None:
        conditions.append(("account_id", "=", account_id))
    if ending_before is not None:
        conditions.append(("valid_until", "<", ending_before))
    if ending_after is not None:
        conditions.append(("valid_until", ">", ending_after))
    if notice_before is not None:
        conditions.append(("notice_date", "<", notice_before))
    if valid_on is not None:
        conditions += [
            {"any": [("valid_from", "is null"), ("valid_from", "<=", valid_on)]},
            {"any": [("valid_until", "is null"), ("valid_until", ">=", valid_on)]},
        ]
    select = uow.select("document", fields=_fields(uow)).order_by("valid_until", "title")
    if conditions:
        select = select.where(*conditions)
    return select.limit(limit).all()


def _fields(uow: UnitOfWork) -> Sequence[str]:
    hidden = uow.hidden_fields("document")
    return tuple(name for name in _LISTED if name not in hidden)
