"""Writing the rows of an import: batched INSERTs and UPDATEs with the per-record steps of the
unit of work.

The :class:`RecordWriter` gets rows the importer has already parsed, deduplicated, checked and
passed through the ``before`` hooks. It reserves ids, inserts a batch with one driver call
(:class:`~crmcore.storage.bulk.BulkInsert`), and then does what
:meth:`UnitOfWork.create <crmcore.storage.uow.UnitOfWork.create>` does after its INSERT, for
the batch: the changes and audit entries are recorded and the ``crm_after_create`` hooks run
once with the batch's records; the ``record-created`` signals are queued for the whole batch and sent after the commit. Updates
are grouped by the columns they change, one UPDATE statement (with a version check) per group.
"""

from __future__ import annotations

import datetime as dt
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.fields import FieldType
from crmcore.records import Record
from crmcore.storage import internal, record_hooks
from crmcore.storage.bulk import BulkInsert, allocate_ids, processed_column

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork
    from crmcore.transfer.sources import SourceRow

__all__ = ["PendingRow", "RecordWriter", "parents_first"]

_SYSTEM_COLUMNS = ("version", "created_at", "updated_at", "created_by", "updated_by")


class PendingRow:
    """One row on its way through a batch.

    :ivar src: the row as read.
    :ivar raw: ``{field: value as read}``.
    :ivar parsed: ``{field: parsed value}`` (for an update: the changes).
    :ivar errors: ``{field: [message]}`` found so far.
    :ivar id: the id the file gives, if any.
    :ivar key: the values of the dedupe fields, or ``None``.
    :ivar old: the existing record a duplicate updates.
    """

    __slots__ = ("errors", "id", "key", "old", "parsed", "raw", "src")

    def __init__(self, src: SourceRow, raw: dict[str, Any]) -> None:
        self.src = src
        self.raw = raw
        self.parsed: dict[str, Any] = {}
        self.errors: dict[str, list[str]] = {}
        self.id: int | None = None
        self.key: tuple[Any, ...] | None = None
        self.old: Record | None = None


