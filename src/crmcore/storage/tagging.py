"""Tags on records: the work of :meth:`UnitOfWork.tag`, ``tag_many``, ``untag``, ``tags``,
``tag_counts``, ``tag_cloud`` and ``tagged``. A tag is a ``tag`` record; a record's tags are
rows of ``crm_tagging``, written set-based.

Tags follow the access to the records they are on, checked on the rows in the database (see
:func:`crmcore.storage.batch.current_many`): seeing a record's tags needs read access to it,
changing them needs update access, and tag lists, counts and the tag cloud cover the records
the actor may read. A record the actor may not read is missing like one that does not exist.
Tagging does not change the record's row, so the version of the record handed in is not
compared.

A tagging is **shared** (every reader of the record sees it; audited as a ``tags`` change) or
a user's **private** one (only that user sees it: a personal way of sorting records, not a
change of the record, so it writes no audit entry that others could read). Which one a user
makes is ``private=`` of the call, by default ``[plugins.core] private_tags`` (false: shared);
the system actor's taggings are shared. Reading, a user sees the shared taggings and their own
private ones; the system actor sees all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import NotFoundError, ValidationError
from crmcore.records import Record
from crmcore.storage import audit as _audit
from crmcore.storage.batch import current_many

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = ["TagWeight"]

#: The owner of a shared tagging.
SHARED = 0
#: The weights of a tag cloud run from 1 (least used) to this.
MAX_WEIGHT = 5


@attrs.frozen
class TagWeight:
    """A tag of a tag cloud: its name, how many of the records the actor may read carry it
    (shared or the actor's own private tagging), and its weight from 1 to 5 (logarithmic in
    the count, the most used tag 5).
    """

    name: str
    count: int
    weight: int


def _owner(uow: UnitOfWork, private: bool | None) -> int:
    """The owner of the taggings the actor writes or removes: :data:`SHARED`, or the user's id
    for private ones (*private*, by default ``[plugins.core] private_tags``).

    :raises ValidationError: when the system actor asks for private taggings.
    """
    if private is None:
        private = not uow.actor.is_system and bool(uow.crm.plugin_settings.get("core", {}).get("private_tags", False))
    if not private:
        return SHARED
    if uow.actor.user_id is None:
        raise ValidationError("the system actor's tags are shared: tag with private=False, or as a user", entity="tag")
    return uow.actor.user_id


def _seen(uow: UnitOfWork, tagging: sa.Table) -> sa.ColumnElement[bool]:
    """The taggings the actor sees: the shared ones and their own (the system actor: all)."""
    if uow.actor.is_system:
        return sa.true()
    return tagging.c.owner_id.in_((SHARED, uow.actor.user_id))


def tag(uow: UnitOfWork, record: Record, *names: str, private: bool | None = None) -> None:
    """The work of :meth:`UnitOfWork.tag`."""
    tag_many(uow, [record], *names, private=private)


def tag_many(uow: UnitOfWork, records: Iterable[Record], *names: str, private: bool | None = None) -> None:
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
    owner = _owner(uow, private)
    if not uow.actor.is_system:  # the system actor's tags are checked to exist below
        # a shared tag changes what every reader sees (update access); a private one is the
        # user's own way of sorting what they may read
        current_many(uow, etype, given, action="update" if owner == SHARED else "read", versions=False)
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
    # each record that exists, with each of the tags it carries from this owner (NULL: none)
    if tag_ids:
        head = (f"SELECT r.{quote('id')}, t.{quote('tag_id')} FROM {table} r LEFT OUTER JOIN {taggings} t "
                f"ON t.{quote('record_id')} = r.{quote('id')} AND t.{quote('entity')} = {uow._marks(1)} "
                f"AND t.{quote('owner_id')} = {uow._marks(1)} "
                f"AND t.{quote('tag_id')} IN ({uow._marks(len(tag_ids))}) WHERE r.{quote('id')} IN ")
    else:
        head = f"SELECT {quote('id')}, NULL FROM {table} WHERE {quote('id')} IN "
    found: set[int] = set()
    present: dict[int, set[int]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        params = [entity, owner, *tag_ids, *chunk] if tag_ids else chunk
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
    rows: list[tuple[int, str, int, int]] = []
    entries: list[tuple[int, str]] = []
    for record_id in ids:
        has = present.get(record_id, ())
        added = [n for n in parsed if existing[n] not in has]
        if added:
            rows.extend((existing[n], entity, record_id, owner) for n in added)
            entries.append((record_id, ", ".join(added)))
    if rows:
        insert = (f"INSERT INTO {taggings} ({quote('tag_id')}, {quote('entity')}, {quote('record_id')}, {quote('owner_id')}) "
                  f"VALUES ({uow._marks(4)})")
        uow._plain(insert, rows, many=True, entity=entity)
        if owner == SHARED:  # a private tagging is no change of the record others could see
            for record_id, text in entries:
                _audit.queue_entry(uow, etype, record_id, "tagged", {"tags": [None, text]}, None)


def untag(uow: UnitOfWork, record: Record, *names: str, private: bool | None = None) -> None:
    """The work of :meth:`UnitOfWork.untag`."""
    wanted = _tag_names(uow, names)
    owner = _owner(uow, private)
    current_many(uow, uow.registry.entity(record.entity), [record], action="update" if owner == SHARED else "read",
                 versions=False)
    tag_table = uow.registry.table("tag")
    tagging = uow.crm.core_tables["tagging"]
    mine = sa.and_(tagging.c.entity == record.entity, tagging.c.record_id == record.id, tagging.c.owner_id == owner)
    carried = (
        sa.select(tag_table.c.id, tag_table.c.name).join(tagging, tagging.c.tag_id == tag_table.c.id)
        .where(mine, tag_table.c.name.in_(wanted))
    )
    removed = {r.name: r.id for r in uow._execute(carried)}
    if removed:
        uow._execute(sa.delete(tagging).where(mine, tagging.c.tag_id.in_(removed.values())))
        if owner == SHARED:
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
        sa.select(tag_table.c.name).distinct().join(tagging, tagging.c.tag_id == tag_table.c.id)
        .where(tagging.c.entity == record.entity, tagging.c.record_id == record.id, _seen(uow, tagging))
        .order_by(tag_table.c.name)
    )
    return [r[0] for r in uow._execute(statement)]


def _carried(uow: UnitOfWork, entity: str | None) -> sa.Subquery:
    """``(tag_id, entity, record_id)`` once per tag the actor sees on a record they may read
    (of *entity*, or of every ownable entity type)."""
    tagging = uow.crm.core_tables["tagging"]
    statement = sa.select(tagging.c.tag_id, tagging.c.entity, tagging.c.record_id).distinct().where(_seen(uow, tagging))
    if entity is not None:
        uow.registry.entity(entity)
        statement = statement.where(tagging.c.entity == entity)
    if not uow.actor.is_system:  # only the records the actor may read
        entities = [entity] if entity is not None else [e.name for e in uow.registry if e.ownable]
        statement = statement.where(sa.or_(sa.false(), *(
            sa.and_(tagging.c.entity == name, tagging.c.record_id.in_(
                sa.select(uow.registry.table(name).c.id).where(uow.read_filter(name))))
            for name in entities
        )))
    return statement.subquery("carried")


def tag_counts(uow: UnitOfWork, entity: str | None = None, top: int | None = None) -> list[tuple[str, int]]:
    """The work of :meth:`UnitOfWork.tag_counts`."""
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or top < 1):
        raise ValidationError(f"top takes a whole number of tags from 1 up, got {top!r}", entity="tag")
    tag_table = uow.registry.table("tag")
    carried = _carried(uow, entity)
    count = sa.func.count()
    statement = (
        sa.select(tag_table.c.name, count).join(carried, carried.c.tag_id == tag_table.c.id)
        .group_by(tag_table.c.name).order_by(count.desc(), tag_table.c.name).limit(top)
    )
    return [(r[0], r[1]) for r in uow._execute(statement)]


def tag_cloud(uow: UnitOfWork, entity: str | None = None, top: int | None = None) -> list[TagWeight]:
    """The work of :meth:`UnitOfWork.tag_cloud`."""
    counts = tag_counts(uow, entity, top)
    if not counts:
        return []
    most = counts[0][1]
    scale = math.log(most) if most > 1 else 1.0
    return [TagWeight(name, count, 1 + round((MAX_WEIGHT - 1) * math.log(count) / scale)) for name, count in counts]


def tagged_condition(uow: UnitOfWork, entity: str, table: sa.FromClause, names: Iterable[Any] | None) -> sa.ColumnElement[bool]:
    """Records of *entity* (rows of *table*) carrying one of the tags *names* (``None``: any
    tag) that the actor sees: the condition a query's ``("tags", "=", name)`` compiles to."""
    tag_table = uow.registry.table("tag")
    tagging = uow.crm.core_tables["tagging"]
    statement = sa.select(tagging.c.record_id).where(
        tagging.c.entity == entity, tagging.c.record_id == table.c.id, _seen(uow, tagging))
    if names is not None:
        statement = statement.join(tag_table, tag_table.c.id == tagging.c.tag_id).where(tag_table.c.name.in_(list(names)))
    return sa.exists(statement)


def tagged(uow: UnitOfWork, entity: str, tag: str) -> list[Record]:
    """The work of :meth:`UnitOfWork.tagged`."""
    return uow.query(entity).where(("tags", "=", tag)).all()
