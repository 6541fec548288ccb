"""The audit trail: entries queued by the unit of work (written in bulk before reads of the
trail and at commit), a record's history and its timeline (the 360-degree view of the records
around it): the work of :meth:`UnitOfWork.queue_audit`, ``history`` and ``timeline``. Values
are kept in their JSON form: money as ``{"amount", "currency"}``, times as ISO text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import PluginError
from crmcore.fields import FieldType, Json, MoneyType
from crmcore.fields.base import shown
from crmcore.records import Record
from crmcore.storage.bulk import JsonText, json_fragment
from crmcore.storage.operations import _as_id, _now

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["AuditEntry"]

#: The columns of an audit entry queued by the unit of work, in the order of its tuple.
AUDIT_COLUMNS = ("at", "actor_id", "entity", "record_id", "action", "changes")
#: Stands for the dump of a name that is no field (pseudo fields of the audit such as tags).
_PSEUDO = object()
#: The key of ``changes`` that holds, for an entry written in :meth:`UnitOfWork.system_scope`,
#: ``{"on_behalf_of": user id, "reason": text}`` (no field is named so: names are identifiers).
SCOPE_KEY = "@scope"


@attrs.frozen
class AuditEntry:
    """One entry of the audit trail, as timelines return it.

    :ivar changes: ``{field: (old, new)}`` in JSON form (money as ``{"amount", "currency"}``,
        times as ISO text).
    :ivar on_behalf_of: for a change the system made in :meth:`UnitOfWork.system_scope`, the
        user on whose behalf it acted (``actor_id`` is then ``None``, the system's).
    :ivar reason: the reason that scope gave.
    """

    id: int
    at: dt.datetime
    actor_id: int | None
    entity: str
    record_id: int
    action: str
    changes: dict[str, tuple[Any, Any]]
    on_behalf_of: int | None = None
    reason: str | None = None

    def __repr__(self) -> str:
        return f"<AuditEntry {self.action} {self.entity} {self.record_id} at={self.at.isoformat()}>"


def changes_texts(uow: UnitOfWork, etype: EntityType, items: Sequence[tuple[Record, Record, dict[str, Any]]]) -> list[JsonText]:
    """The ``changes`` of the audit entries of ``(old, new, diff)`` as JSON text, ``{field:
    [old, new]}`` with each value in its audit form, assembled from parts: a new value many
    records share (the stage a batch entered, the time it did) is written once."""
    fragments = _fragments(uow, etype)
    plain = fragments[None]
    fields: dict[str, tuple[str, Callable[[Any], str], dict[int, str]]] = {}  # field -> key, fragment, texts by id
    out: list[JsonText] = []
    append = out.append
    for old, _, diff in items:
        was = old.values
        parts = []
        for name, value in diff.items():
            found = fields.get(name)
            if found is None:
                found = fields[name] = (f"{encode_basestring_ascii(name)}: [", fragments.get(name, plain), {})
            head, fragment, texts = found
            text = texts.get(id(value))  # the values stay alive in items while this runs
            if text is None:
                text = texts[id(value)] = fragment(value)
            parts.append(f"{head}{fragment(was.get(name))}, {text}]")
        append(JsonText("{" + ", ".join(parts) + "}"))
    return _scoped(uow, out)


def created_texts(uow: UnitOfWork, etype: EntityType, records: Sequence[Record]) -> list[JsonText]:
    """The ``changes`` of the audit entries of new *records* as JSON text, ``{field: [null,
    new]}`` for each field that has a value, in the fields' order. Text is final: a caller
    changing a value of a record afterwards changes nothing in the trail."""
    fragments = _fragments(uow, etype)
    plan = [(field.name, f"{encode_basestring_ascii(field.name)}: [null, ", _shared(fragments[field.name])
             if isinstance(field.type, Json) else fragments[field.name]) for field in etype.fields]
    out: list[JsonText] = []
    append = out.append
    for record in records:
        get = record.values.get
        append(JsonText("{" + ", ".join([f"{head}{fragment(value)}]" for name, head, fragment in plan
                                         if (value := get(name)) is not None]) + "}"))
    return _scoped(uow, out)


def _shared(fragment: Callable[[Any], str]) -> Callable[[Any], str]:
    """*fragment* writing the text of a dict or list many records share (one document for a
    batch) once: remembered by identity while the records that hold the objects are alive."""
    texts: dict[int, str] = {}

    def once(value: Any) -> str:
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool:
            return fragment(value)
        text = texts.get(id(value))
        if text is None:
            text = texts[id(value)] = fragment(value)
        return text

    return once


def _scoped(uow: UnitOfWork, texts: list[JsonText]) -> list[JsonText]:
    """*texts* with the unit's system scope added to each (the same scope for the batch)."""
    scope = uow._scope
    if scope is None:
        return texts
    tail = f"{encode_basestring_ascii(SCOPE_KEY)}: {json_fragment(None)(scope)}}}"
    return [JsonText(f"{text[:-1]}, {tail}" if len(text) > 2 else "{" + tail) for text in texts]


def _fragment(dump: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    """The fragment of a field whose audit form is ``dump(value)``: a JSON field's dump is a
    copy of the value, which its text needs no more than the value; money's text is written
    from its two parts without the dict of its dump."""
    kind = getattr(dump, "__func__", None)
    if kind is Json.dump:
        return json_fragment(None)
    if kind is MoneyType.dump:
        quote = encode_basestring_ascii

        def money(value: Any) -> str:
            if value is None:
                return "null"
            return f'{{"amount": {quote(str(value.amount))}, "currency": {quote(value.currency)}}}'

        return money
    return json_fragment(dump)


def _fragments(uow: UnitOfWork, etype: EntityType) -> dict[str | None, Callable[[Any], str]]:
    """``{field: value -> JSON text of its audit form}`` of *etype*, and at ``None`` the one
    for values that are their own JSON form (pseudo fields such as tags)."""
    found = uow._fragment_plans.get(etype.name)
    if found is None:
        found = {name: _fragment(dump) for name, dump in dump_plan(uow, etype)[0].items()}
        found[None] = json_fragment(None)
        uow._fragment_plans[etype.name] = found
    return found


def queue_audit(uow: UnitOfWork, etype: EntityType, record_id: int, action: str, changes: Mapping[str, tuple[Any, Any]],
    *, at: dt.datetime | None = None,
) -> None:
    """The work of :meth:`UnitOfWork.queue_audit`."""
    dumpers = dump_plan(uow, etype)[0]
    dumped = {}
    for name, (old, new) in changes.items():
        dump = dumpers.get(name, _PSEUDO)
        if dump is None or dump is _PSEUDO:  # values as they are, or a pseudo field (tags)
            dumped[name] = [old, new]
        else:
            dumped[name] = [None if old is None else dump(old), None if new is None else dump(new)]
    queue_entry(uow, etype, record_id, action, dumped, at)


def queue_entry(uow: UnitOfWork, etype: EntityType, record_id: int, action: str, dumped: dict[str, Any], at: dt.datetime | None) -> None:
    """Queue an entry whose changes are in their JSON form already (*at* ``None``: now); a full
    queue is written at once."""
    if uow._scope is not None:
        dumped = {**dumped, SCOPE_KEY: uow._scope}
    uow._audit.append((at or _now(), uow.actor.user_id, etype.name, record_id, action, dumped))
    if len(uow._audit) >= 5000:
        uow.flush()


def dump_plan(uow: UnitOfWork, etype: EntityType) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """``{field: dump}`` of every field and ``[(name, dump)]`` of the declared ones, where
    ``dump`` is ``None`` when a value is its own JSON form."""
    found = uow._dump_plans.get(etype.name)
    if found is None:
        dumps = {f.name: None if type(f.type).dump is FieldType.dump else f.type.dump for f in etype.all_fields}
        found = uow._dump_plans[etype.name] = (dumps, [(f.name, dumps[f.name]) for f in etype.fields])
    return found


def history(uow: UnitOfWork, entity: str, id: int) -> list[AuditEntry]:
    """The work of :meth:`UnitOfWork.history`."""
    return _audit_entries(uow, _own_entries(uow, entity, id)[2])


def timeline(uow: UnitOfWork, entity: str, id: int) -> list[AuditEntry]:
    """The work of :meth:`UnitOfWork.timeline`."""
    etype, record_id, own = _own_entries(uow, entity, id)
    audit = uow.crm.core_tables["audit"]
    conditions = [own]
    if entity != "user":
        for child, ids in _related_ids(uow, etype, record_id):
            conditions.append(sa.and_(audit.c.entity == child, audit.c.record_id.in_(ids)))
    for other, ids in _named_by_plugins(uow, entity, record_id).items():
        table = uow.registry.table(other)
        readable = sa.select(table.c.id).where(table.c.id.in_(sorted(ids)), uow.read_filter(other, table))
        conditions.append(sa.and_(audit.c.entity == other, audit.c.record_id.in_(readable)))
    return _audit_entries(uow, sa.or_(*conditions))


def _named_by_plugins(uow: UnitOfWork, entity: str, record_id: int) -> dict[str, set[int]]:
    """``{entity type: ids}`` the ``crm_timeline_records`` hooks add to a record's timeline.

    :raises PluginError: naming an answer that is no mapping of known entity types to ids.
    """
    named: dict[str, set[int]] = {}
    for answer in uow._hook.crm_timeline_records(uow=uow, entity=entity, record_id=record_id):
        if answer is None:
            continue
        if not isinstance(answer, Mapping):
            raise PluginError(f"crm_timeline_records must return {{entity: ids}} or None, got {shown(answer)}")
        for other, ids in answer.items():
            if other not in uow.registry:
                raise PluginError(f"crm_timeline_records named an unknown entity type {other!r}")
            named.setdefault(other, set()).update(_as_id(other, i) for i in ids)
    return {other: ids for other, ids in named.items() if ids}


def _own_entries(uow: UnitOfWork, entity: str, id: int) -> tuple[EntityType, int, sa.ColumnElement[bool]]:
    """The entity type, the id and the condition on the audit entries of one record, once the
    actor may read it (the system actor may read the trail of a deleted record)."""
    etype = uow.registry.entity(entity)
    record_id = _as_id(entity, id)
    if not uow.actor.is_system:
        uow._select_one(etype, record_id, action="read")
    audit = uow.crm.core_tables["audit"]
    return etype, record_id, sa.and_(audit.c.entity == entity, audit.c.record_id == record_id)


def _related_ids(uow: UnitOfWork, etype: EntityType, record_id: int) -> list[tuple[str, sa.Select[Any]]]:
    related: list[tuple[str, sa.Select[Any]]] = []
    for child, field in uow.registry.referencing(etype.name):
        table = uow.registry.table(child.name)
        ids = sa.select(table.c.id).where(table.c[field.column] == record_id, uow.read_filter(child.name, table))
        related.append((child.name, ids))
        for grandchild, gfield in uow.registry.referencing(child.name):
            if grandchild.name == etype.name:
                continue
            gtable = uow.registry.table(grandchild.name)
            related.append((grandchild.name, sa.select(gtable.c.id).where(
                gtable.c[gfield.column].in_(ids), uow.read_filter(grandchild.name, gtable))))
    return related


def _audit_entries(uow: UnitOfWork, condition: Any) -> list[AuditEntry]:
    uow.flush()
    audit = uow.crm.core_tables["audit"]
    rows = uow._execute(sa.select(audit).where(condition).order_by(audit.c.at, audit.c.id)).mappings()
    entries = []
    for row in rows:
        hidden = uow.hidden_fields(row["entity"]) if row["entity"] in uow.registry else frozenset()
        stored = row["changes"]
        scope = stored.get(SCOPE_KEY) or {}
        changes = {k: (v[0], v[1]) for k, v in stored.items() if k not in hidden and k != SCOPE_KEY}
        entries.append(AuditEntry(row["id"], row["at"], row["actor_id"], row["entity"], row["record_id"], row["action"], changes,
                                  scope.get("on_behalf_of"), scope.get("reason")))
    return entries
