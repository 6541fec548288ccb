"""The unit of work's state and how it runs its statements: through SQLAlchemy, or compiled once per unit and
run straight on the driver, with a lost race or a held lock turned into crmcore's errors.

:class:`UnitState` is the base of :class:`~crmcore.storage.uow.UnitOfWork`: its state (app,
actor, connection, caches), opened and closed by ``with``, and its statement runners.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import (
    ConflictError,
    CrmError,
)
from crmcore.storage.engine import lost_race
from crmcore.storage.operations import Change
from crmcore.storage.prepared import _Prepared
from crmcore.storage.schema_lag import behind_schema

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.registry import EntityType
    from crmcore.security import AccessContext


class UnitState:
    """The state of a :class:`~crmcore.storage.uow.UnitOfWork`: its app, actor, connection and
    caches, and how it runs statements (see the module)."""

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

    @property
    def connection(self) -> sa.Connection:
        """The unit's connection: internal to crmcore. Deprecated for plugins, which read and
        write records through :meth:`get`, :meth:`query`, :meth:`select`, :meth:`update_where`
        and :meth:`delete_where`, and their own non-record tables through :meth:`raw`."""
        if self._connection is None or self._done:
            raise CrmError("this unit of work is closed; open a new one with crm.unit_of_work()")
        return self._connection

    def _driver_sql(self, statement: str) -> None:
        """Run a transaction-control statement straight on the driver (savepoints are on every
        write path, so they skip SQLAlchemy's statement machinery)."""
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    def _translate(
        self, exc: sa.exc.DBAPIError, *, entity: str | None = None, id: int | None = None, started: float | None = None,
    ) -> CrmError:
        """Turn a lost race into a :class:`ConflictError` (another transaction wrote first) or
        a :class:`~crmcore.errors.BusyError` (a lock was held longer than the busy timeout),
        naming the record being written when known (see :func:`crmcore.storage.engine.lost_race`);
        a table or column the database lacks into "run crm db upgrade" (see
        :func:`crmcore.storage.schema_lag.behind_schema`). *started* is the failed statement's
        :func:`time.perf_counter` at its start, which tells a lock SQLite refused at once from one
        it waited for."""
        waited = None if started is None else time.perf_counter() - started
        return behind_schema(self.registry, exc) or lost_race(
            exc, timeout=self.crm.settings.busy_timeout, entity=entity, id=id, waited=waited,
        )

    def _execute(self, statement: Any, params: Any = None) -> sa.CursorResult[*tuple[Any, ...]]:
        started = time.perf_counter()
        try:
            return self.connection.execute(statement, params)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            raise self._translate(exc, started=started) from exc

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
        started = time.perf_counter()
        try:
            try:
                if many:
                    cursor.executemany(statement, params)
                else:
                    cursor.execute(statement, params)
            except dialect.loaded_dbapi.Error as exc:
                error = sa.exc.DBAPIError.instance(statement, params, exc, dialect.loaded_dbapi.Error, dialect=dialect)
                if isinstance(error, (sa.exc.OperationalError, sa.exc.ProgrammingError)):
                    raise self._translate(error, entity=entity, id=id, started=started) from exc
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