class RecordWriter:
    """Writes batches of records of *etype* in *uow*."""

    def __init__(self, uow: UnitOfWork, etype: EntityType) -> None:
        self.uow = uow
        self.etype = etype
        self.table = uow.registry.table(etype.name)
        self._insert_plan = self._plan_insert()
        self._field_names = [f.name for f in etype.fields]
        self._self_references = [
            f.name for f in etype.fields if f.is_reference and f.type.entity == etype.name  # type: ignore[attr-defined]
        ]

    def _plan_insert(self) -> tuple[list[str], list[tuple[str, FieldType, str, tuple[str, ...] | None]]]:
        columns = ["id"]
        plan: list[tuple[str, FieldType, str, tuple[str, ...] | None]] = []
        for field in self.etype.fields:
            names = tuple(c.name for c in field.type.columns(field.column))
            simple = type(field.type).to_db is FieldType.to_db and names == (field.column,)
            plan.append((field.name, field.type, field.column, None if simple else names))
            columns.extend(names)
        columns.extend(_SYSTEM_COLUMNS)
        return columns, plan

    def insert(self, rows: list[PendingRow], *, explicit_ids: bool) -> None:
        """Insert *rows* (ids reserved first, or taken from the rows with *explicit_ids*),
        then record, audit and announce the new records and run the after hooks once."""
        if not rows:
            return
        uow = self.uow
        etype = self.etype
        connection = uow.connection
        columns, plan = self._insert_plan
        writer = BulkInsert(connection, self.table, columns)
        if explicit_ids:
            given = [r.id for r in rows if r.id is not None]
            fresh = iter(allocate_ids(connection, self.table, len(rows) - len(given), above=max(given, default=0)))
            ids = [r.id if r.id is not None else next(fresh) for r in rows]
        else:
            ids = allocate_ids(connection, self.table, len(rows))
        if self._self_references:
            rows, ids = parents_first(rows, ids, self._self_references)
        now = dt.datetime.now(dt.UTC)
        user = uow.actor.user_id
        system = {"version": 1, "created_at": now, "updated_at": now, "created_by": user, "updated_by": user}
        system_db = tuple(
            system[c] if system[c] is None or (p := writer.processor(c)) is None else p(system[c]) for c in _SYSTEM_COLUMNS
        )
        limit = len(columns) - len(_SYSTEM_COLUMNS)
        processors = [(i, p) for i, p in writer.processors if i < limit]
        names = self._field_names
        fields: list[tuple[Any, ...]]
        if all(multi is None for *_, multi in plan):
            # every field is one column: build the rows in C
            fields = [(rid, *map(row.parsed.get, names)) for rid, row in zip(ids, rows, strict=True)]
        else:
            fields = []
            for rid, row in zip(ids, rows, strict=True):
                get = row.parsed.get
                values: list[Any] = [rid]
                for name, ftype, column, multi in plan:
                    value = get(name)
                    if multi is None:
                        values.append(value)
                    elif value is None:
                        values.extend([None] * len(multi))
                    else:
                        stored = ftype.to_db(value, column)
                        values.extend(stored[c] for c in multi)
                fields.append(tuple(values))
        if processors:  # column by column, then the system columns, processed once above
            cells: list[Sequence[Any]] = list(zip(*fields, strict=True))
            for index, processor in processors:
                cells[index] = processed_column(cells[index], processor)
            fields = list(zip(*cells, strict=True))
        tuples = [(*values, *system_db) for values in fields]
        with internal.refusals(uow, etype):
            writer.execute(tuples, processed=True)
        entity = etype.name
        records = []
        for rid, row in zip(ids, rows, strict=True):
            record = {"id": rid, **system}
            record.update(zip(names, map(row.parsed.get, names), strict=True))
            records.append(Record(entity, record))
        internal.created(uow, etype, records, announce=False)
        uow.announce_created(etype, array("q", ids))
        internal.written(uow, entity)

    def update(self, rows: list[PendingRow]) -> None:
        """Apply each row's changes (``row.parsed``) to its record (``row.old``): versions checked,
        one UPDATE per set of changed columns, then audit and ``record-updated``, and the
        ``crm_after_update`` hooks once for the batch."""
        if not rows:
            return
        uow = self.uow
        etype = self.etype
        table = self.table
        now = dt.datetime.now(dt.UTC)
        user = uow.actor.user_id
        groups: dict[tuple[str, ...], list[PendingRow]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row.parsed)), []).append(row)
        for group in groups.values():
            params = []
            for row in group:
                assert row.old is not None
                stored = internal.to_row(uow, etype, row.parsed)
                params.append({
                    **{f"v_{k}": v for k, v in stored.items()},
                    "k_id": row.old.id, "k_version": row.old.version, "v_version": row.old.version + 1,
                    "v_updated_at": now, "v_updated_by": user,
                })
            set_columns = [*params[0].keys()]
            values = {name[2:]: sa.bindparam(name, type_=table.c[name[2:]].type) for name in set_columns if name.startswith("v_")}
            statement = (
                sa.update(table)
                .where(table.c.id == sa.bindparam("k_id"), table.c.version == sa.bindparam("k_version"))
                .values(values)
            )
            with internal.refusals(uow, etype):
                result = uow.connection.execute(statement, params)
            if uow.connection.dialect.supports_sane_multi_rowcount and result.rowcount != len(params):
                first = group[0].old
                assert first is not None
                raise internal.stale(uow, etype.name, first.id, first.version, None)
        items = []
        for row in rows:
            old = row.old
            assert old is not None
            diff = row.parsed
            new = Record(etype.name, old.merged(diff, {"version": old.version + 1, "updated_at": now, "updated_by": user}))
            internal.recorded(uow, "updated", etype, new, old, diff)
            items.append((old, new, diff))
        record_hooks.after_update(uow, etype, items)


def parents_first(rows: list[PendingRow], ids: list[int], fields: list[str]) -> tuple[list[PendingRow], list[int]]:
    """Order a batch so that a row referring to another row of the batch (an account's parent)
    comes after it, as SQLite checks each inserted row's references at once."""
    position = {rid: i for i, rid in enumerate(ids)}
    pending = list(range(len(rows)))
    placed: set[int] = set()
    order: list[int] = []
    while pending:
        waiting = []
        for i in pending:
            parents = (position.get(parent) for f in fields if (parent := rows[i].parsed.get(f)) is not None)
            if all(p is None or p in placed or p == i for p in parents):
                order.append(i)
                placed.add(i)
            else:
                waiting.append(i)
        if len(waiting) == len(pending):  # a cycle: keep the file's order and let the database judge
            order.extend(waiting)
            break
        pending = waiting
    return [rows[i] for i in order], [ids[i] for i in order]
