"""The unit of work's access checks: the actor's context, the predicates and hidden fields of
each entity, single-record checks and the scopes in which the unit acts as someone else.

:class:`AccessChecks` is a part of :class:`~crmcore.storage.uow.UnitOfWork`, on top of its
:class:`~crmcore.storage.uow_driver.UnitState`; it also holds the secured reads (``get``,
``get_many``, ``all``) and the checks of a write's fields and references.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import (
    NotFoundError,
    PermissionDeniedError,
    ReferenceError,
    ValidationError,
    missing_reference,
)
from crmcore.fields import FieldType, Reference
from crmcore.records import Record
from crmcore.security.model import EXPLAIN
from crmcore.storage.operations import _as_id, _Issued, _issued_by
from crmcore.storage.uow_driver import UnitState

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.security import AccessContext, Decision, Predicate


class AccessChecks(UnitState):
    """The secured reads and access checks of a :class:`~crmcore.storage.uow.UnitOfWork` (see
    the module)."""

    def _row_to_record(self, entity: EntityType, row: Mapping[Any, Any], *, full: bool = False) -> Record:
        """The record of *row*, without the fields hidden from the actor (unless *full*, for
        the unit of work's own bookkeeping)."""
        hidden = frozenset() if full or self.actor.is_system else self.hidden_fields(entity.name)
        key = (entity.name, hidden)
        plan = self._read_plans.get(key)
        if plan is None:  # (name, type, column) in field order; no type: the value is read as it is
            plan = [(n, None, n) for n in ("id", "version", "created_at", "updated_at", "created_by", "updated_by")]
            plan.extend(
                (f.name, None if type(f.type).from_db is FieldType.from_db else f.type, f.column)
                for f in entity.fields if f.name not in hidden
            )
            self._read_plans[key] = plan
        values: dict[str, Any] = {
            name: row[column] if kind is None else kind.from_db(row, column) for name, kind, column in plan
        }
        if hidden:
            return Record(entity.name, values)
        return _Issued.of(entity.name, values, self._origin)

    def _select_one(self, entity: EntityType, record_id: int, *, lock: bool = False, action: str | None = None) -> Record:
        """The full record (every field) read from its row; with *action*, only if the actor
        may read it. The read by primary key is compiled once per unit (and actor) and run on
        the driver: every single write of a record the unit did not issue makes it.

        :raises NotFoundError: when there is no such row, or the actor may not read it (the
            same error, so a hidden record is not revealed).
        """
        def build() -> sa.Select[Any]:
            table = self.registry.table(entity.name)
            statement = sa.select(table).where(table.c.id == sa.bindparam("b_id", required=False))
            if action is not None:
                statement = statement.where(self.read_filter(entity.name, table))
            return statement.with_for_update() if lock else statement

        viewer = (self.actor.is_system, self.actor.user_id) if action is not None else None
        statement = self._driver(("one", entity.name, action, lock, viewer), build)
        rows = statement.rows(self, {"b_id": record_id}, entity=entity.name, id=record_id)
        if not rows:
            raise NotFoundError(f"{entity.name} {record_id} not found", entity=entity.name, id=record_id)
        return self._row_to_record(entity, rows[0], full=True)

    def get(self, entity: str, id: int) -> Record:
        """The record of *entity* with *id*, if the actor may read it.

        The id of a record merged into another (a tombstone, see :mod:`crmcore.merge`) gives
        the record it was merged into.

        :raises NotFoundError: if there is none, or the actor may not see it (the two are not
            told apart, so a hidden record is not revealed).
        """
        record_id = _as_id(entity, id)
        try:
            return self._visible(self._select_one(self.registry.entity(entity), record_id, action="read"))
        except NotFoundError:
            from crmcore.merge.service import merged_into

            into = merged_into(self, entity, record_id)  # type: ignore[arg-type]
            if into is None or into == record_id:
                raise
            return self.get(entity, into)

    def get_many(self, entity: str, ids: Iterable[int]) -> list[Record]:
        """The records of *entity* with *ids* (one query), in id order; missing ids are skipped."""
        etype = self.registry.entity(entity)
        table = self.registry.table(entity)
        wanted = sorted({_as_id(entity, i) for i in ids})
        records: list[Record] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            statement = sa.select(table).where(table.c.id.in_(chunk), self.read_filter(entity, table)).order_by(table.c.id)
            rows = self._execute(statement).mappings()
            records.extend(self._row_to_record(etype, row) for row in rows)
        return records

    def all(self, entity: str, *, limit: int | None = None) -> list[Record]:
        """Every record of *entity* in id order (up to *limit*); use queries for anything larger."""
        etype = self.registry.entity(entity)
        table = self.registry.table(entity)
        statement = sa.select(table).where(self.read_filter(entity, table)).order_by(table.c.id)
        if limit is not None:
            statement = statement.limit(limit)
        return [self._row_to_record(etype, row) for row in self._execute(statement).mappings()]

    @property
    def access(self) -> AccessContext:
        """The actor's roles, groups and profiles, read once per unit of work (and again after
        the unit itself changes roles, assignments or groups)."""
        if self._access is None:
            self._access = self.crm.access.context(self.connection, self.actor)
        return self._access

    @contextlib.contextmanager
    def acting_as(self, actor: Actor) -> Iterator[Self]:
        """Do a block of this unit's work as *actor*, in the same transaction, then act as before.

        The rule engine runs its actions as the system actor inside the user's unit of work
        (rules are the deployment's automation, not the user's own writes).
        """
        saved = (self.actor, self._access, self._hidden, self._scope)
        self.actor, self._access, self._hidden, self._scope = actor, None, {}, None
        try:
            yield self
        finally:
            self.actor, self._access, self._hidden, self._scope = saved

    @contextlib.contextmanager
    def system_scope(self, reason: str) -> Iterator[Self]:
        """Do a block of this unit's work as the system actor, on behalf of the acting user,
        for *reason*: the side effects a hook must make with more rights than the user holds
        (a ticket's survey sent when the user closes it, say).

        It is :meth:`acting_as` the system actor, audited: every audit entry written in the
        block has the system as its actor (``actor_id`` ``NULL``) and says for whom and why
        (:attr:`AuditEntry.on_behalf_of`, :attr:`AuditEntry.reason`; in the audit table, the
        ``"@scope"`` entry of ``changes``). Scopes nest: an inner one keeps the user of the
        outer one and gives its own reason.

        :raises ValidationError: when *reason* is empty.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError(f"system_scope needs a reason naming why the system acts, got {reason!r}")
        user_id = self._scope["on_behalf_of"] if self._scope is not None else self.actor.user_id
        scope = {"on_behalf_of": user_id, "reason": reason.strip()}
        with self.acting_as(Actor.system()):
            self._scope = scope
            yield self

    def _security_changed(self, entity: str) -> None:
        if entity in _SECURITY_ENTITIES:
            self._access = None
            self._hidden.clear()
            self._statements.clear()

    def predicate(self, entity: str, action: str = "read") -> Predicate:
        """The one access predicate of (actor, *entity*, *action*)."""
        return self.crm.access.predicate(self.access, entity, action)

    def read_filter(self, entity: str, table: sa.Table | None = None) -> sa.ColumnElement[bool]:
        """The SQL condition every read of *entity* carries (``true`` for the system actor)."""
        if self.actor.is_system:
            return sa.true()
        return self.predicate(entity, "read").sql(table if table is not None else self.registry.table(entity))

    def hidden_fields(self, entity: str) -> frozenset[str]:
        """The fields of *entity* hidden from the actor by its profiles."""
        if self.actor.is_system:
            return frozenset()
        if entity not in self._hidden:
            self._hidden[entity] = self.crm.access.hidden_fields(self.access, entity)
        return self._hidden[entity]

    def _visible(self, record: Record) -> Record:
        hidden = self.hidden_fields(record.entity)
        if not hidden:
            return record
        return Record(record.entity, {k: v for k, v in record.values.items() if k not in hidden})

    def can(self, entity: str, action: str) -> bool:
        """Does a profile of the actor grant *action* on *entity*?"""
        return self.crm.access.privilege(self.access, entity, action)[0]

    def require(self, entity: str, action: str) -> None:
        """Raise :class:`PermissionDeniedError` unless a profile grants *action* on *entity*
        (plugins check their own actions, such as ``helpdesk.ticket.close``, with it)."""
        if not self.actor.is_system:
            self.crm.access.require(self.access, entity, action)

    def explain(self, record: Record, action: str = "read", *, user: Actor | None = None) -> Decision:
        """Whether the actor (or *user*) may *action* *record*, and the chain of rules behind
        it, decided on the record's row in the database (not on *record*'s values).

        About a record the actor may not read, and about another *user*'s access, only an
        administrator answers: the actor needs the ``security.explain`` privilege on the
        entity type (see :data:`crmcore.security.model.EXPLAIN`).

        :raises NotFoundError: when the record does not exist, or the actor may not read it
            and lacks ``security.explain`` (the same error).
        :raises PermissionDeniedError: when *user* is another user and the actor lacks
            ``security.explain``.
        """
        etype = self.registry.entity(record.entity)
        other = user is not None and (user.is_system, user.user_id) != (self.actor.is_system, self.actor.user_id)
        if other:
            self.require(etype.name, EXPLAIN)
        full = self._select_one(etype, _as_id(etype.name, record.id))
        columns = _columns(etype, full)
        if not (other or self.actor.is_system or self.can(etype.name, EXPLAIN)
                or self.crm.access.allows(self.connection, self.access, etype.name, columns, "read")):
            raise NotFoundError(f"{etype.name} {full.id} not found", entity=etype.name, id=full.id)
        context = self.crm.access.context(self.connection, user) if other and user is not None else self.access
        return self.crm.access.explain(self.connection, context, etype.name, columns, action)

    def allows_values(self, entity: str, values: Mapping[str, Any], action: str = "read") -> bool:
        """Whether the actor may *action* a record of *entity* whose values are *values*,
        without reading any record: for values that no longer stand in a row, such as a
        deleted record's last state in the audit trail (was it the actor's to see?). A record
        that exists is checked with :meth:`check_access`, on its row.

        :param values: ``{field: value}`` (parsed values; missing fields count as empty).
        """
        if self.actor.is_system:
            return True
        if not self.can(entity, action):
            return False
        etype = self.registry.entity(entity)
        columns = _columns(etype, Record(entity, {"id": values.get("id"), **values}))
        return self.crm.access.allows(self.connection, self.access, entity, columns, action)

    def check_access(self, record: Record, action: str) -> None:
        """Raise unless the actor may *action* *record*, as its row in the database stands (a
        record this unit did not issue is read again): :class:`NotFoundError` if the actor may
        not even read it (or it does not exist), :class:`PermissionDeniedError` (with the
        reasons) otherwise."""
        if self.actor.is_system:
            return
        self.require(record.entity, action)
        etype = self.registry.entity(record.entity)
        if not _issued_by(record, self._origin):
            record = self._select_one(etype, _as_id(etype.name, record.id))
        columns = _columns(etype, record)
        if self.crm.access.allows(self.connection, self.access, etype.name, columns, action):
            return
        if not self.crm.access.allows(self.connection, self.access, etype.name, columns, "read"):
            raise NotFoundError(f"{etype.name} {record.id} not found", entity=etype.name, id=record.id)
        decision = self.crm.access.explain(self.connection, self.access, etype.name, columns, action)
        raise PermissionDeniedError(
            f"{self.actor.username} may not {action} {etype.name} {record.id}: {decision.chain[-1]}",
            reasons=list(decision.chain),
        )

    def _check_writable(self, entity: EntityType, names: Iterable[str]) -> None:
        if self.actor.is_system:
            return
        names = list(names)
        self.crm.access.check_writable(self.access, entity.name, [n for n in names if entity.has_field(n)])
        for name in names:
            if entity.has_field(name) and entity.field(name).read_only:  # unknown: validation says so
                raise PermissionDeniedError(
                    f"{entity.name}.{name} is read-only; it is set by crmcore or its workflow",
                    field=name, reasons=[f"field {name!r} is declared read-only"],
                )

    def _reference_names(self, entity: EntityType) -> frozenset[str]:
        found = self._references.get(entity.name)
        if found is None:
            found = self._references[entity.name] = frozenset(f.name for f in entity.fields if isinstance(f.type, Reference))
        return found

    def _check_references(self, entity: EntityType, values: Mapping[str, Any]) -> None:
        if self._reference_names(entity).isdisjoint(values):
            return
        errors = self.reference_errors(entity, [values]).get(0)
        if errors:
            raise ReferenceError(errors, entity=entity.name)

    def reference_errors(
        self, entity: EntityType, rows: Sequence[Mapping[str, Any]], *, pending: Mapping[str, Iterable[int]] | None = None,
    ) -> dict[int, dict[str, list[str]]]:
        """Check the references of many rows at once: one query per reference field, with the
        target entity's read filter.

        A record the actor may not read is refused exactly like a missing one. References to
        entity types declared ``referable_by_all`` (users, teams, roles, groups, and the
        configuration plugins declare so) are checked for existence only: every actor names
        them, to give a record an owner say, as :func:`crmcore.security.admin.find_by_name`
        resolves them.

        :param rows: ``{field: parsed value}`` mappings (only the fields present are checked).
        :param pending: ``{entity: ids}`` of records about to be inserted with these rows, which
            count as existing.
        :returns: ``{row index: {field: [message]}}`` for the rows naming a missing (or
            unreadable) record.
        """
        result: dict[int, dict[str, list[str]]] = {}
        for field in entity.fields:
            if not isinstance(field.type, Reference):
                continue
            name = field.name
            wanted = {value for row in rows if (value := row.get(name)) is not None}
            if not wanted:
                continue
            target_name = field.type.entity
            target = self.registry.table(target_name)
            found = set(pending.get(target_name, ())) & wanted if pending else set()
            ordered = sorted(wanted - found)
            open_target = self.registry.entity(target_name).referable_by_all
            readable = sa.true() if open_target else self.read_filter(target_name, target)
            for start in range(0, len(ordered), 1000):
                chunk = ordered[start:start + 1000]
                found.update(r[0] for r in self._execute(sa.select(target.c.id).where(target.c.id.in_(chunk), readable)))
            if len(found) == len(wanted):
                continue
            for index, row in enumerate(rows):
                value = row.get(name)
                if value is not None and value not in found:
                    result.setdefault(index, {})[name] = [missing_reference(target_name, value)]
        return result

    def _to_row(self, entity: EntityType, values: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, value in values.items():
            field = entity.field(name)
            row.update(field.type.to_db(value, field.column))
        return row


_SECURITY_ENTITIES = frozenset({"role", "group", "role_assignment", "group_member"})


def _columns(etype: EntityType, record: Record) -> dict[str, Any]:
    """A record's values keyed by column, as access predicates see a row."""
    values = {name: record.values.get(name) for name in ("id", "version", "created_at", "updated_at", "created_by", "updated_by")}
    for field in etype.fields:
        values[field.column] = record.values.get(field.name)
    return values
