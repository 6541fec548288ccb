"""Batch moves: the work of :meth:`UnitOfWork.move_many` and the set-based update it rests on.

A batch is checked as the same moves one by one would be (with the same messages), its
``before`` hooks are called once for the batch, the rows are updated with one
statement per 500 records that share their changes and version (one ``executemany`` for the
rest), every record is audited in one pass and the ``after`` hooks get the batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import NotFoundError, ReferenceError, ValidationError
from crmcore.records import Record
from crmcore.signals import UPDATED, RecordEvent
from crmcore.storage import audit as _audit
from crmcore.storage import record_hooks as _record_hooks
from crmcore.storage.operations import Change, _Issued, _issued_by, _now
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.prepared import _Prepared
    from crmcore.storage.uow import UnitOfWork

__all__ = ["check_access_many", "current_many", "update_many", "write_updates"]

#: Records of a batch sharing their changes and version are updated by one statement from this
#: many on (fewer go into one executemany with the rest).
_SET_UPDATE_MIN = 8


def move_many(uow: UnitOfWork, records: Iterable[Record], stage: str) -> list[Record]:
    """The work of :meth:`UnitOfWork.move_many`."""
    given = list(records)
    if not given:
        return []
    entity = given[0].entity
    if any(r.entity != entity for r in given):
        raise ValidationError("move_many moves records of one entity type at a time", entity=entity)
    return _move_batch(uow, entity, given, stage)


def _move_batch(uow: UnitOfWork, entity: str, given: list[Record], stage: str) -> list[Record]:
    """Move *given*, records of *entity*, to *stage* (the cyclic collector paused by
    :meth:`UnitOfWork.move_many`, as by every write of the unit)."""
    etype = uow.registry.entity(entity)
    uow.require(entity, "update")
    current = current_many(uow, etype, given)
    parsed: dict[str, Any] = {}  # the stage as each stage field parses it
    fields: dict[Any, str] = {}  # the stage field by the records' pipeline
    plan: list[tuple[Record, dict[str, Any]]] = []
    unchanged: list[Record] = []
    for record in given:
        old = current[record.values["id"]]
        values = old.values
        pipeline = values.get("pipeline")
        field = fields.get(pipeline)
        if field is None:
            field = fields[pipeline] = uow._stage_field(entity, values)
            if field not in parsed:
                uow._check_writable(etype, [field])
                parsed[field] = validate(etype, {field: stage}, partial=True)[field]
        wanted = parsed[field]
        if values.get(field) != wanted:
            plan.append((old, {field: wanted}))
        else:
            unchanged.append(old)
    if plan:
        plan = _record_hooks.before_update(uow, etype, plan)
    if all(diff for _, diff in plan):
        moved = write_updates(uow, etype, plan)
        if not unchanged and uow.actor.is_system and len(moved) == len(given):
            return moved  # in the order given
    else:
        moved = write_updates(uow, etype, [(old, diff) for old, diff in plan if diff])
        unchanged.extend(old for old, diff in plan if not diff)
    by_id = {r.values["id"]: r for r in unchanged}
    by_id.update((r.values["id"], r) for r in moved)
    if uow.actor.is_system:
        return [by_id[r.values["id"]] for r in given]
    return [uow._visible(by_id[r.id]) for r in given]


def update_many(uow: UnitOfWork, entity: str, plan: Sequence[tuple[Record, Mapping[str, Any]]]) -> list[Record]:
    """Update records of *entity* set-based: each pair is a record and its parsed new values.
    Access is the caller's check; the values are the rows' (a record the unit did not issue is
    read again, at its version). Values a record already has are dropped; the
    ``crm_before_update`` hooks (once for the batch) may add changes; the rows are written with their versions checked, audited, and the after-update
    hooks get the batch.

    :returns: the updated records in the order of *plan* (those left without a change are left out).
    :raises NotFoundError: when a record the unit did not issue does not exist.
    :raises ConflictError: when a record changed since it was read, or was deleted.
    """
    etype = uow.registry.entity(entity)
    origin = uow._origin
    if not all(_issued_by(old, origin) for old, _ in plan):
        rows = current_many(uow, etype, [old for old, _ in plan], action=None)
        plan = [(rows[old.id], changes) for old, changes in plan]
    todo: list[tuple[Record, dict[str, Any]]] = []
    for old, changes in plan:
        values = old.values
        diff = {k: v for k, v in changes.items() if values.get(k) != v}
        if diff:
            todo.append((old, diff))
    if not todo:
        return []
    todo = _record_hooks.before_update(uow, etype, todo)
    return write_updates(uow, etype, [(old, diff) for old, diff in todo if diff])


def current_many(
    uow: UnitOfWork, etype: EntityType, given: Sequence[Record], *, action: str | None = "update", versions: bool = True,
) -> dict[int, Record]:
    """``{id: full record}`` of *given*, as their rows stand, once the actor may *action* each.

    A record the unit issued stands for its row at its version (a write matches that version,
    as in :meth:`UnitOfWork.update`); the others are read set-based, one query per 500 with the
    actor's read filter, so a record the actor may not read is missing like one that does not
    exist. Access is checked on the rows, one query per 500 with the *action* predicate.

    :param action: ``None``: no access check and no read filter (for callers that made the
        check, see :func:`update_many`).
    :param versions: the rows read must be at the versions of *given* (not for tags, which
        do not change the row).
    :raises NotFoundError: for the first record (in the order given) missing or unreadable.
    :raises ConflictError: for the first one read at another version (with *versions*).
    :raises PermissionDeniedError: for the first one the actor may read but not *action*.
    """
    entity = etype.name
    if action is not None:
        uow.require(entity, action)
    origin = uow._origin
    current: dict[int, Record] = {}
    wanted: list[int] = []
    for record in given:
        if _issued_by(record, origin):
            current[record.values["id"]] = record
        else:
            wanted.append(record.id)
    current.update(_read_many(uow, etype, wanted, filtered=action is not None))
    if wanted:  # read now: they must exist (for the actor), at the version given
        for record in given:
            old = current.get(record.id)
            if old is None:
                raise NotFoundError(f"{entity} {record.id} not found", entity=entity, id=record.id)
            if versions and old.version != record.version:
                raise uow._stale(entity, record.id, record.version, old.version)
    if action is not None:
        check_access_many(uow, etype, [current[record.id] for record in given], action)
    return current


def check_access_many(uow: UnitOfWork, etype: EntityType, records: Sequence[Record], action: str) -> None:
    """:meth:`UnitOfWork.check_access` for many full *records* of *etype*, set-based: one
    query per 500 records finds those the actor may *action*; the first other one (in the
    given order) is refused with the error the single check gives.

    :raises PermissionDeniedError: naming the first record the actor may read but not *action*.
    :raises NotFoundError: for the first record it may not even read.
    """
    if uow.actor.is_system or not records:
        return
    table = uow.registry.table(etype.name)
    allowed: set[int] = set()
    ids = [record.id for record in records]
    condition = uow.predicate(etype.name, action).sql(table)
    for start in range(0, len(ids), 500):
        check = sa.select(table.c.id).where(table.c.id.in_(ids[start:start + 500]), condition)
        allowed.update(r[0] for r in uow._execute(check))
    for record in records:
        if record.id not in allowed:
            uow.check_access(record, action)


def _read_many(uow: UnitOfWork, etype: EntityType, ids: Sequence[int], *, filtered: bool) -> dict[int, Record]:
    """``{id: full record}`` of the rows of *ids* (those the actor may read, when *filtered*),
    500 a statement: ``SELECT ... WHERE id IN (...)`` compiled once per unit and size (and
    actor), run on the driver."""
    entity = etype.name
    viewer = (uow.actor.is_system, uow.actor.user_id) if filtered else None
    found: dict[int, Record] = {}
    convert = uow._row_to_record
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        size = len(chunk)

        def build(size: int = size) -> sa.Select[Any]:
            table = uow.registry.table(entity)
            statement = sa.select(table).where(table.c.id.in_([sa.bindparam(f"b_{i}", required=False) for i in range(size)]))
            return statement.where(uow.read_filter(entity, table)) if filtered else statement

        statement = uow._driver(("many", entity, size, viewer), build)
        for row in statement.rows(uow, {f"b_{i}": record_id for i, record_id in enumerate(chunk)}, entity=entity):
            found[row["id"]] = convert(etype, row, full=True)
    return found


def write_updates(uow: UnitOfWork, etype: EntityType, plan: Sequence[tuple[Record, dict[str, Any]]]) -> list[Record]:
    """Write ``(old, diff)`` pairs of full records set-based (references checked, versions
    matched), audit them, queue their signals and run the ``crm_after_update`` hooks once for
    the batch; a single :meth:`UnitOfWork.update` is a batch of one. Returns the new records."""
    if not plan:
        return []
    entity = etype.name
    if len(plan) == 1:  # a batch of one (a single update): one UPDATE, audited as one
        old, diff = plan[0]
        uow._check_references(etype, diff)
        now = _now()
        _write_one(uow, etype, old, diff, now)
        new = _Issued.of(entity, old.merged(diff, {"updated_at": now, "updated_by": uow.actor.user_id,
                                                   "version": old.values["version"] + 1}), uow._origin)
        uow._after_write("updated", etype, new, old, diff)
        _record_hooks.after_update(uow, etype, [(old, new, diff)])
        uow._security_changed(entity)
        return [new]
    references = uow._reference_names(etype)
    if references and any(not references.isdisjoint(diff) for _, diff in plan):
        errors = uow.reference_errors(etype, [diff for _, diff in plan])
        if errors:
            first = min(errors)
            raise ReferenceError(errors[first], entity=entity)
    now = _now()
    _write_updates(uow, etype, plan, now)
    stamp = {"updated_at": now, "updated_by": uow.actor.user_id}
    origin, issued = uow._origin, _Issued.of
    items = [
        (old, issued(entity, old.merged(diff, stamp, {"version": old.values["version"] + 1}), origin), diff)
        for old, diff in plan
    ]
    _record_updates(uow, etype, items, now)
    _record_hooks.after_update(uow, etype, items)
    uow._security_changed(entity)
    return [new for _, new, _ in items]


def _write_updates(uow: UnitOfWork, etype: EntityType, plan: Sequence[tuple[Record, dict[str, Any]]], now: dt.datetime) -> None:
    """The UPDATE statements of *plan*, on the driver: records sharing their changes (the
    same values) and their version are updated together, ``WHERE version = ... AND id IN
    (...)`` per 500; the rest with one ``executemany``. A row count short of the records is
    the conflict of the first one that changed or went since it was read."""
    by = uow.actor.user_id
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}  # the changes' values by identity -> columns
    groups: dict[tuple[Any, ...], list[int]] = {}
    for old, diff in plan:
        key = (*diff, *map(id, diff.values()))
        if key not in rows:
            rows[key] = uow._to_row(etype, diff)
        values = old.values
        groups.setdefault((key, values["version"]), []).append(values["id"])
    single: dict[tuple[str, ...], list[tuple[int, int, dict[str, Any]]]] = {}
    for (key, version), ids in groups.items():
        row = rows[key]
        if len(ids) < _SET_UPDATE_MIN:
            single.setdefault(tuple(row), []).extend((record_id, version, row) for record_id in ids)
            continue
        head, processors = _update_by_ids(uow, etype, tuple(row))
        bound = [p(v) if p is not None else v for p, v in zip(processors, [*row.values(), version + 1, now, by, version], strict=True)]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            _checked_update(uow, etype, f"{head}({uow._marks(len(chunk))})", [*bound, *chunk], [(i, version) for i in chunk],
                                 row, now)
    for columns, triples in single.items():
        statement = _update_by_id(uow, etype, (*columns, "version", "updated_at", "updated_by"))
        for start in range(0, len(triples), 1000):
            chunk_triples = triples[start:start + 1000]
            params = [statement._params({**row, "version": version + 1, "updated_at": now, "updated_by": by, "b_id": record_id,
                                         "b_version": version}) for record_id, version, row in chunk_triples]
            _checked_update(uow, etype, statement.sql, params, [(i, v) for i, v, _ in chunk_triples], chunk_triples[0][2], now,
                                 many=True)


def _update_by_id(uow: UnitOfWork, etype: EntityType, names: tuple[str, ...]) -> _Prepared:
    """``UPDATE ... SET <names> WHERE id = :b_id AND version = :b_version``, prepared once per
    unit for the driver."""
    table = uow.registry.table(etype.name)
    return uow._driver(("update", etype.name, *names), lambda: (
        sa.update(table).where(table.c.id == sa.bindparam("b_id"), table.c.version == sa.bindparam("b_version"))
        .values({c: sa.bindparam(c) for c in names})
    ))


def _write_one(uow: UnitOfWork, etype: EntityType, old: Record, diff: dict[str, Any], now: dt.datetime) -> None:
    """The UPDATE of one full record *old* with *diff*, at its version (a conflict when the row
    changed or went since)."""
    values = old.values
    record_id, version = values["id"], values["version"]
    row = {**uow._to_row(etype, diff), "version": version + 1, "updated_at": now, "updated_by": uow.actor.user_id}
    statement = _update_by_id(uow, etype, tuple(row))
    try:
        count = statement.run(uow, {**row, "b_id": record_id, "b_version": version}, entity=etype.name, id=record_id)
    except sa.exc.IntegrityError as exc:
        raise uow._integrity(etype, exc, row) from exc
    if count != 1:  # deleted or changed since it was read (or issued)
        raise uow._conflict(etype, [(record_id, version)], now)


def _update_by_ids(uow: UnitOfWork, etype: EntityType, columns: tuple[str, ...]) -> tuple[str, list[Callable[[Any], Any] | None]]:
    """``UPDATE ... SET <columns>, version, updated_at, updated_by WHERE version = ? AND id
    IN `` (the ids' marks to follow) written for the driver, and the bind processors of the
    values in the order of the marks (the ids' are ``None``)."""
    key = ("update_by_ids", etype.name, *columns)
    found = uow._statements.get(key)
    if found is None:
        table = uow.registry.table(etype.name)
        dialect = uow.connection.dialect
        quote, name = uow._quoted(table)
        mark = uow._marks(1)
        names = (*columns, "version", "updated_at", "updated_by")
        head = (f"UPDATE {name} SET {', '.join(f'{quote(c)} = {mark}' for c in names)} "
                f"WHERE {quote('version')} = {mark} AND {quote('id')} IN ")
        processors: list[Callable[[Any], Any] | None] = [
            table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in (*names, "version")
        ]
        found = uow._statements[key] = (head, processors)
    return found  # type: ignore[no-any-return]


def _checked_update(uow: UnitOfWork, etype: EntityType, statement: str, params: Any, expected: Sequence[tuple[int, int]],
                    row: Mapping[str, Any], at: dt.datetime, *, many: bool = False) -> None:
    """Run an UPDATE of the ``(id, version)`` pairs *expected*; a row count short of them
    raises the conflict of the first record that changed or went."""
    try:
        changed = uow._plain(statement, params, many=many, entity=etype.name)
    except sa.exc.IntegrityError as exc:
        raise uow._integrity(etype, exc, row) from exc
    if changed != len(expected):
        raise uow._conflict(etype, expected, at)


def _record_updates(uow: UnitOfWork, etype: EntityType, items: Sequence[tuple[Record, Record, dict[str, Any]]], at: dt.datetime) -> None:
    """What :meth:`_after_write` does for an update, for ``(old, new, diff)`` of many
    records: changes recorded, audit entries queued (a value many records share, such as
    the time a batch entered a stage, dumped once), ``record-updated`` queued for each (the
    events made after the commit, if anyone listens)."""
    entity = etype.name
    actor = uow.actor
    actor_id = actor.user_id
    uow.changes.extend([Change("updated", entity, new.values["id"]) for _, new, _ in items])
    if etype.auditable:
        texts = _audit.changes_texts(uow, etype, items)
        uow._audit.extend([(at, actor_id, entity, new.values["id"], "updated", text)
                            for (_, new, _), text in zip(items, texts, strict=True)])
    if len(uow._audit) >= 5000:
        uow.flush()
    kept = items  # the list write_updates made; nothing changes it
    uow.announce_many(UPDATED, entity, lambda: (
        {"event": RecordEvent("updated", entity, new, actor, {n: (old.values.get(n), v) for n, v in diff.items()})}
        for old, new, diff in kept
    ))
