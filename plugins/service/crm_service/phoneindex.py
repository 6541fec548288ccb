"""The call center's phone index: the last eight digits of every contact's and account's
phone numbers, in the plugin's own table ``service_phone``, so a caller is found with an
indexed equality instead of comparing every stored number.

The index is kept by the record hooks (creates, updates of ``phone`` or ``mobile``, deletes of
contacts and accounts, batch-shaped) and filled by the seed for records written before the
plugin was enabled. It only narrows the search: the records it names are read through the
unit of work (the actor's access applies) and their numbers compared in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "DDL",
    "FIELDS",
    "PHONE",
    "candidates",
    "changed",
    "ensure",
    "forget",
    "index",
    "suffix",
]

#: The phone fields indexed, per entity type.
FIELDS = {"contact": ("phone", "mobile"), "account": ("phone",)}
PHONE = sa.table("service_phone", sa.column("entity", sa.String()),
                 sa.column("record_id", sa.Integer()), sa.column("suffix", sa.String()))
#: The index's schema objects (the plugin's migration makes them too).
DDL = (
    ("service_phone", "CREATE TABLE service_phone (entity VARCHAR(20) NOT NULL, "
                      "record_id INTEGER NOT NULL, suffix VARCHAR(8) NOT NULL)"),
    ("ix_service_phone_suffix", "CREATE INDEX ix_service_phone_suffix ON service_phone (suffix)"),
    ("ix_service_phone_record",
     "CREATE INDEX ix_service_phone_record ON service_phone (entity, record_id)"),
)
_DIGITS = 8
_PAGE = 5000


def suffix(text: str | None) -> str | None:
    """The last eight digits of a number (all of them when it has fewer; ``None`` for none)."""
    digits = "".join(c for c in text or "" if c.isdigit())
    return digits[-_DIGITS:] or None


def _rows(entity: str, records: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for record in records:
        values = record if isinstance(record, dict) else record.values
        found = {suffix(values.get(f)) for f in FIELDS[entity]} - {None}
        rows += [{"entity": entity, "record_id": values["id"], "suffix": s} for s in found]
    return rows


def index(uow: UnitOfWork, entity: str, records: Sequence[Any]) -> None:
    """(Re)index the numbers of *records* of *entity* (records or ``{"id", fields}`` rows)."""
    if entity not in FIELDS or not records:
        return
    raw = uow.raw("service")
    forget(uow, entity, [r["id"] if isinstance(r, dict) else r.id for r in records])
    rows = _rows(entity, records)
    if rows:
        raw.execute(sa.insert(PHONE), rows)


def forget(uow: UnitOfWork, entity: str, ids: Sequence[int]) -> None:
    """Drop the index rows of records *ids* of *entity*."""
    raw = uow.raw("service")
    for start in range(0, len(ids), 500):
        raw.execute(sa.delete(PHONE).where(PHONE.c.entity == entity,
                                           PHONE.c.record_id.in_(list(ids[start:start + 500]))))


def candidates(uow: UnitOfWork, number: str) -> dict[str, list[int]]:
    """``{entity: ids}`` of the records with a number ending like *number*."""
    key = suffix(number)
    found: dict[str, list[int]] = {entity: [] for entity in FIELDS}
    if key is None:
        return found
    rows = uow.raw("service").execute(
        sa.select(PHONE.c.entity, PHONE.c.record_id).where(PHONE.c.suffix == key))
    for row in rows:
        entity, record_id = row.entity, row.record_id
        if entity in found and record_id not in found[entity]:
            found[entity].append(record_id)
    return found


def ensure(uow: UnitOfWork) -> list[str]:
    """Create the index when missing and fill it from every contact and account (the seed)."""
    raw = uow.raw("service")
    made = [raw.ensure(name, statement) for name, statement in DDL]
    if not made[0] and raw.execute(sa.select(sa.func.count()).select_from(PHONE)).scalar():
        return []
    count = 0
    with uow.system_scope("fill the call center's phone index"):
        for entity, fields in FIELDS.items():
            after = 0
            while True:
                page = uow.select(entity, ("id", *fields)).where(("id", ">", after)).order_by(
                    "id").limit(_PAGE).all()
                if not page:
                    break
                rows = _rows(entity, page)
                if rows:
                    raw.execute(sa.insert(PHONE), rows)
                count += len(rows)
                after = page[-1]["id"]
    return [f"call center phone index filled ({count} numbers)"] if count else []


def changed(items: Sequence[tuple[Record, Record, dict[str, Any]]], entity: str) -> list[Record]:
    """The records of an update batch whose indexed numbers changed."""
    fields = FIELDS.get(entity, ())
    return [new for _, new, changes in items if any(f in changes for f in fields)]
