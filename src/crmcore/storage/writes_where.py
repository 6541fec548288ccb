"""Set-based writes of the records matching a filter: the work of
:meth:`UnitOfWork.update_where` and :meth:`UnitOfWork.delete_where`.

Both read the matching records the actor may read (the filter is a query's, see
:mod:`crmcore.query`), check in one query per 500 records that the actor may also update or
delete each of them, and refuse the whole call with the error :meth:`UnitOfWork.check_access`
gives for the first one (in id order) it may not: records the actor cannot read are never
touched nor named. Updates go through the batch update of :mod:`crmcore.storage.batch` (before
and after hooks once per batch, versions checked, audit, signals); deletes call the delete
hooks once per batch, write the audit entries and signals of a delete, and remove
the rows and their taggings with one statement per 500 records. A record that other records
refer to with ``on_delete`` cascade or set null is deleted the way :meth:`UnitOfWork.delete`
deletes it; a ``restrict`` reference refuses the whole call.

:func:`update_selected` is the update of the records a :class:`~crmcore.query.Select`
matches (:meth:`Select.update <crmcore.query.Select.update>`), giving their ids. Many records
are created at once by :meth:`UnitOfWork.create_many` (:mod:`crmcore.storage.sets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ConflictError, ReferenceError, ValidationError
from crmcore.fields import Reference
from crmcore.records import Record
from crmcore.storage import record_hooks as _record_hooks
from crmcore.storage.batch import check_access_many, update_many
from crmcore.storage.operations import _atomic
from crmcore.storage.row_reader import FullReader
from crmcore.storage.unmanaged_refs import raise_delete_refusal
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.query import Select
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["delete_records", "delete_rows", "delete_where", "matching", "update_selected", "update_where"]

_CHUNK = 500


def matching(uow: UnitOfWork, entity: str, where: Any) -> list[Record]:
    """The full records of *entity* matching *where* that the actor may read, in id order.

    :param where: a condition as :meth:`crmcore.query.Select.where` takes it (a tuple, a
        group such as ``{"any": [...]}``, a text filter; dotted paths along references
        allowed), a list of such conditions (all must hold), or a mapping ``{field: value}``
        of equalities (``{}`` matches every record).
    :raises ValidationError: for ``None`` or a condition that does not fit the entity.
    """
    return _records(_selecting(uow, entity, where))


def _selecting(uow: UnitOfWork, entity: str, where: Any) -> Select:
    if where is None:
        raise ValidationError(
            f"say which {entity} records to write: pass a condition such as ('status', '=', 'open'), "
            "or {} for every record", entity=entity,
        )
    select = uow.select(entity, fields=("id",))
    if isinstance(where, Mapping) and not (len(where) == 1 and next(iter(where)) in ("all", "any", "not")):
        return select.where(**where)
    if isinstance(where, list):
        return select.where(*where)
    return select.where(where)


def _records(select: Select) -> list[Record]:
    """The full records *select* matches, in id order."""
    uow, etype = select.uow, select.entity
    result = select._run(select._written())
    records = list(map(FullReader(etype, result.keys(), uow._origin), result.all()))
    return sorted(records, key=lambda record: record.id) if select.max_rows is not None else records


def update_where(uow: UnitOfWork, entity: str, where: Any, values: Mapping[str, Any]) -> int:
    """The work of :meth:`UnitOfWork.update_where`: returns the number of records changed."""
    return len(update_selected(uow, _selecting(uow, entity, where), values))


@_atomic
def update_selected(uow: UnitOfWork, select: Select, values: Mapping[str, Any]) -> list[int]:
    """The work of :meth:`crmcore.query.Select.update` (and of ``update_where``): update the
    records *select* matches with *values*; returns the ids of those changed, in id order."""
    etype = select.entity
    entity = etype.name
    if not values:
        raise ValidationError("an update needs the changes to make: set={'field': value, ...}", entity=entity)
    uow.require(entity, "update")
    uow._check_writable(etype, values)
    parsed = validate(etype, dict(values), partial=True)
    records = _records(select)
    check_access_many(uow, etype, records, "update")
    return [record.id for record in update_many(uow, entity, [(record, parsed) for record in records])]


def delete_where(uow: UnitOfWork, entity: str, where: Any) -> int:
    """The work of :meth:`UnitOfWork.delete_where`: returns the number of records deleted."""
    etype = uow.registry.entity(entity)
    uow.require(entity, "delete")
    records = matching(uow, entity, where)
    check_access_many(uow, etype, records, "delete")
    return delete_records(uow, etype, records)


def delete_records(uow: UnitOfWork, etype: EntityType, records: Sequence[Record]) -> int:
    """Delete *records* (full, as just read, access checked by the caller): those others refer
    to with ``cascade`` or ``set_null`` one by one as :meth:`UnitOfWork.delete` does, the rest
    set-based (:func:`delete_rows`). Returns how many were deleted.

    :raises ReferenceError: when a ``restrict`` reference holds one of them (nothing deleted).
    """
    if not records:
        return 0
    linked = _linked(uow, etype, records)
    plain = [record for record in records if record.id not in linked]
    for record in records:
        if record.id in linked:
            uow._delete(etype, record)  # its references followed as a single delete follows them
    if plain:
        delete_rows(uow, etype, plain)
    uow._security_changed(etype.name)
    return len(records)


def _linked(uow: UnitOfWork, etype: EntityType, records: Sequence[Record]) -> set[int]:
    """The ids of *records* that others refer to with ``cascade`` or ``set_null`` (one query
    per reference field and 500 records).

    :raises ReferenceError: naming the first record a ``restrict`` reference holds, as
        :meth:`UnitOfWork.delete` does (records of the batch referring to each other do not hold).
    """
    ids = [record.id for record in records]
    going = set(ids)
    linked: set[int] = set()
    blockers: dict[int, list[str]] = {}
    for child, field in uow.registry.referencing(etype.name):
        assert isinstance(field.type, Reference)
        table = uow.registry.table(child.name)
        column = table.c[field.column]
        found: dict[int, list[int]] = {}
        statement = sa.select(column, table.c.id).where(column.in_(sa.bindparam("b_ids", expanding=True))).order_by(table.c.id)
        for start in range(0, len(ids), _CHUNK):
            for parent, child_id in uow._execute(statement, {"b_ids": ids[start:start + _CHUNK]}):
                if child.name != etype.name or child_id not in going:
                    found.setdefault(parent, []).append(child_id)
        if field.type.on_delete in ("cascade", "set_null"):
            linked.update(found)
            continue
        for parent, children in found.items():
            shown = ", ".join(map(str, children[:10])) + (f" and {len(children) - 10} more" if len(children) > 10 else "")
            blockers.setdefault(parent, []).append(f"{child.name} {shown} (field {field.name})")
    for record_id in ids:
        if record_id in blockers:
            raise ReferenceError(
                f"cannot delete {etype.name} {record_id}: referenced by {'; '.join(blockers[record_id])}; "
                "delete or reassign those first",
            )
    return linked


def delete_rows(uow: UnitOfWork, etype: EntityType, records: Sequence[Record]) -> None:
    """Delete *records* (full, as just read), which nothing refers to: the before hooks once
    for the batch, the taggings and the rows of the records at one version with one statement
    each per 500 (versions checked), an audit entry with each record's snapshot and its signal,
    the after hooks."""
    entity = etype.name
    _record_hooks.before_delete(uow, etype, list(records))
    tagging = uow.crm.core_tables["tagging"]
    table = uow.registry.table(entity)
    listed = sa.bindparam("b_ids", expanding=True)
    untag = sa.delete(tagging).where(tagging.c.entity == entity, tagging.c.record_id.in_(listed))
    delete = sa.delete(table).where(table.c.id.in_(listed), table.c.version == sa.bindparam("b_version"))
    by_version: dict[int, list[int]] = {}
    for record in records:
        by_version.setdefault(record.version, []).append(record.id)
    for version, same in by_version.items():
        for start in range(0, len(same), _CHUNK):
            chunk = same[start:start + _CHUNK]
            uow._execute(untag, {"b_ids": chunk})
            try:
                deleted = uow._execute(delete, {"b_ids": chunk, "b_version": version}).rowcount
            except sa.exc.IntegrityError as exc:  # a table the registry does not know refers to them
                raise_delete_refusal(uow, etype, chunk, exc)
            if deleted != len(chunk):
                raise _conflict(uow, etype, [(record_id, version) for record_id in chunk])
    after_write = uow._after_write
    for record in records:
        after_write("deleted", etype, record, record, {})
    _record_hooks.after_delete(uow, etype, list(records))


def _conflict(uow: UnitOfWork, etype: EntityType, pairs: Sequence[tuple[int, int]]) -> ConflictError:
    """The conflict of a DELETE of ``(id, version)`` *pairs* that removed fewer rows: the
    first record that changed since it was read (the deleted ones are gone by now)."""
    table = uow.registry.table(etype.name)
    statement = sa.select(table.c.id, table.c.version).where(table.c.id.in_([i for i, _ in pairs]))
    current = {row[0]: row[1] for row in uow._execute(statement)}
    for record_id, version in pairs:
        if current.get(record_id, version) != version:
            return uow._stale(etype.name, record_id, version, current[record_id])
    return ConflictError(
        f"some of the {len(pairs)} {etype.plural.lower()} were deleted by someone else meanwhile; read them again and retry",
        entity=etype.name,
    )
