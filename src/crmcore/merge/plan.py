"""The dry run of a merge: :func:`plan_merge` reads, per relation, the rows that would move,
those that would be merged away as duplicates, and the conflicts, plus the field values the
record kept would take. Nothing is written; :func:`crmcore.merge.service.merge` carries the
plan out in the same unit of work.

One read per relation (the rows pointing at any of the merged records, with a flag saying
whether the actor may read each), whatever the number of rows: set-based. Rows the actor may
not read still move (a merge carries everything along) but are only counted, never named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.fields import Reference
from crmcore.merge.relations import MergeRelation, declared, field_rules, relations_of
from crmcore.storage import internal
from crmcore.storage.operations import _as_id

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["MergePlan", "RelationPlan", "plan_merge"]

@attrs.frozen
class RelationPlan:
    """What a merge does to one relation.

    :ivar name: ``holder.field`` (``"ticket.contact_id"``), or ``"tags"``.
    :ivar strategy: the relation's strategy.
    :ivar moving: ids of the rows repointed that the actor may read (all of them for taggings
        and plugin tables, which have no readers of their own: their count).
    :ivar merged_away: ids of the duplicate rows merged away that the actor may read.
    :ivar count: rows repointed, all of them.
    :ivar merged_count: rows merged away, all of them.
    :ivar hidden: rows among those that the actor may not read.
    :ivar conflicts: what stands in the way, or what a strategy resolved, in words.
    """

    name: str
    strategy: str
    moving: tuple[int, ...] = ()
    merged_away: tuple[int, ...] = ()
    count: int = 0
    merged_count: int = 0
    hidden: int = 0
    conflicts: tuple[str, ...] = ()


@attrs.define(eq=False)
class _Ops:
    """The writes of one relation: ``moves`` ``(row id or key, old value, new value)``, the
    rows merged ``away`` ``{row id: kept row id or None}``, and ``sums`` ``{kept row id:
    {field: amount added}}``."""

    relation: MergeRelation | None
    moves: list[tuple[Any, Any, Any]] = attrs.field(factory=list)
    away: dict[int, int | None] = attrs.field(factory=dict)
    sums: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    dropped: list[tuple[int, int, int]] = attrs.field(factory=list)  # taggings: (tag, owner, record)


@attrs.frozen
class MergePlan:
    """A merge planned: the records merged away (*sources*) into the record kept (*into*),
    per relation what happens, and ``values``: ``{field: (kept record's value, value after)}``
    for the fields that change."""

    entity: str
    into: int
    sources: tuple[int, ...]
    relations: tuple[RelationPlan, ...]
    values: Mapping[str, tuple[Any, Any]]
    _ops: tuple[_Ops, ...] = attrs.field(repr=False, eq=False, alias="ops")
    _records: Mapping[int, Record] = attrs.field(repr=False, eq=False, alias="records")

    @property
    def refusals(self) -> list[str]:
        """The conflicts of relations with strategy ``refuse``: the merge cannot go on."""
        return [c for r in self.relations if r.strategy == "refuse" for c in r.conflicts]

    @property
    def rows(self) -> int:
        """Rows repointed or merged away, over every relation."""
        return sum(r.count + r.merged_count for r in self.relations)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready account of the plan (``crm merge --dry-run --json``)."""
        return {
            "entity": self.entity, "into": self.into, "sources": list(self.sources),
            "values": {k: [str(a) if a is not None else None, str(b) if b is not None else None] for k, (a, b) in self.values.items()},
            "relations": [attrs.asdict(r) for r in self.relations if r.count or r.merged_count or r.conflicts],
            "refusals": self.refusals,
        }


def plan_merge(uow: UnitOfWork, entity: str, ids: Sequence[int], *, into: int,
               fields: Mapping[str, int | str] | None = None) -> MergePlan:
    """Plan merging the records *ids* of *entity* into *into* (see the module).

    :param ids: the records to merge; *into* may be among them.
    :param fields: ``{field: record id}`` to take a field's value from that record, or
        ``{field: strategy}`` (``target``, ``concatenate``, ``max``, ``min``, ``union``);
        other fields follow the declared ``MergeField`` rules, else the kept record's value
        (filled when empty).
    :raises PermissionDeniedError: without the ``merge`` privilege on *entity*, or update
        access to *into* and delete access to the others.
    :raises NotFoundError: for a record that does not exist or the actor may not read.
    :raises ValidationError: when no record is left to merge away, or a field choice does not fit.
    """
    etype = uow.registry.entity(entity)
    into = _as_id(entity, into)
    sources = tuple(sorted({_as_id(entity, i) for i in ids} - {into}))
    if not sources:
        raise ValidationError(f"merge {entity} into {into}: name at least one other {entity} to merge into it", entity=entity)
    uow.require(entity, "merge")
    records = {r.id: r for r in uow.get_many(entity, (into, *sources))}
    for rid in (into, *sources):
        if rid not in records:
            uow.get(entity, rid)  # raises the NotFoundError of a missing or hidden record
    uow.check_access(records[into], "update")
    for rid in sources:
        uow.check_access(records[rid], "delete")
    items = declared(uow.crm.plugins.hook)
    relations: list[RelationPlan] = []
    ops: list[_Ops] = []
    for relation in relations_of(uow.registry, entity, items):
        shown, op = (_plan_table if relation.is_table else _plan_records)(uow, etype, relation, into, sources)
        relations.append(shown)
        ops.append(op)
    shown, op = _plan_tags(uow, entity, into, sources)
    relations.append(shown)
    ops.append(op)
    values = _values(uow, etype, records, into, sources, dict(fields or {}), field_rules(entity, items))
    return MergePlan(entity, into, sources, tuple(relations), values, ops=tuple(ops), records=records)


def _plan_records(uow: UnitOfWork, etype: EntityType, relation: MergeRelation, into: int,
                  sources: tuple[int, ...]) -> tuple[RelationPlan, _Ops]:
    assert relation.entity is not None
    child = uow.registry.entity(relation.entity)
    table = uow.registry.table(child.name)
    link = table.c[child.field(relation.field).column]
    unique = [table.c[child.field(n).column] for n in relation.unique]
    summed = [table.c[child.field(n).column] for n in relation.sum_fields]
    seen = sa.case((uow.read_filter(child.name, table), 1), else_=0).label("seen")
    statement = sa.select(table.c.id, link, seen, *unique, *summed).where(link.in_((into, *sources)))
    if relation.entity_field is not None and "." in relation.entity_field:  # the type is on a referenced record
        via, far = relation.entity_field.split(".", 1)
        via_field = child.field(via)
        assert isinstance(via_field.type, Reference)
        parent = uow.registry.entity(via_field.type.entity)
        ptable = uow.registry.table(parent.name).alias("merge_parent")
        statement = statement.join(ptable, ptable.c.id == table.c[via_field.column]).where(
            ptable.c[parent.field(far).column] == etype.name)
    elif relation.entity_field is not None:
        statement = statement.where(table.c[child.field(relation.entity_field).column] == etype.name)
    rows = [tuple(r) for r in internal.execute(uow, statement.order_by(table.c.id))]
    if child.name == etype.name:  # records merged away are buried whole, their links with them
        rows = [r for r in rows if r[0] not in sources]
    n = len(unique)
    return _decide(relation, rows, into, sources, lambda r: tuple(r[3:3 + n]), lambda r: r[3 + n:],
                   self_ref=child.name == etype.name)


def _decide(relation: MergeRelation, rows: list[tuple[Any, ...]], into: int, sources: tuple[int, ...],
            key: Any, sums: Any, *, self_ref: bool) -> tuple[RelationPlan, _Ops]:
    op = _Ops(relation)
    kept = [r for r in rows if r[1] == into]
    theirs = [r for r in rows if r[1] != into]
    conflicts: list[str] = []
    if self_ref:  # the kept record pointing at one merged away would point at itself
        for r in theirs[:]:
            if r[0] == into:
                op.moves.append((r[0], r[1], None))
                theirs.remove(r)
                conflicts.append(f"{relation.name} of {into} pointed at {r[1]}, merged into it: cleared")
    if relation.strategy == "refuse":
        if theirs:
            conflicts.append(f"{relation.name}: {len(theirs)} row(s) point at the records merged away and the "
                             "relation refuses merges; move or remove them first")
    elif relation.strategy == "keep" and kept:
        op.away.update({r[0]: None for r in theirs})
        if theirs:
            conflicts.append(f"{relation.name}: the kept record's rows are kept; {len(theirs)} merged away")
    elif relation.strategy in ("union", "sum"):
        first: dict[tuple[Any, ...], int] = {key(r): r[0] for r in kept}
        amounts: dict[int, list[Any]] = {}
        for r in theirs:
            k = key(r)
            if k in first:
                op.away[r[0]] = first[k]
                if relation.strategy == "sum":
                    amounts.setdefault(first[k], [0] * len(relation.sum_fields))
                    amounts[first[k]] = [a + (b or 0) for a, b in zip(amounts[first[k]], sums(r), strict=True)]
            else:
                first[k] = r[0]
                op.moves.append((r[0], r[1], into))
        op.sums = {rid: dict(zip(relation.sum_fields, added, strict=True)) for rid, added in amounts.items()}
        if op.away:
            conflicts.append(f"{relation.name}: {len(op.away)} duplicate row(s) merged into the kept record's")
    else:
        op.moves.extend((r[0], r[1], into) for r in theirs)
    visible = {r[0] for r in rows if r[2]}
    moving = [m[0] for m in op.moves]
    shown = RelationPlan(
        relation.name, relation.strategy,
        moving=tuple(i for i in moving if i in visible), merged_away=tuple(i for i in op.away if i in visible),
        count=len(moving), merged_count=len(op.away),
        hidden=sum(1 for i in (*moving, *op.away) if i not in visible), conflicts=tuple(conflicts),
    )
    return shown, op


def _plan_table(uow: UnitOfWork, etype: EntityType, relation: MergeRelation, into: int,
                sources: tuple[int, ...]) -> tuple[RelationPlan, _Ops]:
    assert relation.table is not None and relation.plugin is not None
    if relation.strategy not in ("repoint", "refuse"):
        raise ValidationError(f"merge relation {relation.name}: a plugin table's link repoints or refuses, "
                              f"not {relation.strategy!r}; declare the table's rows as records to merge them")
    columns = {*relation.key, relation.field, *((relation.entity_field,) if relation.entity_field else ())}
    table = sa.table(relation.table, *(sa.column(c) for c in sorted(columns)))
    link = table.c[relation.field]
    statement = sa.select(*(table.c[k] for k in relation.key), link).where(link.in_(sources))
    if relation.entity_field is not None:
        statement = statement.where(table.c[relation.entity_field] == etype.name)
    rows = [tuple(r) for r in uow.raw(relation.plugin).execute(statement)]
    n = len(relation.key)
    op = _Ops(relation)
    conflicts: list[str] = []
    if relation.strategy == "refuse" and rows:
        conflicts.append(f"{relation.name}: {len(rows)} row(s) point at the records merged away and the relation "
                         "refuses merges; move or remove them first")
    elif relation.strategy == "repoint":
        op.moves.extend((dict(zip(relation.key, r[:n], strict=True)), r[n], into) for r in rows)
    return RelationPlan(relation.name, relation.strategy, count=len(op.moves), conflicts=tuple(conflicts)), op


def _plan_tags(uow: UnitOfWork, entity: str, into: int, sources: tuple[int, ...]) -> tuple[RelationPlan, _Ops]:
    tagging = uow.crm.core_tables["tagging"]
    statement = sa.select(tagging.c.tag_id, tagging.c.owner_id, tagging.c.record_id).where(
        tagging.c.entity == entity, tagging.c.record_id.in_((into, *sources)))
    rows = [tuple(r) for r in internal.execute(uow, statement)]
    have = {(t, o) for t, o, r in rows if r == into}
    op = _Ops(None)
    for tag_id, owner_id, record_id in sorted(rows):
        if record_id == into:
            continue
        op.dropped.append((tag_id, owner_id, record_id))
        if (tag_id, owner_id) not in have:
            have.add((tag_id, owner_id))
            op.moves.append(((tag_id, owner_id), record_id, into))
    duplicates = len(op.dropped) - len(op.moves)
    conflicts = (f"tags: {duplicates} tagging(s) the kept record has already",) if duplicates else ()
    return RelationPlan("tags", "union", count=len(op.moves), merged_count=duplicates, conflicts=conflicts), op


def _values(uow: UnitOfWork, etype: EntityType, records: Mapping[int, Record], into: int, sources: tuple[int, ...],
            chosen: dict[str, int | str], rules: Mapping[str, str]) -> dict[str, tuple[Any, Any]]:
    from crmcore.merge.relations import FIELD_STRATEGIES

    hidden = uow.hidden_fields(etype.name)
    names = {f.name for f in etype.fields if f.name not in hidden}
    unknown = sorted(set(chosen) - names)
    if unknown:
        raise ValidationError(f"merge {etype.name}: unknown field(s) {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(sorted(names))}", entity=etype.name)
    target = records[into].values
    ordered = [records[into].values, *(records[s].values for s in sources)]
    changes: dict[str, tuple[Any, Any]] = {}
    for field in etype.fields:
        name = field.name
        if name in hidden or name == "owner_id" and name not in chosen:
            continue
        how = chosen.get(name, rules.get(name, "target"))
        values = [v.get(name) for v in ordered]
        if isinstance(how, int) or (isinstance(how, str) and how.isdigit()):
            rid = int(how)
            if rid not in records:
                raise ValidationError(f"merge {etype.name}: field {name!r} is to come from {rid}, which is not merged; "
                                      f"choose one of {', '.join(map(str, records))}", entity=etype.name)
            value = records[rid].values.get(name)
        elif how not in FIELD_STRATEGIES:
            raise ValidationError(f"merge {etype.name}: field {name!r}: {how!r} is no record id nor strategy; "
                                  f"strategies: {', '.join(FIELD_STRATEGIES)}", entity=etype.name)
        else:
            value = _combine(how, values)
        if value != target.get(name):
            changes[name] = (target.get(name), value)
    return changes


def _combine(how: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None and v != ""]
    if how == "target":
        return values[0] if values[0] not in (None, "") else (present[0] if present else values[0])
    if not present:
        return values[0]
    if how in ("max", "min"):
        try:
            return max(present) if how == "max" else min(present)
        except TypeError:
            return values[0]
    if how == "concatenate":
        return "\n".join(dict.fromkeys(str(v) for v in present))
    items: list[Any] = []  # union
    for v in present:
        items.extend(v if isinstance(v, (list, tuple)) else [p.strip() for p in str(v).split(",") if p.strip()])
    unique = list(dict.fromkeys(items))
    return unique if any(isinstance(v, (list, tuple)) for v in present) else ", ".join(map(str, unique))
