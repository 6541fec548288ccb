"""Set-based writes for the sales features: many creates and deletes at once (many updates
are :func:`crmcore.storage.batch.update_many`).

Each function runs exactly the steps of the unit of work's single-record method, a single
write being a batch of one (validation, ``before`` hooks once per batch, audit entries,
recorded changes, queued signals, ``after`` hooks once per batch), and sends the SQL once per batch: an ``INSERT`` of every row with ids reserved in advance
(:mod:`crmcore.storage.bulk`), a ``DELETE`` of the rows whose ids and versions are those read.
Callers check permissions first; these helpers write what they are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ConflictError, ReferenceError
from crmcore.fields import FieldType
from crmcore.records import Record
from crmcore.storage import internal, record_hooks
from crmcore.storage.bulk import BulkInsert, allocate_ids, processed_column
from crmcore.storage.operations import _now
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = ["create_many", "delete_many"]

_BATCH = 1000
_SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


def create_many(
    uow: UnitOfWork, entity: str, rows: Sequence[Mapping[str, Any]], *, known: Mapping[str, Iterable[int]] | None = None,
) -> list[Record]:
    """Create one record of *entity* per mapping of *rows*, as :meth:`UnitOfWork.create` would.

    The ``crm_before_create`` hooks get the batch, the rows go to the database in one driver
    call, each record is then recorded, audited and announced, and the ``crm_after_create``
    hooks get the batch.

    :param known: ``{entity: ids}`` of records read or written in this unit of work, whose
        existence the reference check need not query again.
    :returns: the new records (full, for the caller's bookkeeping), in the order of *rows*.
    :raises ValidationError: naming the first row that does not fit.
    :raises ReferenceError: when a reference names a missing record.
    """
    if not rows:
        return []
    etype = uow.registry.entity(entity)
    table = uow.registry.table(entity)
    uow.require(entity, "create")
    internal.check_writable(uow, etype, {name for row in rows for name in row})
    parsed = internal.prepare_create(uow, etype, [validate(etype, row) for row in rows])
    problems = uow.reference_errors(etype, parsed, pending=known)
    if problems:
        index = min(problems)
        raise ReferenceError(problems[index], entity=entity)
    ids = allocate_ids(uow.connection, table, len(parsed))
    now = _now()
    by = uow.actor.user_id
    # column by column: the values of each field, stored and processed for the driver in one
    # pass, then the rows; fields no row gives are left out (NULL, or the column's default)
    count = len(parsed)
    cells: list[Sequence[Any]] = [ids, [1] * count, [now] * count, [now] * count, [by] * count, [by] * count]
    columns = list(_SYSTEM)
    for field in etype.fields:
        name = field.name
        column_values = [row.get(name) for row in parsed]
        if all(value is None for value in column_values):
            continue
        names = [c.name for c in field.type.columns(field.column)]
        if type(field.type).to_db is FieldType.to_db and names == [field.column]:
            cells.append(column_values)
        else:
            to_db = field.type.to_db
            stored = [None if value is None else to_db(value, field.column) for value in column_values]
            cells.extend([None if cell is None else cell[c] for cell in stored] for c in names)
        columns.extend(names)
    insert = BulkInsert(uow.connection, table, columns)
    for index, processor in insert.processors:
        cells[index] = processed_column(cells[index], processor, keep_none=index not in insert.null_aware)
    values = list(zip(*cells, strict=True))
    with internal.refusals(uow, etype):
        insert.execute(values, processed=True)
    head = {"version": 1, "created_at": now, "updated_at": now, "created_by": by, "updated_by": by}
    every = [field.name for field in etype.fields]
    records: list[Record] = []
    for record_id, row in zip(ids, parsed, strict=True):
        out = {"id": record_id, **head}
        out.update(zip(every, map(row.get, every), strict=True))
        records.append(Record(entity, out))
    internal.created(uow, etype, records)
    internal.written(uow, entity)
    return records


def delete_many(uow: UnitOfWork, entity: str, records: Sequence[Record]) -> None:
    """Delete *records* (full, as read) whose references were dealt with by the caller: the
    ``crm_before_delete`` and ``crm_after_delete`` hooks run, tag links go, each deletion is
    audited with the record's full snapshot and announced.

    One ``DELETE`` per batch of records read at the same version removes the rows that still
    have it; when a row is missing or changed since it was read, :class:`ConflictError` is raised.
    """
    if not records:
        return
    etype = uow.registry.entity(entity)
    record_hooks.before_delete(uow, etype, list(records))
    tagging = uow.crm.core_tables["tagging"]
    table = uow.registry.table(entity)
    ids: sa.BindParameter[Any] = sa.bindparam("b_ids", expanding=True)
    untag = sa.delete(tagging).where(tagging.c.entity == entity, tagging.c.record_id.in_(ids))
    delete = sa.delete(table).where(table.c.id.in_(ids), table.c.version == sa.bindparam("b_version"))
    sane = uow.connection.dialect.supports_sane_rowcount
    by_version: dict[int, list[int]] = {}
    for record in records:
        by_version.setdefault(record.version, []).append(record.id)
    for version, same in by_version.items():
        for start in range(0, len(same), _BATCH):
            chunk = same[start:start + _BATCH]
            internal.execute(uow, untag, {"b_ids": chunk})
            result = internal.execute(uow, delete, {"b_ids": chunk, "b_version": version})
            if sane and result.rowcount != len(chunk):
                raise ConflictError(
                    f"some of the {len(chunk)} {etype.plural.lower()} changed since they were read; read them again and retry",
                    entity=entity,
                )
    for record in records:
        internal.recorded(uow, "deleted", etype, record, record, {})
    record_hooks.after_delete(uow, etype, list(records))
