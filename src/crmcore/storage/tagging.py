"""Tags on records: the work of :meth:`UnitOfWork.tag`, ``tag_many``, ``untag``, ``tags``,
``tag_counts`` and ``tagged``. A tag is a ``tag`` record; a record's tags are rows of
``crm_tagging``, written set-based and audited as a ``tags`` change.

Tags follow the access to the records they are on, checked on the rows in the database (see
:func:`crmcore.storage.batch.current_many`): seeing a record's tags needs read access to it,
changing them needs update access, and tag lists and counts cover the records the actor may
read. A record the actor may not read is missing like one that does not exist. Tagging does
not change the record's row, so the version of the record handed in is not compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmcore.errors import NotFoundError, ValidationError
from crmcore.records import Record
from crmcore.storage import audit as _audit
from crmcore.storage.batch import current_many

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__: list[str] = []


def tag(uow: UnitOfWork, record: Record, *names: str) -> None:
    """The work of :meth:`UnitOfWork.tag`."""
    tag_many(uow, [record], *names)


def tag_many(uow: UnitOfWork, records: Iterable[Record], *names: str) -> None:
    """The work of :meth:`UnitOfWork.tag_many`."""
    given = list(records)
    if not given:
        return
    entity = given[0].entity
    etype = uow.registry.entity(entity)
    if not etype.ownable:
        raise ValidationError(f"{entity} records cannot be tagged; only ownable entity types can", entity=entity)
    if any(r.entity != entity for r in given):
        raise ValidationError("tag_many tags records of one entity type at a time", entity=entity)
    parsed = _tag_names(uow, names)
    if not uow.actor.is_system:  # the system actor's tags are checked to exist below
        current_many(uow, etype, given, versions=False)
    ids = list(dict.fromkeys(r.id for r in given))
    tagging = uow.crm.core_tables["tagging"]
    quote, table = uow._quoted(uow.registry.table(entity))
    _, taggings = uow._quoted(tagging)
    existing: dict[str, int] = {}
    if parsed:
        _, tags = uow._quoted(uow.registry.table("tag"))
        statement = f"SELECT {quote('id')}, {quote('name')} FROM {tags} WHERE {quote('name')} IN ({uow._marks(len(parsed))})"
        for tag_id, name in uow._plain(statement, parsed, fetch=True, entity="tag"):
            existing[name] = tag_id
    tag_ids = list(existing.values())
    # each record that exists, with each of the tags it carries (NULL: none of them)
    if tag_ids:
        head = (f"SELECT r.{quote('id')}, t.{quote('tag_id')} FROM {table} r LEFT OUTER JOIN {taggings} t "
                f"ON t.{quote('record_id')} = r.{quote('id')} AND t.{quote('entity')} = {uow._marks(1)} "
                f"AND t.{quote('tag_id')} IN ({uow._marks(len(tag_ids))}) WHERE r.{quote('id')} IN ")
    else:
        head = f"SELECT {quote('id')}, NULL FROM {table} WHERE {quote('id')} IN "
    found: set[int] = set()
    present: dict[int, set[int]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        params = [entity, *tag_ids, *chunk] if tag_ids else chunk
        for record_id, tag_id in uow._plain(f"{head}({uow._marks(len(chunk))})", params, fetch=True, entity=entity):
            found.add(record_id)
            if tag_id is not None:
                present.setdefault(record_id, set()).add(tag_id)
    for record_id in ids:  # they must (still) exist
        if record_id not in found:
            raise NotFoundError(f"{entity} {record_id} not found", entity=entity, id=record_id)
    for name in parsed:  # new tags: no record carries them yet
        if name not in existing:
            existing[name] = uow.create("tag", name=name).id
    rows: list[tuple[int, str, int]] = []
    entries: list[tuple[int, str]] = []
    for record_id in ids:
        has = present.get(record_id, ())
        added = [n for n in parsed if existing[n] not in has]
        if added:
            rows.extend((existing[n], entity, record_id) for n in added)
            entries.append((record_id, ", ".join(added)))
    if rows:
        insert = f"INSERT INTO {taggings} ({quote('tag_id')}, {quote('entity')}, {quote('record_id')}) VALUES ({uow._marks(3)})"
        uow._plain(insert, rows, many=True, entity=entity)
        for record_id, text in entries:
            _audit.queue_entry(uow, etype, record_id, "tagged", {"tags": [None, text]}, None)


def untag(uow: UnitOfWork, record: Record, *names: str) -> None:
    """The work of :meth:`UnitOfWork.untag`."""
    wanted = _tag_names(uow, names)
    current_many(uow, uow.registry.entity(record.entity), [record], versions=False)
    tag_table = uow.registry.table("tag")
    tagging = uow.crm.core_tables["tagging"]
    carried = (
        sa.select(tag_table.c.id, tag_table.c.name).join(tagging, tagging.c.tag_id == tag_table.c.id)
        .where(tagging.c.entity == record.entity, tagging.c.record_id == record.id, tag_table.c.name.in_(wanted))
    )
    removed = {r.name: r.id for r in uow._execute(carried)}
    if removed:
        uow._execute(sa.delete(tagging).where(
            tagging.c.entity == record.entity, tagging.c.record_id == record.id, tagging.c.tag_id.in_(removed.values()),
        ))
        gone = ", ".join(n for n in wanted if n in removed)
        _audit.queue_audit(uow, uow.registry.entity(record.entity), record.id, "untagged", {"tags": (gone, None)})


def _tag_names(uow: UnitOfWork, names: Iterable[str]) -> list[str]:
    """*names* parsed like the tag's ``name`` field, without duplicates."""
    field = uow.registry.entity("tag").field("name")
    parsed: list[str] = []
    for name in names:
        try:
            value = field.parse(name)
        except ValueError as exc:
            raise ValidationError({"tags": [str(exc)]}, entity="tag") from None
        if value is None:
            raise ValidationError({"tags": [f"expected a tag name, got {name!r}"]}, entity="tag")
        parsed.append(value)
    return list(dict.fromkeys(parsed))


