"""Set-based writes for the sales features: many creates, updates and deletes at once.

Each function runs, per record, exactly the steps of the unit of work's single-record method
(validation, ``before`` hooks, audit entry, recorded change, queued signal, ``after`` hooks),
and sends the SQL once per batch: an ``INSERT`` of every row with ids reserved in advance
(:mod:`crmcore.storage.bulk`), an ``UPDATE`` or ``DELETE`` ``executemany`` that checks each
row's version. Callers check permissions first; these helpers write what they are given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ConflictError, ReferenceError
from crmcore.records import Record
from crmcore.storage.bulk import BulkInsert, allocate_ids
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["create_many", "delete_many", "update_many"]

_BATCH = 1000
_SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_many(uow: UnitOfWork, entity: str, rows: Sequence[Mapping[str, Any]]) -> list[Record]:
    """Create one record of *entity* per mapping of *rows*, as :meth:`UnitOfWork.create` would.

    :returns: the new records (full, for the caller's bookkeeping), in the order of *rows*.
    :raises ValidationError: naming the first row that does not fit.
    :raises ReferenceError: when a reference names a missing record.
    """
    if not rows:
        return []
    etype = uow.registry.entity(entity)
    table = uow.registry.table(entity)
    uow.require(entity, "create")
    uow._check_writable(etype, {name for row in rows for name in row})
    parsed = [uow._prepare_create(etype, validate(etype, row)) for row in rows]
    problems = uow.reference_errors(etype, parsed)
    if problems:
        index = min(problems)
        raise ReferenceError(problems[index], entity=entity)
    ids = allocate_ids(uow.connection, table, len(parsed))
    now = _now()
    by = uow.actor.user_id
    given = {name for row in parsed for name, value in row.items() if value is not None}
    fields = [field for field in etype.fields if field.name in given]  # the others stay NULL
    columns = list(_SYSTEM)
    for field in fields:
        columns.extend(field.type.to_db(None, field.column))
    insert = BulkInsert(uow.connection, table, columns)
    values: list[list[Any]] = []
    records: list[Record] = []
    for record_id, row in zip(ids, parsed, strict=True):
        cells: list[Any] = [record_id, 1, now, now, by, by]
        for field in fields:
            cells.extend(field.type.to_db(row.get(field.name), field.column).values())
        values.append(cells)
        out = {"id": record_id, "version": 1, "created_at": now, "updated_at": now, "created_by": by, "updated_by": by}
        for field in etype.fields:
            out[field.name] = row.get(field.name)
        records.append(Record(entity, out))
    try:
        insert.execute(values)
    except sa.exc.IntegrityError as exc:
        raise uow._integrity(etype, exc, {}) from exc
    except sa.exc.OperationalError as exc:
        raise uow._translate(exc) from exc
    for record in records:
        uow._created(etype, record)
    return records


def update_many(uow: UnitOfWork, entity: str, plan: Sequence[tuple[Record, Mapping[str, Any]]]) -> list[Record]:
    """Apply ``(record, changes)`` pairs: each *record* is the full record as read, *changes*
    its parsed new values. The ``crm_before_update`` hooks may add changes; unchanged values
    are dropped; a record whose version moved on raises :class:`ConflictError`.

    :returns: the updated records (those without a change are left out).
    """
    etype = uow.registry.entity(entity)
    hook = uow._hook
    todo: list[tuple[Record, dict[str, Any]]] = []
    for old, changes in plan:
        diff = {k: v for k, v in changes.items() if old.values.get(k) != v}
        if diff:
            uow._merge_hook_changes(etype, hook.crm_before_update(uow=uow, record=old, changes=dict(diff)), diff)
            diff = {k: v for k, v in diff.items() if old.values.get(k) != v}
        if diff:
            todo.append((old, diff))
    if not todo:
        return []
    table = uow.registry.table(entity)
    now = _now()
    by = uow.actor.user_id
    groups: dict[tuple[str, ...], list[tuple[Record, dict[str, Any], dict[str, Any]]]] = {}
    for old, diff in todo:
        row = uow._to_row(etype, diff)
        groups.setdefault(tuple(sorted(row)), []).append((old, diff, row))
    updated: list[Record] = []
    for columns, items in groups.items():
        statement = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"), table.c.version == sa.bindparam("b_version"))
            .values({c: sa.bindparam(c) for c in columns} | {
                "version": sa.bindparam("b_new_version"), "updated_at": sa.bindparam("b_at"), "updated_by": sa.bindparam("b_by"),
            })
        )
        params = [
            {**row, "b_id": old.id, "b_version": old.version, "b_new_version": old.version + 1, "b_at": now, "b_by": by}
            for old, _, row in items
        ]
        _execute_checked(uow, etype, statement, params)
        for old, diff, _ in items:
            new = Record(entity, {**old.values, **diff, "version": old.version + 1, "updated_at": now, "updated_by": by})
            uow._after_write("updated", etype, new, old, diff)
            hook.crm_after_update(uow=uow, old=old, new=new, changes=diff)
            updated.append(new)
    return updated


def delete_many(uow: UnitOfWork, entity: str, records: Sequence[Record]) -> None:
    """Delete *records* (full, as read) whose references were dealt with by the caller: the
    ``crm_before_delete`` and ``crm_after_delete`` hooks run, tag links go, each deletion is
    audited with the record's full snapshot and announced."""
    if not records:
        return
    etype = uow.registry.entity(entity)
    hook = uow._hook
    for record in records:
        hook.crm_before_delete(uow=uow, record=record)
    tagging = uow.crm.core_tables["tagging"]
    table = uow.registry.table(entity)
    ids = [r.id for r in records]
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        uow._execute(sa.delete(tagging).where(tagging.c.entity == entity, tagging.c.record_id.in_(chunk)))
    statement = sa.delete(table).where(table.c.id == sa.bindparam("b_id"), table.c.version == sa.bindparam("b_version"))
    _execute_checked(uow, etype, statement, [{"b_id": r.id, "b_version": r.version} for r in records])
    for record in records:
        uow._after_write("deleted", etype, record, record, {})
        hook.crm_after_delete(uow=uow, record=record)


def _execute_checked(uow: UnitOfWork, etype: EntityType, statement: Any, params: list[dict[str, Any]]) -> None:
    """Run *statement* for every parameter set, in batches; every set must hit one row."""
    for start in range(0, len(params), _BATCH):
        batch = params[start:start + _BATCH]
        result = uow._execute(statement, batch)
        if uow.connection.dialect.supports_sane_multi_rowcount and result.rowcount != len(batch):
            raise ConflictError(
                f"some of the {len(batch)} {etype.plural.lower()} changed since they were read; read them again and retry",
                entity=etype.name,
            )
