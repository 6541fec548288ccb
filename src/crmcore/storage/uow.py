"""The unit of work: one transaction, one actor.

``with crm.unit_of_work(actor) as uow:`` opens a connection and a transaction. Records are
created, read, updated and deleted by entity name and handed out as immutable
:class:`~crmcore.records.Record` values. Leaving the block without :meth:`UnitOfWork.commit`
rolls everything back and drops the queued signals; any exception, in crmcore, in a hook or in
a plugin, rolls the whole unit back. Signals go out only after a successful commit. Each
writing call (create, update, move_many, delete, tag, tag_many, untag) is all or nothing: when
it raises, its own writes are undone and the caller may go on with the unit, on SQLite and
PostgreSQL alike. The statements a move repeats for every record (its UPDATE, the tags rules
add) are compiled once per unit and run straight on the driver; batches (:meth:`UnitOfWork.move_many`,
:meth:`UnitOfWork.tag_many`) write set-based and call the batch forms of the record hooks.

Every row carries a ``version``. An update names the version it read (the record's) and loses
with a :class:`~crmcore.errors.ConflictError` if someone else changed the row in between. On
PostgreSQL a second writer of a row waits for the first one's commit, then conflicts. SQLite
has one writer at a time: a unit that read before another unit committed a write conflicts when
it writes, whatever the records; open a new unit and retry.

Nothing trusts a record handed in by a caller. A record this unit issued (read or wrote, with
every field) holds its row's values at its version, and the write matches that version; any
other record (built by hand, kept from another unit, with fields hidden) is read from its row
first (one read by key on the driver; one per 500 records in a batch). Access, diff, hooks and
audit then use the row. A record the actor may not read is refused exactly like a missing one
(:class:`~crmcore.errors.NotFoundError`, the same message); one read at another version is a
:class:`~crmcore.errors.ConflictError`. Side effects that need more rights than the actor holds
run in :meth:`UnitOfWork.system_scope`, audited as the system's on the actor's behalf.

The unit keeps the transaction, the reads, the access checks and the single-record writes; the
work of its batch moves (:mod:`crmcore.storage.batch`), tags (:mod:`crmcore.storage.tagging`)
and audit trail (:mod:`crmcore.storage.audit`) lives in modules of its own, called through its
methods.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import (
    ConflictError,
    CrmError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    ReferenceError,
    TransitionError,
    ValidationError,
)
from crmcore.fields import FieldType, Reference
from crmcore.records import Record
from crmcore.security.model import EXPLAIN
from crmcore.signals import CREATED, DELETED, UPDATED, RecordEvent
from crmcore.storage import audit as _audit
from crmcore.storage import batch as _batch
from crmcore.storage import record_hooks as _record_hooks
from crmcore.storage import tagging as _tagging
from crmcore.storage import writes_where as _writes_where
from crmcore.storage.audit import AUDIT_COLUMNS, AuditEntry
from crmcore.storage.bulk import BulkInsert
from crmcore.storage.engine import lost_race
from crmcore.storage.operations import Change, _as_id, _atomic, _Issued, _issued_by, _now
from crmcore.storage.prepared import _Prepared
from crmcore.storage.raw import RawConnection
from crmcore.validation import validate

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.query import Query, Select
    from crmcore.registry import EntityType
    from crmcore.security import AccessContext, Decision, Predicate

__all__ = ["AuditEntry", "Change", "UnitOfWork"]

log = logging.getLogger(__name__)


class UnitOfWork:
    """One transaction on behalf of one actor. Create it with :meth:`crmcore.Crm.unit_of_work`."""

    def __init__(self, crm: Crm, actor: Actor) -> None:
        self.crm = crm
        self.actor = actor
        self.registry = crm.registry
        self.changes: list[Change] = []
        self._hook = crm.hook
        self._signals: list[tuple[str, str, dict[str, Any]]] = []
        self._audit: list[tuple[Any, ...]] = []  # entries to write, values in the order of AUDIT_COLUMNS
        self._connection: sa.Connection | None = None
        self._transaction: sa.RootTransaction | None = None
        self._done = False
        self._depth = 0  # nesting of writing calls (see _atomic)
        self._flushes = 0
        self._dump_plans: dict[str, tuple[dict[str, Any], list[tuple[str, Any]]]] = {}  # see audit.dump_plan
        self._fragment_plans: dict[str, dict[str | None, Callable[[Any], str]]] = {}  # see audit.changes_texts
        self._access: AccessContext | None = None
        self._hidden: dict[str, frozenset[str]] = {}
        self._statements: dict[tuple[Any, ...], Any] = {}  # see _statement
        self._references: dict[str, frozenset[str]] = {}  # see _check_references
        self._origin = object()  # marks the records this unit issues (see operations._Issued)
        self._read_plans: dict[tuple[str, frozenset[str]], Any] = {}  # see _row_to_record
        self._scope: dict[str, Any] | None = None  # see system_scope

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> UnitOfWork:
        self._connection = self.crm.connect()
        self._transaction = self._connection.begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self._done:
                self.rollback()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _driver_sql(self, statement: str) -> None:
        """Run a transaction-control statement straight on the driver (savepoints are on every
        write path, so they skip SQLAlchemy's statement machinery)."""
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    @property
    def connection(self) -> sa.Connection:
        """The unit's connection: internal to crmcore. Deprecated for plugins, which read and
        write records through :meth:`get`, :meth:`query`, :meth:`select`, :meth:`update_where`
        and :meth:`delete_where`, and their own non-record tables through :meth:`raw`."""
        if self._connection is None or self._done:
            raise CrmError("this unit of work is closed; open a new one with crm.unit_of_work()")
        return self._connection

    def commit(self) -> None:
        """Write pending audit entries, call ``crm_before_commit``, COMMIT, then send signals.

        :raises PluginError: after the commit, if a signal receiver raised (the data stay
            committed; every receiver still ran).
        """
        connection = self.connection
        try:
            self.flush()
            self._hook.crm_before_commit(uow=self)
            self.flush()
            assert self._transaction is not None
            self._transaction.commit()
        except sa.exc.OperationalError as exc:
            self.rollback()
            raise self._translate(exc) from exc
        except BaseException:
            self.rollback()
            raise
        self._done = True
        del connection
        self._send_signals()

    def rollback(self) -> None:
        """Undo everything and drop the queued signals and audit entries."""
        self._signals.clear()
        self._audit.clear()
        if self._transaction is not None and self._transaction.is_active:
            self._transaction.rollback()
        self._done = True

    def flush(self) -> None:
        """Write the audit entries queued so far (done before every read of the trail)."""
        if self._audit:
            BulkInsert(self.connection, self.crm.core_tables["audit"], AUDIT_COLUMNS).execute(self._audit)
            self._audit = []
            self._flushes += 1

    def announce(self, name: str, sender: Any, **kwargs: Any) -> None:
        """Queue signal *name* to be sent after the commit (dropped on rollback)."""
        self._signals.append((name, sender, kwargs))

    def announce_many(self, name: str, sender: Any, events: Callable[[], Iterable[dict[str, Any]]]) -> None:
        """Queue signal *name* once for each set of keyword arguments *events()* gives, to be
        sent after the commit (dropped on rollback): :meth:`announce` for a batch. *events* is
        called only if the signal has receivers for *sender*, so a batch nobody listens to
        builds no event at all.
        """
        self._signals.append((name, sender, {_MANY: events}))

    def announce_created(self, etype: EntityType, ids: Sequence[int]) -> None:
        """Queue ``record-created`` for each of *ids*, records of *etype* created in bulk.

        The bulk import calls it once per batch instead of holding a million events until the
        commit: after the commit, if the signal has receivers for the entity type, the records
        are read back in batches and each receiver gets the same :class:`RecordEvent` a single
        :meth:`create` sends.
        """
        if ids:
            self._signals.append((CREATED, etype.name, {_READ_BACK: (etype, ids)}))

    def _send_signals(self) -> None:
        failures = []
        queued, self._signals = self._signals, []
        reader: sa.Connection | None = None
        found: dict[tuple[str, Any], list[Any]] = {}  # receivers by signal and sender, looked up once
        try:
            for name, sender, kwargs in queued:
                try:
                    receivers = found[(name, sender)]
                except KeyError:
                    receivers = found[(name, sender)] = list(self.crm.signals.signal(name).receivers_for(sender))
                except TypeError:  # a sender that cannot be a key
                    receivers = list(self.crm.signals.signal(name).receivers_for(sender))
                if not receivers:
                    continue
                sends: Iterable[dict[str, Any]] = [kwargs]
                if _READ_BACK in kwargs:
                    reader = reader or self.crm.connect()
                    sends = self._created_events(reader, *kwargs[_READ_BACK])
                elif _MANY in kwargs:
                    sends = kwargs[_MANY]()
                for each in sends:
                    for receiver in receivers:
                        try:
                            receiver(sender, **each)
                        except Exception as exc:
                            log.error("receiver %r of %s raised %s", receiver, name, type(exc).__name__)
                            failures.append((receiver, name, exc))
        finally:
            if reader is not None:
                reader.close()
        if failures:
            receiver, name, error = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise PluginError(
                f"receiver {getattr(receiver, '__qualname__', receiver)!r} of signal {name!r} raised "
                f"{type(error).__name__}: {error}{more}; the unit of work was already committed"
            ) from error

    def _created_events(self, connection: sa.Connection, etype: EntityType, ids: Sequence[int]) -> Iterator[dict[str, Any]]:
        table = self.registry.table(etype.name)
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            rows = connection.execute(sa.select(table).where(table.c.id.in_(chunk))).mappings()
            records = {row["id"]: self._row_to_record(etype, row) for row in rows}
            for record_id in chunk:
                if record_id in records:  # gone only if deleted later in the same unit
                    yield {"event": RecordEvent("created", etype.name, records[record_id], self.actor, {})}

    def _translate(self, exc: sa.exc.OperationalError, *, entity: str | None = None, id: int | None = None) -> CrmError:
        """Turn a lost race into a :class:`ConflictError` (another transaction wrote first) or
        a :class:`~crmcore.errors.BusyError` (a lock was held longer than the busy timeout),
        naming the record being written when known (see :func:`crmcore.storage.engine.lost_race`)."""
        return lost_race(exc, timeout=self.crm.settings.busy_timeout, entity=entity, id=id)

    def _execute(self, statement: Any, params: Any = None) -> sa.CursorResult[*tuple[Any, ...]]:
        try:
            return self.connection.execute(statement, params)
        except sa.exc.OperationalError as exc:
            raise self._translate(exc) from exc

    # -- reading -------------------------------------------------------------------------------
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

        :raises NotFoundError: if there is none, or the actor may not see it (the two are not
            told apart, so a hidden record is not revealed).
        """
        return self._visible(self._select_one(self.registry.entity(entity), _as_id(entity, id), action="read"))

    # -- access ---------------------------------------------------------------------------------
    @property
    def access(self) -> AccessContext:
        """The actor's roles, groups and profiles, read once per unit of work (and again after
        the unit itself changes roles, assignments or groups)."""
        if self._access is None:
            self._access = self.crm.access.context(self.connection, self.actor)
        return self._access

    @contextlib.contextmanager
    def acting_as(self, actor: Actor) -> Iterator[UnitOfWork]:
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
    def system_scope(self, reason: str) -> Iterator[UnitOfWork]:
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

    def _statement(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """The statement for *key*, built once per unit of work with its values as bound
        parameters: single-record reads and writes repeated thousands of times (moves, say) then
        skip SQLAlchemy's expression building and cache-key computation. Keys of statements that
        carry an access filter name the actor; a change of roles or groups forgets them."""
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = build()
        return statement

    def _driver(self, key: tuple[Any, ...], build: Callable[[], Any]) -> _Prepared:
        """The statement for *key* (built by *build*, with plain bound parameters only)
        compiled once per unit of work for the dialect, to run straight on the driver: the
        statements a move runs for each record cost several times the database's work when
        SQLAlchemy runs them."""
        key = ("driver", *key)
        prepared = self._statements.get(key)
        if prepared is None:
            prepared = self._statements[key] = _Prepared.of(build(), self.connection.dialect)
        return prepared  # type: ignore[no-any-return]

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

    # -- writing -------------------------------------------------------------------------------
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
        the entity types naming people and their groupings (:data:`OPEN_TARGETS`: users,
        teams, roles, groups) are checked for existence only: every actor names them, to give
        a record an owner say, as :func:`crmcore.security.admin.find_by_name` resolves them.

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
            readable = sa.true() if target_name in OPEN_TARGETS else self.read_filter(target_name, target)
            for start in range(0, len(ordered), 1000):
                chunk = ordered[start:start + 1000]
                found.update(r[0] for r in self._execute(sa.select(target.c.id).where(target.c.id.in_(chunk), readable)))
            if len(found) == len(wanted):
                continue
            for index, row in enumerate(rows):
                value = row.get(name)
                if value is not None and value not in found:
                    result.setdefault(index, {})[name] = [f"no {target_name} with id {value}; create it first or correct the id"]
        return result

    def _to_row(self, entity: EntityType, values: Mapping[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, value in values.items():
            field = entity.field(name)
            row.update(field.type.to_db(value, field.column))
        return row

    @_atomic
    def create(self, entity: str, data: Mapping[str, Any] | None = None, /, **values: Any) -> Record:
        """Create a record of *entity* from *data* and/or keyword values.

        Ownable records are owned by the acting user unless ``owner_id`` is given.

        :returns: the new record.
        :raises ValidationError: naming each field that does not fit.
        :raises ReferenceError: when a reference names a missing record.
        """
        etype = self.registry.entity(entity)
        given = {**(data or {}), **values}
        self.require(entity, "create")
        self._check_writable(etype, given)
        parsed = self._prepare_create(etype, [validate(etype, given)])[0]
        self._check_references(etype, parsed)
        now = _now()
        system = {"version": 1, "created_at": now, "updated_at": now, "created_by": self.actor.user_id, "updated_by": self.actor.user_id}
        row = {**self._to_row(etype, parsed), **system}
        table = self.registry.table(entity)
        key = self._insert(etype, table, row).inserted_primary_key
        assert key is not None  # an INSERT of one row always has its key
        record_id = key[0]
        values_out = {"id": record_id, **system}
        for field in etype.fields:
            values_out[field.name] = parsed.get(field.name)
        record = _Issued.of(entity, values_out, self._origin)
        self._created(etype, [record])
        self._security_changed(entity)
        return self._visible(record)

    # The steps of a create, shared with the batch writes (the bulk import, the lead
    # conversion), which run them once per batch around their batched INSERT: validate ->
    # _prepare_create -> reference check -> INSERT -> _created (audit, changes, after hooks) ->
    # record-created signals.
    def _prepare_create(self, etype: EntityType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Default the owner of each of *items* (validated values of new records) to the acting
        user, then run the ``crm_before_create`` hooks once for the batch and merge (and
        validate) their changes into the items, which are returned."""
        if etype.ownable and self.actor.user_id is not None:
            for parsed in items:
                if parsed.get("owner_id") is None:
                    parsed["owner_id"] = self.actor.user_id
        _record_hooks.before_create(self, etype, items)
        return items

    def _created(self, etype: EntityType, records: list[Record], *, announce: bool = True) -> None:
        """Record the changes and audit entries of the new *records*, queue their
        ``record-created`` (unless the caller announces in bulk) and run the
        ``crm_after_create`` hooks once for the batch."""
        after_write = self._after_write
        for record in records:
            after_write("created", etype, record, None, {}, announce=announce)
        _record_hooks.after_create(self, etype, records)

    def _insert(self, etype: EntityType, table: sa.Table, row: dict[str, Any]) -> sa.CursorResult[Any]:
        with self._refusals(etype, row):
            return self.connection.execute(sa.insert(table), row)

    @contextlib.contextmanager
    def _refusals(self, etype: EntityType, row: Mapping[str, Any] | None = None) -> Iterator[None]:
        """Turn the database's refusal of a write of *etype* records into crmcore's errors: a
        broken constraint into a :class:`ValidationError` (naming the unique field and *row*'s
        value when it can), a lock or other operational failure into what :meth:`_translate`
        makes of it."""
        try:
            yield
        except sa.exc.IntegrityError as exc:
            raise self._integrity(etype, exc, row or {}) from exc
        except sa.exc.OperationalError as exc:
            raise self._translate(exc) from exc

    def _integrity(self, etype: EntityType, exc: sa.exc.IntegrityError, row: Mapping[str, Any]) -> CrmError:
        text = str(exc.orig).lower()
        for field in etype.fields:
            if field.unique and field.column.lower() in text:
                return ValidationError(
                    {field.name: [f"{row.get(field.column)!r} is already used by another {etype.name}"]},
                    entity=etype.name,
                )
        return ValidationError(f"the database refused the {etype.name}: {str(exc.orig).splitlines()[0]}", entity=etype.name)

    @_atomic
    def update(
        self, target: Record | str, id: int | None = None, /, data: Mapping[str, Any] | None = None, **changes: Any
    ) -> Record:
        """Update a record: ``uow.update(record, amount=...)`` or ``uow.update("lead", 7, {...})``.

        Given a record, the update is made against the version it carries; given an id, against
        the version read now.

        :returns: the updated record (the same one if nothing changed).
        :raises ConflictError: when the row changed since that version (or vanished).
        """
        if isinstance(target, Record):
            if isinstance(id, Mapping) and data is None:  # uow.update(record, {...})
                id, data = None, id
            if id is not None:
                raise TypeError(f"update(record, ...) takes the changes, not an id; got {id!r}")
            entity, record_id, expected = target.entity, target.id, target.version
        else:
            if id is None:
                raise TypeError("update(entity, id, ...) needs the record's id")
            entity, record_id, expected = target, _as_id(target, id), None
        etype = self.registry.entity(entity)
        given = {**(data or {}), **changes}
        self.require(entity, "update")
        self._check_writable(etype, given)
        parsed = validate(etype, given, partial=True)
        # A record this unit issued holds its row's values at its version: the UPDATE below
        # matches that version, so a row changed or deleted meanwhile is still a conflict, and
        # the read is saved. Any other target (built by hand, from another unit, with fields
        # hidden) is read from the database first: access, diff and audit use the row.
        trusted = isinstance(target, Record) and _issued_by(target, self._origin)
        old = target if trusted and isinstance(target, Record) else self._current(etype, record_id, expected)
        self.check_access(old, "update")
        values = old.values
        diff = {k: v for k, v in parsed.items() if values.get(k) != v}
        if diff:  # a batch of one, through the batch writes' steps
            diff = _record_hooks.before_update(self, etype, [(old, diff)])[0][1]
        if not diff:
            return self._visible(self._current(etype, record_id, expected) if trusted else old)
        return self._visible(_batch.write_updates(self, etype, [(old, diff)])[0])

    def _current(self, etype: EntityType, record_id: int, expected: int | None) -> Record:
        """The full record read from its row, if the actor may read it; it must be at version
        *expected* (when given).

        :raises NotFoundError: when it does not exist or the actor may not read it (the same
            error, whatever version the caller named).
        :raises ConflictError: when it changed since that version.
        """
        current = self._select_one(etype, record_id, action="read")
        if expected is not None and current.version != expected:
            raise self._stale(etype.name, record_id, expected, current.version)
        return current

    def move(self, target: Record | str, stage_or_id: Any, stage: str | None = None, /, **changes: Any) -> Record:
        """Move a staged record to another stage of its pipeline.

        ``uow.move(record, "rfp_received")`` or ``uow.move("opportunity", 7, "won",
        close_date=today)``: extra changes are applied in the same update. The pipeline's
        transitions, guards, permissions, required and locked fields apply.

        :raises TransitionError: for an illegal move (naming the record, its stage, the target
            and the allowed targets) or a failing guard (naming the condition and the values).
        """
        # the pipeline (and so the stage field) is the row's: a record the unit did not issue
        # is read first (and update then trusts what was read)
        if isinstance(target, Record):
            wanted = stage_or_id
            record = target if _issued_by(target, self._origin) else self._current(
                self.registry.entity(target.entity), target.id, target.version)
        else:
            record, wanted = self._current(self.registry.entity(target), _as_id(target, stage_or_id), None), stage
        field = self._stage_field(record.entity, record.values)
        return self.update(record, data={field: wanted, **changes})

    def _stage_field(self, entity: str, values: Mapping[str, Any]) -> str:
        workflow = self.crm.workflow
        if not workflow.staged(entity):
            raise TransitionError(f"{entity} records have no pipeline, so they do not move between stages")
        return workflow.pipeline_of(entity, values).field

    @_atomic
    def move_many(self, records: Iterable[Record], stage: str) -> list[Record]:
        """Move many records of one entity type to *stage*, set-based.

        Each record gets the checks of :meth:`move` (permissions, transition, guards, required
        and locked fields, approvals) with the same error messages; the first record of the
        batch (in the given order) that may not move is named and the whole batch is refused.
        The hooks get the batch: ``crm_before_update_many``, ``crm_before_move_many``,
        ``crm_after_update_many`` and ``crm_records_moved``, while plugins implementing only
        the per-record hooks are called once per record. The UPDATE statements, the reads and
        the audit entries are set-based, versions are checked. A full record (as read, nothing
        hidden from the actor) stands for its row at its version, as in :meth:`update`: the
        UPDATE matches that version, so a row changed or deleted meanwhile is a conflict.

        :returns: the records after the move, in the given order (records already in *stage*
            are returned unchanged).
        :raises TransitionError: for an illegal move or a failing guard, naming the record.
        :raises ConflictError: when a record changed since it was read, or was deleted.
        """
        return _batch.move_many(self, records, stage)

    def _quoted(self, table: sa.Table) -> tuple[Callable[[str], str], str]:
        """The dialect's quoting of names, and *table*'s quoted name, for statements written
        for the driver."""
        preparer = self.connection.dialect.identifier_preparer
        return preparer.quote, preparer.format_table(table)

    def _marks(self, count: int) -> str:
        """*count* parameter marks of the driver, separated by commas."""
        mark = "?" if self.connection.dialect.paramstyle == "qmark" else "%s"
        return ", ".join([mark] * count)

    def _plain(
        self, statement: str, params: Any, *, fetch: bool = False, many: bool = False, entity: str | None = None, id: int | None = None,
        described: bool = False,
    ) -> Any:
        """Run *statement*, written for the driver (names quoted by the dialect, marks from
        :meth:`_marks`), with positional *params* (for each of them with *many*).

        :returns: the rows read (*fetch*; with *described*, the cursor's description and the
            rows), else the number of rows changed.
        :raises ConflictError: for a lost race; other driver errors as SQLAlchemy's.
        """
        connection = self.connection
        dialect = connection.dialect
        cursor = connection.connection.cursor()
        try:
            try:
                if many:
                    cursor.executemany(statement, params)
                else:
                    cursor.execute(statement, params)
            except dialect.loaded_dbapi.Error as exc:
                error = sa.exc.DBAPIError.instance(statement, params, exc, dialect.loaded_dbapi.Error, dialect=dialect)
                if isinstance(error, sa.exc.OperationalError):
                    raise self._translate(error, entity=entity, id=id) from exc
                raise error from exc
            if described:
                return cursor.description, cursor.fetchall()
            return cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()

    def _conflict(self, etype: EntityType, expected: Sequence[tuple[int, int]], at: dt.datetime) -> ConflictError:
        """The conflict of an UPDATE of ``(id, version)`` pairs *expected* (made at *at*) that
        changed fewer rows: the first record deleted, or at a version this update did not give
        it (a row it changed is one version on, written at *at* by this actor)."""
        table = self.registry.table(etype.name)
        found: dict[int, Any] = {}
        ids = [record_id for record_id, _ in expected]
        for start in range(0, len(ids), 500):
            statement = sa.select(table.c.id, table.c.version, table.c.updated_at, table.c.updated_by).where(
                table.c.id.in_(ids[start:start + 500]))
            found.update((row.id, row) for row in self._execute(statement))
        for record_id, version in expected:
            row = found.get(record_id)
            if row is None:
                return ConflictError(
                    f"{etype.name} {record_id} was deleted by someone else; it cannot be updated",
                    entity=etype.name, id=record_id, expected_version=version,
                )
            if not (row.version == version + 1 and row.updated_at == at and row.updated_by == self.actor.user_id):
                return self._stale(etype.name, record_id, version, row.version)
        return ConflictError(
            f"some of the {len(expected)} {etype.plural.lower()} changed since they were read; read them again and retry",
            entity=etype.name,
        )

    def _stale(self, entity: str, record_id: int, expected: int, current: int | None) -> ConflictError:
        now = f" (it is at version {current})" if current is not None else ""
        return ConflictError(
            f"{entity} {record_id} changed since version {expected} was read{now}; "
            "read it again and reapply the change",
            entity=entity, id=record_id, expected_version=expected,
        )

    @_atomic
    def delete(self, target: Record | str, id: int | None = None, /) -> None:
        """Delete a record.

        References to it follow their ``on_delete``: ``restrict`` refuses with a
        :class:`~crmcore.errors.ReferenceError` naming the referencing records, ``cascade``
        deletes them (audited), ``set_null`` clears the reference.
        """
        if isinstance(target, Record):
            entity, record_id, expected = target.entity, target.id, target.version
        else:
            if id is None:
                raise TypeError("delete(entity, id) needs the record's id")
            entity, record_id, expected = target, _as_id(target, id), None
        etype = self.registry.entity(entity)
        self.require(entity, "delete")
        record = self._select_one(etype, record_id, action="read")
        if expected is not None and record.version != expected:
            raise self._stale(entity, record_id, expected, record.version)
        self.check_access(record, "delete")
        self._delete(etype, record)
        self._security_changed(entity)

    def _delete(self, etype: EntityType, record: Record) -> None:
        _record_hooks.before_delete(self, etype, [record])
        blockers: list[str] = []
        for child, field in self.registry.referencing(etype.name):
            assert isinstance(field.type, Reference)
            table = self.registry.table(child.name)
            column = table.c[field.column]
            ids = [r[0] for r in self._execute(sa.select(table.c.id).where(column == record.id).order_by(table.c.id))]
            if child.name == etype.name and record.id in ids:  # a record referring to itself
                ids.remove(record.id)
            if not ids:
                continue
            if field.type.on_delete == "cascade":
                for child_record in self.get_many(child.name, ids):
                    self._delete(child, child_record)
            elif field.type.on_delete == "set_null":
                for child_record in self.get_many(child.name, ids):
                    self._system_update(child, child_record, {field.name: None})
            else:
                shown = ", ".join(str(i) for i in ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
                blockers.append(f"{child.name} {shown} (field {field.name})")
        if blockers:
            raise ReferenceError(
                f"cannot delete {etype.name} {record.id}: referenced by {'; '.join(blockers)}; "
                "delete or reassign those first",
            )
        self._execute(sa.delete(self.crm.core_tables["tagging"]).where(
            self.crm.core_tables["tagging"].c.entity == etype.name,
            self.crm.core_tables["tagging"].c.record_id == record.id,
        ))
        table = self.registry.table(etype.name)
        result = self._execute(sa.delete(table).where(table.c.id == record.id, table.c.version == record.version))
        if result.rowcount != 1:
            raise self._stale(etype.name, record.id, record.version, None)
        self._after_write("deleted", etype, record, record, {})
        _record_hooks.after_delete(self, etype, [record])

    def _system_update(self, etype: EntityType, record: Record, changes: dict[str, Any]) -> Record:
        table = self.registry.table(etype.name)
        now = _now()
        row = {**self._to_row(etype, changes), "version": record.version + 1, "updated_at": now, "updated_by": self.actor.user_id}
        self._execute(sa.update(table).where(table.c.id == record.id).values(**row))
        new = _Issued.of(etype.name, record.merged(changes, {"version": record.version + 1, "updated_at": now,
                                                             "updated_by": self.actor.user_id}), self._origin)
        self._after_write("updated", etype, new, record, changes)
        return new

    # -- audit and signals ---------------------------------------------------------------------
    def _after_write(
        self, action: str, etype: EntityType, record: Record, old: Record | None, diff: Mapping[str, Any], *, announce: bool = True,
    ) -> None:
        self.changes.append(Change(action, etype.name, record.id))
        changes: dict[str, tuple[Any, Any]] = {}
        values = record.values
        if action == "updated":
            assert old is not None
            changes = {name: (old.values.get(name), value) for name, value in diff.items()}
            if etype.auditable:  # audited at the record's own time stamp
                self.queue_audit(etype, record.id, action, changes, at=values.get("updated_at"))
        elif etype.auditable:
            # a create lists every value it set (at the record's time stamp), a delete every
            # value the record had: dumped in one pass, the hot path of bulk imports
            get = values.get
            pairs = _audit.dump_plan(self, etype)[1]
            if action == "created":
                dumped = {n: [None, v if d is None else d(v)] for n, d in pairs if (v := get(n)) is not None}
                _audit.queue_entry(self, etype, record.id, action, dumped, get("updated_at"))
            else:
                dumped = {n: [v if d is None else d(v), None] for n, d in pairs if (v := get(n)) is not None}
                _audit.queue_entry(self, etype, record.id, action, dumped, None)
        if announce:
            self.announce({"created": CREATED, "updated": UPDATED, "deleted": DELETED}[action], etype.name,
                          event=RecordEvent(action, etype.name, record, self.actor, changes))

    def queue_audit(
        self, etype: EntityType, record_id: int, action: str, changes: Mapping[str, tuple[Any, Any]],
        *, at: dt.datetime | None = None,
    ) -> None:
        """Queue one audit entry; written in bulk before reads of the trail and at commit.

        :param at: when the change happened (default: now).
        """
        _audit.queue_audit(self, etype, record_id, action, changes, at=at)

    # -- timeline ------------------------------------------------------------------------------
    def history(self, entity: str, id: int) -> list[AuditEntry]:
        """The audit trail of one record, oldest first.

        Other actors than the system see the trail of records they may read, without the fields
        hidden from them; the trail of a deleted record is the system actor's.
        """
        return _audit.history(self, entity, id)

    def timeline(self, entity: str, id: int) -> list[AuditEntry]:
        """The history of a record and of the records around it, oldest first.

        Besides the record's own entries, the timeline holds those of every record that refers
        to it (an account's contacts, leads, opportunities, activities, notes, documents, and
        the fields plugins add) and of the records that refer to those (the activities of the
        account's contacts): the 360-degree view, derived from the registry's references.
        """
        return _audit.timeline(self, entity, id)

    # -- tags ----------------------------------------------------------------------------------
    @_atomic
    def tag(self, record: Record, *names: str) -> None:
        """Tag an ownable record with *names*, creating tags that do not exist yet.

        Names are parsed like the tag's ``name`` field (surrounding space goes); the audit entry
        lists the tags actually added.
        """
        _tagging.tag(self, record, *names)

    @_atomic
    def tag_many(self, records: Iterable[Record], *names: str) -> None:
        """Tag many ownable records of one entity type with *names*, set-based: :meth:`tag`
        for each record, with one read of the tags, one of the records' present taggings and
        one insert per 500 records.

        :raises NotFoundError: when a record does not exist (any more).
        """
        _tagging.tag_many(self, records, *names)

    @_atomic
    def untag(self, record: Record, *names: str) -> None:
        """Remove tags *names* from *record* (names it does not carry are ignored); the audit
        entry lists the tags actually removed."""
        _tagging.untag(self, record, *names)

    def tags(self, record: Record) -> list[str]:
        """The names of *record*'s tags, sorted."""
        return _tagging.tags(self, record)

    def tag_counts(self, entity: str | None = None) -> list[tuple[str, int]]:
        """``(tag name, number of tagged records)`` for a tag cloud, most used first."""
        return _tagging.tag_counts(self, entity)

    def tagged(self, entity: str, tag: str) -> list[Record]:
        """The records of *entity* tagged *tag*."""
        return _tagging.tagged(self, entity, tag)

    # -- queries -------------------------------------------------------------------------------
    def query(self, entity: str) -> Query:
        """A :class:`~crmcore.query.Query` over the records of *entity* the actor may read:
        filters, sorting, keyset pages, counts and aggregates (see :mod:`crmcore.query`).

        :raises NotFoundError: for an unknown entity type.
        """
        from crmcore.query import Query

        return Query.for_entity(self, entity)

    def select(self, entity: str, fields: Sequence[str] = ()) -> Select:
        """A set-based read of *fields* of the records of *entity* the actor may read and of
        the records they reference, along dotted paths (``"account_id.name"``): filters,
        sorting, grouping, aggregates, ``exists()``, ``count()``; ``all()`` gives plain dicts
        keyed by the names given. Every entity touched carries its read predicate (a
        referenced record the actor may not read reads as missing: its fields ``None``) and
        its hidden fields are refused (see :mod:`crmcore.query.select`).

        :param fields: fields or dotted paths; default ``id`` and every field the actor sees.
        :returns: a :class:`~crmcore.query.Select`.
        :raises NotFoundError: for an unknown entity type.
        :raises ValidationError: for an unknown field or a path through a non-reference field.
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        from crmcore.query import Select

        return Select.for_entity(self, entity, fields)

    @_atomic
    def update_where(self, entity: str, where: Any, /, *, set: Mapping[str, Any]) -> int:  # noqa: A002 - SQL's word
        """Update every record of *entity* matching *where* that the actor may read: set-based,
        with the checks, hooks (batch and per-record forms), version checks, audit and signals
        of :meth:`update` (see :mod:`crmcore.storage.writes_where`). All or nothing.

        :param where: a condition as :meth:`~crmcore.query.Query.where` takes it, a list of
            them, or ``{field: value}`` equalities (``{}``: every record).
        :param set: the changes, ``{field: value}``.
        :returns: the number of records changed (those already holding the values are not).
        :raises PermissionDeniedError: when the actor may not update the entity or a field,
            or may read but not update a matching record (the first in id order is named;
            nothing is changed).
        :raises ValidationError: for a condition or a value that does not fit.
        :raises ConflictError: when a matching record changed meanwhile.
        """
        return _writes_where.update_where(self, entity, where, set)

    @_atomic
    def delete_where(self, entity: str, where: Any, /) -> int:
        """Delete every record of *entity* matching *where* that the actor may read: set-based,
        with the checks, hooks, reference rules, audit and signals of :meth:`delete`. All or
        nothing.

        :param where: as for :meth:`update_where`.
        :returns: the number of records deleted (those a cascade removes too not counted).
        :raises PermissionDeniedError: when the actor may read but not delete a matching
            record (the first in id order is named; nothing is deleted).
        :raises ReferenceError: when a ``restrict`` reference holds a matching record.
        """
        return _writes_where.delete_where(self, entity, where)

    def raw(self, plugin: str) -> RawConnection:
        """The named raw API of *plugin*: runs its SQLAlchemy Core statements on its own
        non-record tables (``<plugin>_...``) in this transaction, and refuses any statement
        touching the table of an entity type (see :mod:`crmcore.storage.raw`). Plugins use it
        instead of :attr:`connection`, which is internal.

        :raises PluginError: when *plugin* is not enabled.
        """
        return RawConnection(self, plugin)

    def __repr__(self) -> str:
        state = "closed" if self._done else "open"
        return f"<UnitOfWork {state} actor={self.actor.username} changes={len(self.changes)}>"


#: Marks a queued signal whose events are read back after the commit (see announce_created).
_READ_BACK = "__read_back__"
#: Marks a queued signal whose events are made after the commit (see announce_many).
_MANY = "__many__"


_SECURITY_ENTITIES = frozenset({"role", "group", "role_assignment", "group_member"})
#: Entity types whose records every actor may name in a reference (see reference_errors).
OPEN_TARGETS = frozenset({"user", "team", "role", "group"})


def _columns(etype: EntityType, record: Record) -> dict[str, Any]:
    """A record's values keyed by column, as access predicates see a row."""
    values = {name: record.values.get(name) for name in ("id", "version", "created_at", "updated_at", "created_by", "updated_by")}
    for field in etype.fields:
        values[field.column] = record.values.get(field.name)
    return values