def tags(uow: UnitOfWork, record: Record) -> list[str]:
    """The work of :meth:`UnitOfWork.tags`."""
    current_many(uow, uow.registry.entity(record.entity), [record], action="read", versions=False)
    tag_table = uow.registry.table("tag")
    tagging = uow.crm.core_tables["tagging"]
    statement = (
        sa.select(tag_table.c.name).join(tagging, tagging.c.tag_id == tag_table.c.id)
        .where(tagging.c.entity == record.entity, tagging.c.record_id == record.id).order_by(tag_table.c.name)
    )
    return [r[0] for r in uow._execute(statement)]


def tag_counts(uow: UnitOfWork, entity: str | None = None) -> list[tuple[str, int]]:
    """The work of :meth:`UnitOfWork.tag_counts`."""
    tag_table = uow.registry.table("tag")
    tagging = uow.crm.core_tables["tagging"]
    count = sa.func.count(tagging.c.record_id)
    statement = sa.select(tag_table.c.name, count).join(tagging, tagging.c.tag_id == tag_table.c.id)
    if entity is not None:
        uow.registry.entity(entity)
        statement = statement.where(tagging.c.entity == entity)
    if not uow.actor.is_system:  # count only the records the actor may read
        entities = [entity] if entity is not None else [e.name for e in uow.registry if e.ownable]
        visible = sa.or_(*(
            sa.and_(tagging.c.entity == name, tagging.c.record_id.in_(
                sa.select(uow.registry.table(name).c.id).where(uow.read_filter(name))))
            for name in entities
        ))
        statement = statement.where(visible)
    statement = statement.group_by(tag_table.c.name).order_by(count.desc(), tag_table.c.name)
    return [(r[0], r[1]) for r in uow._execute(statement)]


def tagged(uow: UnitOfWork, entity: str, tag: str) -> list[Record]:
    """The work of :meth:`UnitOfWork.tagged`."""
    etype = uow.registry.entity(entity)
    table = uow.registry.table(entity)
    tag_table = uow.registry.table("tag")
    tagging = uow.crm.core_tables["tagging"]
    statement = (
        sa.select(table).join(tagging, sa.and_(tagging.c.record_id == table.c.id, tagging.c.entity == entity))
        .join(tag_table, tag_table.c.id == tagging.c.tag_id)
        .where(tag_table.c.name == tag, uow.read_filter(entity, table)).order_by(table.c.id)
    )
    return [uow._row_to_record(etype, row) for row in uow._execute(statement).mappings()]
