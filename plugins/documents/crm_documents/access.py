"""Who reads a document (``crm_access_restrictions``), compiled into the one SQL predicate of
every read: a document attached to a record is read only by those who may read the record
(the record's own predicate, whatever its entity type, plugins' included), on top of the
document's ownership and sharing rules (the core's model for the ownable ``document``). A
version is read by those who may read its document."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from crmcore.security import FieldEquals, FieldIn, IdSet, Restriction, all_of, any_of

if TYPE_CHECKING:
    from crmcore.security import AccessContext, Predicate

__all__ = ["restrictions"]

_OWN = frozenset({"document", "document_version"})


def _record_readable(context: AccessContext) -> Predicate:
    document = context.registry.entity("document")
    kind = document.field("record_entity").column  # predicates name columns
    key = document.field("record_id").column
    parts: list[Predicate] = [FieldEquals(kind, None)]
    for etype in context.registry:
        if etype.name in _OWN:
            continue
        table = context.table(etype.name)
        readable = sa.select(table.c.id).where(context.predicate(etype.name, "read").sql(table))
        parts.append(
            all_of(
                [
                    FieldEquals(kind, etype.name),
                    FieldIn(key, IdSet(query=readable, label=f"{etype.plural} readable")),
                ]
            )
        )
    return any_of(parts)


def restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """Documents of records the actor may read; versions of documents the actor may read."""
    if entity == "document":
        return [
            Restriction(
                _record_readable(context),
                "a document is read by those who may read the record it is attached to",
            )
        ]
    if entity == "document_version":
        document = context.table("document")
        ids = sa.select(document.c.id).where(context.predicate("document", "read").sql(document))
        return [
            Restriction(
                FieldIn("document_id", IdSet(query=ids, label="documents the actor may read")),
                "a version is read by those who may read its document",
            )
        ]
    return None
