"""Merging records and undoing a merge.

:func:`merge` carries out a :class:`~crmcore.merge.plan.MergePlan` in the caller's unit of
work: it repoints every relation (records through the batch update of the unit of work:
hooks, versions, audit, signals; taggings and plugin tables set-based), merges duplicate rows
away, buries the records merged away, gives the kept record its chosen values, and writes a
journal of every row it changed. Nothing is deleted: a record merged away (and a duplicate row
merged into another) becomes a **tombstone**, its whole row kept in ``crm_merge_tombstone``
with the id of the record it went into, and ``uow.get`` of its id gives that record.

The actor needs the ``merge`` privilege on the entity type, update access to the record kept
and delete access to the others (checked by the plan); the rows the merge carries along are
written in a system scope on the actor's behalf (audited as such), since a merge moves them
all, including rows the actor may not read.

:func:`undo` reverses a merge while nothing has written over it since: every row the merge
left must still be at the version it left it (plugin table links still hold the kept id),
else the undo is refused naming the rows. The buried rows come back under their own ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ConflictError, NotFoundError, ReferenceError
from crmcore.merge.plan import MergePlan, _Ops, plan_merge
from crmcore.merge.rows import decode_row, encode_row
from crmcore.storage import internal
from crmcore.storage.batch import update_many
from crmcore.storage.operations import _as_id, _now

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["MergeRefusedError", "MergeResult", "merge", "merged_into", "merges", "undo"]

_CHUNK = 500


class MergeRefusedError(ConflictError):
    """A merge a relation refuses (strategy ``refuse``), or an undo after later writes."""


@attrs.frozen
class MergeResult:
    """A merge done: its id (for :func:`undo`), the plan it carried out and the record kept."""

    merge_id: int
    plan: MergePlan
    record: Record

    def __repr__(self) -> str:
        return f"<MergeResult {self.merge_id} {self.plan.entity} {list(self.plan.sources)} -> {self.plan.into}>"


def merge(uow: UnitOfWork, entity: str, ids: Sequence[int], *, into: int,
          fields: Mapping[str, int | str] | None = None) -> MergeResult:
    """Merge the records *ids* of *entity* into *into* (see :func:`crmcore.merge.plan.plan_merge`
    for the arguments and the checks).

    :returns: the :class:`MergeResult`.
    :raises MergeRefusedError: when a relation with strategy ``refuse`` holds rows of the
        records merged away (nothing is written).
    """
    plan = plan_merge(uow, entity, ids, into=into, fields=fields)
    if plan.refusals:
        raise MergeRefusedError(f"cannot merge {entity} {', '.join(map(str, plan.sources))} into {plan.into}: "
                                + "; ".join(plan.refusals))
    etype = uow.registry.entity(entity)
    tables = uow.crm.core_tables
    merge_id: int = internal.execute(uow, sa.insert(tables["merge"]).values(
        entity=entity, into_id=plan.into, sources=list(plan.sources), actor_id=uow.actor.user_id, at=_now(),
        summary={"relations": {r.name: [r.count, r.merged_count] for r in plan.relations if r.count or r.merged_count}},
    )).inserted_primary_key[0]  # type: ignore[index]
    journal: list[dict[str, Any]] = []
    reason = f"merge {merge_id}: {entity} {', '.join(map(str, plan.sources))} into {plan.into}"
    with uow.system_scope(reason):
        for op in plan._ops:
            if op.relation is None:
                _move_tags(uow, entity, op, journal)
            elif op.relation.is_table:
                _move_table(uow, op, journal)
            else:
                _move_records(uow, op, merge_id, journal)
        _bury(uow, etype, {s: plan.into for s in plan.sources}, merge_id)
        record = plan._records[plan.into]
        if plan.values:
            new = {name: after for name, (_, after) in plan.values.items()}
            internal.check_writable(uow, etype, [n for n in (fields or {}) if n in new])
            old = uow.get(entity, plan.into)
            record = update_many(uow, entity, [(old, new)])[0]
            journal.append(_entry("set", entity, plan.into, None, {n: _json(b) for n, (b, _) in plan.values.items()},
                                  None, record.version))
        journal.append(_entry("kept", entity, plan.into, None, None, None, record.version))
        uow.queue_audit(etype, plan.into, "merged", {"merged": (None, list(plan.sources)), "merge": (None, merge_id)})
    _write_journal(uow, merge_id, journal)
    return MergeResult(merge_id, plan, uow.get(entity, plan.into))


def _json(value: Any) -> Any:
    return encode_row({"v": value})["v"]


def _entry(kind: str, entity: str, record_id: int | None, field: str | None, old: Any, new: Any,
           version: int | None) -> dict[str, Any]:
    return {"kind": kind, "entity": entity, "record_id": record_id, "field": field, "old": old, "new": new, "version": version}


def _write_journal(uow: UnitOfWork, merge_id: int, journal: list[dict[str, Any]]) -> None:
    table = uow.crm.core_tables["merge_journal"]
    for start in range(0, len(journal), _CHUNK):
        internal.execute(uow, sa.insert(table), [{**e, "merge_id": merge_id} for e in journal[start:start + _CHUNK]])


def _move_records(uow: UnitOfWork, op: _Ops, merge_id: int, journal: list[dict[str, Any]]) -> None:
    relation = op.relation
    assert relation is not None and relation.entity is not None
    child = relation.entity
    if op.moves:
        old_by_id = {rid: (old, new) for rid, old, new in op.moves}
        records = uow.get_many(child, list(old_by_id))
        done = update_many(uow, child, [(r, {relation.field: old_by_id[r.id][1]}) for r in records])
        journal.extend(_entry("ref", child, r.id, relation.field, old_by_id[r.id][0], old_by_id[r.id][1], r.version) for r in done)
    if op.sums:
        kept = uow.get_many(child, list(op.sums))
        pairs = [(r, {f: (r.values.get(f) or 0) + added for f, added in op.sums[r.id].items()}) for r in kept]
        befores = {r.id: {f: _json(r.values.get(f)) for f in op.sums[r.id]} for r in kept}
        done = update_many(uow, child, pairs)
        journal.extend(_entry("set", child, r.id, None, befores[r.id], None, r.version) for r in done)
    if op.away:
        _bury(uow, uow.registry.entity(child), op.away, merge_id)


def _move_table(uow: UnitOfWork, op: _Ops, journal: list[dict[str, Any]]) -> None:
    relation = op.relation
    assert relation is not None and relation.table is not None and relation.plugin is not None
    table = sa.table(relation.table, *(sa.column(c) for c in {*relation.key, relation.field}))
    raw = uow.raw(relation.plugin)
    by_old: dict[Any, list[dict[str, Any]]] = {}
    for key, old, _new in op.moves:
        by_old.setdefault(old, []).append(key)
    for old, keys in by_old.items():
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            raw.execute(sa.update(table).where(_keys(table, relation.key, chunk)).values({relation.field: op.moves[0][2]}))
        journal.extend(_entry("link", relation.table, None, relation.field, {"key": k, "value": old}, op.moves[0][2], None)
                       for k in keys)


def _keys(table: Any, key: tuple[str, ...], chunk: list[dict[str, Any]]) -> Any:
    if len(key) == 1:
        return table.c[key[0]].in_([k[key[0]] for k in chunk])
    return sa.or_(*(sa.and_(*(table.c[c] == k[c] for c in key)) for k in chunk))


def _move_tags(uow: UnitOfWork, entity: str, op: _Ops, journal: list[dict[str, Any]]) -> None:
    if not op.dropped:
        return
    tagging = uow.crm.core_tables["tagging"]
    sources = sorted({r for _, _, r in op.dropped})
    internal.execute(uow, sa.delete(tagging).where(tagging.c.entity == entity, tagging.c.record_id.in_(sources)))
    if op.moves:
        internal.execute(uow, sa.insert(tagging), [
            {"tag_id": t, "owner_id": o, "entity": entity, "record_id": into} for (t, o), _, into in op.moves])
    journal.extend(_entry("untag", entity, r, None, {"tag_id": t, "owner_id": o}, None, None) for t, o, r in op.dropped)
    journal.extend(_entry("tag", entity, into, None, None, {"tag_id": t, "owner_id": o}, None) for (t, o), _, into in op.moves)


def _bury(uow: UnitOfWork, etype: EntityType, into: Mapping[int, int | None], merge_id: int) -> None:
    """Keep the rows *into* names (``{id: id of the row it went into}``) whole as tombstones,
    take them out of their table, and audit it."""
    table = uow.registry.table(etype.name)
    tombstones = uow.crm.core_tables["merge_tombstone"]
    ids = sorted(into)
    buried: list[int] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = internal.execute(uow, sa.select(table).where(table.c.id.in_(chunk))).mappings().all()
        if not rows:  # merged away already by another relation of the same rows
            continue
        chunk = [row["id"] for row in rows]
        buried.extend(chunk)
        internal.execute(uow, sa.insert(tombstones), [
            {"merge_id": merge_id, "entity": etype.name, "record_id": row["id"], "into_id": into[row["id"]],
             "row": encode_row(dict(row))} for row in rows])
        try:
            internal.execute(uow, sa.delete(table).where(table.c.id.in_(chunk)))
        except sa.exc.IntegrityError as exc:
            raise ReferenceError(
                f"cannot merge {etype.name} {', '.join(map(str, chunk[:10]))} away: rows of a table crmcore does not manage "
                "here (a plugin not enabled, another program) refer to them; enable that plugin or move those rows first",
            ) from exc
    for rid in buried:
        uow.queue_audit(etype, rid, "merged", {"merged_into": (None, into[rid]), "merge": (None, merge_id)})


def merged_into(uow: UnitOfWork, entity: str, record_id: int) -> int | None:
    """The id of the record *record_id* of *entity* was merged into (its tombstone's), or
    ``None`` when it is no tombstone."""
    tombstones = uow.crm.core_tables["merge_tombstone"]
    merges = uow.crm.core_tables["merge"]
    statement = (sa.select(tombstones.c.into_id)
                 .join(merges, merges.c.id == tombstones.c.merge_id)
                 .where(tombstones.c.entity == entity, tombstones.c.record_id == record_id, merges.c.undone_at.is_(None))
                 .order_by(tombstones.c.merge_id.desc()).limit(1))
    return internal.execute(uow, statement).scalar()


def undo(uow: UnitOfWork, merge_id: int) -> Record:
    """Undo merge *merge_id*: the records merged away come back with their ids, values and
    tags, every row it repointed points back, the kept record gets its former values.

    :returns: the record that was kept, as it is after the undo.
    :raises NotFoundError: for an unknown merge, or one undone already.
    :raises PermissionDeniedError: without the ``merge`` privilege on the entity type, or
        update access to the record kept.
    :raises MergeRefusedError: when rows the merge changed were written since (named).
    """
    merge_id = _as_id("merge", merge_id)
    tables = uow.crm.core_tables
    row = internal.execute(uow, sa.select(tables["merge"]).where(tables["merge"].c.id == merge_id)).mappings().first()
    if row is None or row["undone_at"] is not None:
        state = "was undone already" if row is not None else "does not exist"
        raise NotFoundError(f"merge {merge_id} {state}; 'crm merge list' shows the merges", entity="merge", id=merge_id)
    entity, into = row["entity"], row["into_id"]
    uow.require(entity, "merge")
    uow.check_access(uow.get(entity, into), "update")
    entries = [dict(e) for e in internal.execute(uow, sa.select(tables["merge_journal"]).where(
        tables["merge_journal"].c.merge_id == merge_id).order_by(tables["merge_journal"].c.id)).mappings()]
    _check_unchanged(uow, merge_id, entries)
    buried = [dict(t) for t in internal.execute(uow, sa.select(tables["merge_tombstone"]).where(
        tables["merge_tombstone"].c.merge_id == merge_id)).mappings()]
    with uow.system_scope(f"undo merge {merge_id}"):
        by_entity: dict[str, list[Mapping[str, Any]]] = {}
        for tomb in buried:
            by_entity.setdefault(tomb["entity"], []).append(tomb)
        order = sorted(by_entity, key=lambda name: name != entity)  # the records merged away first: rows point at them
        for name in order:
            tombs = by_entity[name]
            table = uow.registry.table(name)
            internal.execute(uow, sa.insert(table), [decode_row(t["row"]) for t in tombs])
            for t in tombs:
                uow.queue_audit(uow.registry.entity(name), t["record_id"], "unmerged", {"merge": (merge_id, None)})
        _revert(uow, entries)
        internal.execute(uow, sa.delete(tables["merge_tombstone"]).where(tables["merge_tombstone"].c.merge_id == merge_id))
        internal.execute(uow, sa.update(tables["merge"]).where(tables["merge"].c.id == merge_id).values(undone_at=_now()))
        uow.queue_audit(uow.registry.entity(entity), into, "unmerged", {"merge": (merge_id, None)})
    return uow.get(entity, into)


def _check_unchanged(uow: UnitOfWork, merge_id: int, entries: Sequence[Mapping[str, Any]]) -> None:
    wanted: dict[str, dict[int, int]] = {}
    for e in entries:
        if e["kind"] in ("ref", "set", "kept"):
            wanted.setdefault(e["entity"], {})[e["record_id"]] = e["version"]
    changed: list[str] = []
    for name, versions in wanted.items():
        if name not in uow.registry:
            continue
        table = uow.registry.table(name)
        ids = sorted(versions)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            found = dict(internal.execute(uow, sa.select(table.c.id, table.c.version).where(table.c.id.in_(chunk))).all())
            changed.extend(f"{name} {rid}" for rid in chunk if found.get(rid) != versions[rid])
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise MergeRefusedError(f"cannot undo merge {merge_id}: {shown} changed since the merge (or were deleted); "
                                "undo is only possible while nothing has written over the merge")


def _revert(uow: UnitOfWork, entries: Sequence[Mapping[str, Any]]) -> None:
    refs: dict[tuple[str, str, Any], list[int]] = {}
    sets: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    tagging = uow.crm.core_tables["tagging"]
    for e in entries:
        kind = e["kind"]
        if kind == "ref":
            refs.setdefault((e["entity"], e["field"], e["old"]), []).append(e["record_id"])
        elif kind == "set":
            sets.setdefault(e["entity"], []).append((e["record_id"], {k: decode_row({"v": v})["v"] for k, v in e["old"].items()}))
        elif kind == "tag":
            internal.execute(uow, sa.delete(tagging).where(
                tagging.c.entity == e["entity"], tagging.c.record_id == e["record_id"],
                tagging.c.tag_id == e["new"]["tag_id"], tagging.c.owner_id == e["new"]["owner_id"]))
    untags = [e for e in entries if e["kind"] == "untag"]
    if untags:
        internal.execute(uow, sa.insert(tagging), [
            {"entity": e["entity"], "record_id": e["record_id"], **e["old"]} for e in untags])
    for name, items in sets.items():
        current = {r.id: r for r in uow.get_many(name, [rid for rid, _ in items])}
        update_many(uow, name, [(current[rid], values) for rid, values in items])
    for (name, field, old), ids in refs.items():
        update_many(uow, name, [(r, {field: old}) for r in uow.get_many(name, ids)])
    links = [e for e in entries if e["kind"] == "link"]
    _revert_links(uow, links)


def _revert_links(uow: UnitOfWork, links: Sequence[Mapping[str, Any]]) -> None:
    from crmcore.merge.relations import MergeRelation, declared

    owners = {item.table: item for item in declared(uow.crm.plugins.hook) if isinstance(item, MergeRelation) and item.table}
    for e in links:
        relation = owners.get(e["entity"])
        if relation is None or relation.plugin is None or relation.plugin not in uow.crm.plugins.plugins:
            continue
        key = e["old"]["key"]
        table = sa.table(e["entity"], *(sa.column(c) for c in {*key, e["field"]}))
        uow.raw(relation.plugin).execute(sa.update(table).where(
            *(table.c[c] == v for c, v in key.items()), table.c[e["field"]] == e["new"]).values({e["field"]: e["old"]["value"]}))


def merges(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The merges of entity types the actor may merge, newest first: ``id``, ``entity``,
    ``into_id``, ``sources``, ``actor_id``, ``at``, ``undone_at``, ``summary``."""
    table = uow.crm.core_tables["merge"]
    rows = [dict(r) for r in internal.execute(uow, sa.select(table).order_by(table.c.id.desc())).mappings()]
    return [r for r in rows if r["entity"] in uow.registry and uow.can(r["entity"], "merge")]
