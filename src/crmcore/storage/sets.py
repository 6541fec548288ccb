"""Set-based record work on the secured road, for plugins: the work of the unit of work's
:meth:`~crmcore.storage.uow.UnitOfWork.find_many`, ``check_access_many``, ``create_many``,
``update_many``, ``delete_many``, ``field_history`` and ``atomic``.

Each applies, for every record, the checks of the unit's single-record method (the actor's read
predicate and hidden fields, privileges and field access, versions, hooks, audit, signals) and
sends its SQL once per batch: a plugin converting ten thousand leads makes a few statements per
five hundred records, not one per record. Records handed in are never trusted: writes read the
rows again and check their versions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import NotFoundError, PermissionDeniedError, ReferenceError, ValidationError
from crmcore.fields import FieldType
from crmcore.records import Record
from crmcore.storage import writes_where
from crmcore.storage.batch import check_access_many as _check_access_many
from crmcore.storage.batch import update_many as _update_many
from crmcore.storage.bulk import BulkInsert, allocate_ids, processed_column
from crmcore.storage.operations import _atomic, _now
from crmcore.storage.row_reader import FullReader
from crmcore.validation import validate_many

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "atomic", "check_access_many", "create_many", "delete_many", "field_history", "find_many", "update_many",
]

_CHUNK = 500
_SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


def _listed(name: str) -> sa.BindParameter[Any]:
    """A list bound as one parameter: SQLAlchemy then keys its statement cache on none of the values."""
    return sa.bindparam(name, expanding=True)


class _Reader(FullReader):
    """The :class:`FullReader` of the rows of ``select(table)`` (records issued by the unit
    whose token is *origin*)."""

    def __init__(self, etype: EntityType, table: sa.Table, origin: object = None) -> None:
        super().__init__(etype, [column.name for column in table.columns], origin)


def _read_full(uow: UnitOfWork, entity: str, column: str, values: Sequence[Any], *, ignore_case: bool = False,
               ignore_chars: str = "", lock: bool = False) -> list[Record]:
    """The full records of *entity* the actor may read whose *column* holds one of *values*."""
    etype = uow.registry.entity(entity)
    table = uow.registry.table(entity)
    read = _Reader(etype, table, uow._origin)
    key = _key(table, column, ignore_case=ignore_case, ignore_chars=ignore_chars)
    statement = sa.select(table).where(key.in_(_listed("b_values")), uow.read_filter(entity, table)).order_by(table.c.id)
    if lock:
        statement = statement.with_for_update()
    found: list[Record] = []
    for start in range(0, len(values), _CHUNK):
        found.extend(map(read, uow._execute(statement, {"b_values": list(values[start:start + _CHUNK])})))
    return found


def find_many(uow: UnitOfWork, entity: str, field: str, values: Iterable[Any], *, ignore_case: bool = False,
              ignore_chars: str = "", lock: bool = False, fields: Sequence[str] | None = None) -> list[Record]:
    """The work of :meth:`UnitOfWork.find_many`."""
    etype = uow.registry.entity(entity)
    hidden = uow.hidden_fields(entity)
    for name in (field, *(fields or ())):
        if name in _SYSTEM:
            continue
        if not etype.has_field(name):
            raise ValidationError(f"{entity} has no field {name!r}; known fields: {', '.join(etype.field_names)}", entity=entity)
        if name in hidden:
            raise _hidden(uow, entity, name)
    wanted = sorted({str(v).lower() if ignore_case else v for v in values if v is not None})
    if not wanted:
        return []
    column = field if field in _SYSTEM else etype.field(field).column
    if fields is not None:
        return _read_some(uow, entity, column, wanted, fields, ignore_case=ignore_case, ignore_chars=ignore_chars)
    records = _read_full(uow, entity, column, wanted, ignore_case=ignore_case, ignore_chars=ignore_chars, lock=lock)
    if lock:  # locked rows read now are what a write of them in this unit starts from
        _locked(uow).update(((entity, record.id), record) for record in records)
    return [uow._visible(record) for record in records]


def _key(table: sa.Table, column: str, *, ignore_case: bool, ignore_chars: str) -> sa.ColumnElement[Any]:
    key: sa.ColumnElement[Any] = sa.func.lower(table.c[column]) if ignore_case else table.c[column]
    for char in dict.fromkeys(ignore_chars):
        key = sa.func.replace(key, char, "")
    return key


def _read_some(uow: UnitOfWork, entity: str, column: str, values: Sequence[Any], fields: Sequence[str], *,
               ignore_case: bool, ignore_chars: str) -> list[Record]:
    """Records carrying ``id`` and *fields* only (a projection, as ``Query.fields`` makes)."""
    etype = uow.registry.entity(entity)
    table = uow.registry.table(entity)
    names = list(dict.fromkeys(("id", *fields)))
    readers = [(name, None) if name in _SYSTEM else (name, etype.field(name)) for name in names]
    columns: list[sa.ColumnElement[Any]] = []
    for name, f in readers:
        columns.extend([table.c[name]] if f is None else (table.c[c.name] for c in f.type.columns(f.column)))
    key = _key(table, column, ignore_case=ignore_case, ignore_chars=ignore_chars)
    statement = sa.select(*columns).where(key.in_(_listed("b_values")), uow.read_filter(entity, table)).order_by(table.c.id)
    found: list[Record] = []
    for start in range(0, len(values), _CHUNK):
        for row in uow._execute(statement, {"b_values": list(values[start:start + _CHUNK])}).mappings():
            mapping: Mapping[str, Any] = row  # type: ignore[assignment]
            found.append(Record(entity, {name: mapping[name] if f is None else f.type.from_db(mapping, f.column)
                                         for name, f in readers}))
    return found


def _locked(uow: UnitOfWork) -> dict[tuple[str, int], Record]:
    """The full rows this unit read with ``find_many(..., lock=True)`` and has not written yet,
    by entity and id: another transaction cannot change them, and a change in this unit gives
    them a new version, so a record given at the same version stands for its row."""
    found: dict[tuple[str, int], Record] | None = uow.__dict__.get("_locked_rows")
    if found is None:
        found = uow.__dict__["_locked_rows"] = {}
    return found


def _hidden(uow: UnitOfWork, entity: str, field: str) -> Exception:
    return PermissionDeniedError(f"{entity}.{field} is hidden from {uow.actor.username}", field=field,
                                 reasons=[f"field {field!r} is hidden from the actor's profiles"])


def _current(uow: UnitOfWork, entity: str, records: Sequence[Record], *, lock: bool = False) -> list[Record]:
    """The rows of *records* as stored, read with the actor's read predicate (unless this unit
    holds them locked at the version given): a record the actor may not read is not found, one
    at another version than given a conflict."""
    locked = _locked(uow)
    current: dict[int, Record] = {}
    for record in records:
        known = locked.pop((entity, record.id), None)
        if known is not None and known.version == record.version:
            current[record.id] = known
    ids = [record.id for record in records if record.id not in current]
    if ids:
        current.update((record.id, record) for record in _read_full(uow, entity, "id", ids, lock=lock))
    for record in records:
        found = current.get(record.id)
        if found is None:
            raise NotFoundError(f"{entity} {record.id} not found", entity=entity, id=record.id)
        if found.version != record.version:
            raise uow._stale(entity, record.id, record.version, found.version)
    return [current[record.id] for record in records]


def check_access_many(uow: UnitOfWork, records: Sequence[Record], action: str) -> None:
    """The work of :meth:`UnitOfWork.check_access_many`: one query per 500 records finds those
    the actor may read and *action*; the rows of the others are read (never the caller's
    values) for the error the single check gives."""
    if not records or uow.actor.is_system:
        return
    entity = records[0].entity
    if any(record.entity != entity for record in records):
        raise ValidationError(f"check_access_many takes records of one entity type, got {entity} and others", entity=entity)
    table = uow.registry.table(entity)
    allowed: set[int] = set()
    check = sa.select(table.c.id).where(table.c.id.in_(_listed("b_ids")), uow.read_filter(entity, table),
                                        uow.predicate(entity, action).sql(table))
    ids = [record.id for record in records]
    for start in range(0, len(ids), _CHUNK):
        allowed.update(r[0] for r in uow._execute(check, {"b_ids": ids[start:start + _CHUNK]}))
    refused = [record_id for record_id in ids if record_id not in allowed]
    if not refused:
        return
    stored = {record.id: record for record in _read_full(uow, entity, "id", refused)}
    for record_id in refused:
        if record_id not in stored:
            raise NotFoundError(f"{entity} {record_id} not found", entity=entity, id=record_id)
        uow.check_access(stored[record_id], action)  # raises, with the reasons
        raise PermissionDeniedError(f"{uow.actor.username} may not {action} {entity} {record_id}",
                                    reasons=[f"no profile, role or sharing rule lets it {action} this {entity}"])


def create_many(uow: UnitOfWork, entity: str, rows: Sequence[Mapping[str, Any]],
                known: Mapping[str, Iterable[int]] | None = None) -> list[Record]:
    """The work of :meth:`UnitOfWork.create_many`."""
    if not rows:
        return []
    etype = uow.registry.entity(entity)
    table = uow.registry.table(entity)
    uow.require(entity, "create")
    uow._check_writable(etype, {name for row in rows for name in row})
    parsed = uow._prepare_create(etype, validate_many(etype, rows))
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
        cells[index] = processed_column(cells[index], processor, keep_none=index not in insert.null_aware,
                                        shared=index in insert.shared)
    values = list(zip(*cells, strict=True))
    with uow._refusals(etype):
        insert.execute(values, processed=True)
    head = {"version": 1, "created_at": now, "updated_at": now, "created_by": by, "updated_by": by}
    every = [field.name for field in etype.fields]
    records: list[Record] = []
    for record_id, row in zip(ids, parsed, strict=True):
        out = {"id": record_id, **head}
        out.update(zip(every, map(row.get, every), strict=True))
        records.append(Record(entity, out))
    uow._created(etype, records)
    uow._security_changed(entity)
    if uow.hidden_fields(entity):
        return [uow._visible(record) for record in records]
    return records


def update_many(uow: UnitOfWork, entity: str, items: Sequence[tuple[Record, Mapping[str, Any]]]) -> list[Record]:
    """The work of :meth:`UnitOfWork.update_many`."""
    if not items:
        return []
    etype = uow.registry.entity(entity)
    uow.require(entity, "update")
    uow._check_writable(etype, {name for _, changes in items for name in changes})
    current = _current(uow, entity, [record for record, _ in items])
    _check_access_many(uow, etype, current, "update")
    plan = list(zip(current, validate_many(etype, [changes for _, changes in items], partial=True), strict=True))
    updated = _update_many(uow, entity, plan)
    if uow.hidden_fields(entity):
        return [uow._visible(record) for record in updated]
    return updated


def delete_many(uow: UnitOfWork, entity: str, records: Sequence[Record], privilege: str) -> int:
    """The work of :meth:`UnitOfWork.delete_many`."""
    if not records:
        return 0
    if privilege not in ("delete", "update"):
        raise ValidationError(f"delete_many needs privilege 'delete' or 'update', got {privilege!r}", entity=entity)
    etype = uow.registry.entity(entity)
    uow.require(entity, privilege)
    current = _current(uow, entity, records)
    _check_access_many(uow, etype, current, privilege)
    return writes_where.delete_records(uow, etype, current)


def field_history(uow: UnitOfWork, entity: str, ids: Iterable[int], field: str) -> dict[int, list[tuple[Any, Any, Any]]]:
    """The work of :meth:`UnitOfWork.field_history`."""
    etype = uow.registry.entity(entity)
    if not etype.has_field(field):
        raise ValidationError(f"{entity} has no field {field!r}; known fields: {', '.join(etype.field_names)}", entity=entity)
    if field in uow.hidden_fields(entity):
        raise _hidden(uow, entity, field)
    wanted = sorted(set(ids))
    table = uow.registry.table(entity)
    readable: list[int] = []
    check = sa.select(table.c.id).where(table.c.id.in_(_listed("b_ids")), uow.read_filter(entity, table))
    for start in range(0, len(wanted), _CHUNK):
        readable.extend(r[0] for r in uow._execute(check, {"b_ids": wanted[start:start + _CHUNK]}))
    uow.flush()
    audit = uow.crm.core_tables["audit"]
    statement = (
        sa.select(audit.c.record_id, audit.c.at, audit.c.changes)
        .where(audit.c.entity == entity, audit.c.record_id.in_(_listed("b_ids")), audit.c.action.in_(("created", "updated")),
               sa.cast(audit.c.changes, sa.Text()).like(f'%"{field}"%'))
        .order_by(audit.c.record_id, audit.c.at, audit.c.id)
    )
    found: dict[int, list[tuple[Any, Any, Any]]] = {}
    for start in range(0, len(readable), 1000):
        for record_id, at, changes in uow._execute(statement, {"b_ids": sorted(readable)[start:start + 1000]}):
            if isinstance(changes, str):
                changes = json.loads(changes)
            change = changes.get(field)
            if change is not None:
                found.setdefault(record_id, []).append((at, change[0], change[1]))
    return found


def atomic(uow: UnitOfWork, function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """The work of :meth:`UnitOfWork.atomic`."""
    return _atomic(lambda _, *a, **k: function(*a, **k))(uow, *args, **kwargs)
