"""The databases ``crm_factory`` builds apps on: a fresh one per app, its tables built once per
session for each distinct DDL and then copied (SQLite) or kept and emptied between tests
(PostgreSQL). See :class:`SchemaPool` and :class:`CrmFactory`."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from crmcore.app import Crm, create_app
from crmcore.storage.engine import make_engine, safe_url

__all__ = ["CrmFactory", "SchemaPool"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


_reachable: dict[str, str | None] = {}


def _check_reachable(url: str) -> None:
    """Skip (or, in CI, fail) when a PostgreSQL test database cannot be reached."""
    if not url.startswith("postgresql"):
        return
    if url not in _reachable:
        engine = make_engine(url)
        try:
            with engine.connect():
                pass
            _reachable[url] = None
        except sa.exc.DBAPIError as exc:
            _reachable[url] = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        finally:
            engine.dispose()
    reason = _reachable[url]
    if reason is not None:
        message = f"PostgreSQL test database {safe_url(url)} is not reachable: {reason}"
        if _in_ci():
            pytest.fail(message + " (CI=true: PostgreSQL is required)", pytrace=False)
        pytest.skip(message)


def _with_schema(url: str, schema: str) -> str:
    parsed = sa.engine.make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _ddl_key(metadata: sa.MetaData, dialect: sa.Dialect) -> tuple[str, ...]:
    """The DDL of *metadata*'s tables and indexes compiled for *dialect*: apps with the same key
    have the same schema, whatever plugins and settings produced it."""
    key: list[str] = []
    for table in metadata.sorted_tables:
        key.append(str(CreateTable(table).compile(dialect=dialect)))
        key.extend(sorted(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes))
    return tuple(key)


class SchemaPool:
    """Built schemas kept for the tests of a session, by the DDL of their tables.

    Creating every table of an app costs a good part of a test: a second on PostgreSQL, where
    emptying the tables costs a few milliseconds, and on SQLite more than the test itself for
    most tests. So:

    - PostgreSQL: a schema whose tables are exactly those of a finished test's app goes back to
      the pool and is handed, emptied (rows deleted, id sequences restarted, so ids start at 1
      again), to the next app with the same DDL; anything else is dropped. A new schema of a
      DDL seen before is built by replaying, in one round trip, the statements ``create_all``
      sent the first time.
    - SQLite: the first database of each DDL is built by ``create_all`` and copied into a
      template kept in memory; the next ones are copies of the template (``backup()``).

    The tables come from the same ``MetaData.create_all`` either way, and the reference data
    from each app's own ``seed()``.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.postgres = base_url.startswith("postgresql")
        self.dialect: sa.Dialect = sa.engine.make_url(base_url).get_dialect()()
        self.free: dict[tuple[str, ...], list[str]] = {}
        self.ddl: dict[tuple[str, ...], list[str] | None] = {}  # PostgreSQL: create_all's statements
        self.templates: dict[tuple[str, ...], sqlite3.Connection] = {}  # SQLite
        self._admin: sa.Engine | None = None

    @property
    def admin(self) -> sa.Engine:
        """One engine on the base URL for the session's schema work (PostgreSQL)."""
        if self._admin is None:
            self._admin = make_engine(self.base_url)
        return self._admin

    def key(self, app: Crm) -> tuple[str, ...]:
        return _ddl_key(app.metadata, self.dialect)

    def take(self, key: tuple[str, ...], app: Crm) -> str | None:
        """An emptied schema of *key*, or ``None``. Rows are deleted children first and every
        id sequence starts at 1 again, in one round trip (on a busy server this costs a fifth
        of TRUNCATE or of creating the tables)."""
        free = self.free.get(key)
        if not free:
            return None
        schema = free.pop()
        order = app.metadata.sorted_tables
        script = [f'DELETE FROM "{schema}"."{t.name}"' for t in reversed(order)]
        script += [
            f"SELECT setval(pg_get_serial_sequence('\"{schema}\".\"{t.name}\"', 'id'), 1, false)"
            for t in order if "id" in t.columns
        ]
        with self.admin.begin() as connection:
            connection.exec_driver_sql("; ".join(script))
        return schema

    def give_back(self, schema: str, key: tuple[str, ...], tables: frozenset[str]) -> bool:
        """Keep *schema* for reuse if it holds exactly *tables* (those of *key*)."""
        with self.admin.connect() as connection:
            present = {r[0] for r in connection.execute(
                sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema})}
        if present != tables:
            return False
        self.free.setdefault(key, []).append(schema)
        return True

    def create_schema(self, schema: str) -> None:
        with self.admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

    def is_empty(self, schema: str) -> bool:
        with self.admin.connect() as connection:
            return not connection.execute(
                sa.text("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :s LIMIT 1"), {"s": schema}).first()

    def build(self, app: Crm, key: tuple[str, ...], schema: str | None = None) -> None:
        """Create the tables of *app* (on its database, empty) as ``create_schema`` does, then
        seed it. *schema*: the PostgreSQL schema the app's URL points at."""
        if self.postgres:
            statements = self.ddl.get(key)
            if statements is not None and schema is not None:
                with self.admin.begin() as connection:
                    connection.exec_driver_sql(
                        f'SET LOCAL search_path TO "{schema}"; ' + "; ".join(statements))
            else:
                captured: list[str] | None = []

                def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
                    nonlocal captured
                    if statement.lstrip().upper().startswith("SELECT"):
                        return  # create_all looking for existing tables
                    if parameters or captured is None:
                        captured = None  # not replayable as text
                        return
                    captured.append(statement)

                with app.connect(create=True) as connection:
                    sa.event.listen(connection, "before_cursor_execute", capture)
                    try:
                        with connection.begin():
                            app.metadata.create_all(connection)
                    finally:
                        sa.event.remove(connection, "before_cursor_execute", capture)
                self.ddl.setdefault(key, captured)
        else:
            template = self.templates.get(key)
            with app.connect(create=True) as connection:
                raw = connection.connection.dbapi_connection
                if template is not None:
                    template.backup(raw)  # type: ignore[arg-type]
                else:
                    with connection.begin():
                        app.metadata.create_all(connection)
                    template = sqlite3.connect(":memory:", check_same_thread=False)
                    raw.backup(template)  # type: ignore[union-attr]
                    self.templates[key] = template
        app.seed()

    def drop(self, schemas: list[str]) -> None:
        for schema in schemas:  # one transaction each: a drop locks every table in it
            with self.admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    def close(self) -> None:
        schemas = [s for free in self.free.values() for s in free]
        self.free.clear()
        try:
            if schemas:
                self.drop(schemas)
        finally:
            for template in self.templates.values():
                template.close()
            self.templates.clear()
            if self._admin is not None:
                self._admin.dispose()
                self._admin = None


def _drop_schemas(base_url: str, schemas: list[str]) -> None:
    admin = make_engine(base_url)
    try:
        for schema in schemas:  # one transaction each: a drop locks every table in it
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        admin.dispose()


class CrmFactory:
    """Builds isolated apps for one test and cleans them up afterwards."""

    def __init__(self, base_url: str, tmp_path_factory: pytest.TempPathFactory, pool: SchemaPool | None = None) -> None:
        self.base_url = base_url
        self.tmp_path_factory = tmp_path_factory
        self.apps: list[Crm] = []
        self._schemas: list[str] = []
        self._pooled: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
        self._fresh: dict[str, str | None] = {}  # URLs handed out and not used yet: their schema
        self.pool = pool

    @property
    def _postgres(self) -> bool:
        return self.base_url.startswith("postgresql")

    def database_url(self, *, file: bool = False) -> str:
        """A fresh, empty database URL of the kind under test."""
        if self._postgres:
            schema = f"t_{uuid.uuid4().hex[:12]}"
            if self.pool is not None:
                self.pool.create_schema(schema)
            else:
                admin = make_engine(self.base_url)
                with admin.begin() as connection:
                    connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                admin.dispose()
            self._schemas.append(schema)
            url = _with_schema(self.base_url, schema)
            self._fresh[url] = schema
            return url
        if file:
            url = f"sqlite:///{self.tmp_path_factory.mktemp('crm') / 'crm.db'}"
            self._fresh[url] = None
            return url
        return "sqlite://"

    def _still_fresh(self, url: str) -> str | None | bool:
        """For a URL from :meth:`database_url` whose database nothing has written yet: its
        schema (PostgreSQL) or ``None`` (SQLite); ``False`` otherwise."""
        if url not in self._fresh:
            return False
        schema = self._fresh.pop(url)
        if schema is None:
            path = sa.engine.make_url(url).database
            return None if path and not os.path.exists(path) else False
        assert self.pool is not None
        return schema if self.pool.is_empty(schema) else False

    def __call__(
        self,
        plugins: list[Any] | tuple[Any, ...] = (),
        settings: dict[str, Any] | None = None,
        *,
        file: bool = False,
        database: str | None = None,
        create_schema: bool = True,
        **overrides: Any,
    ) -> Crm:
        """A new app. *plugins* mixes names of installed plugins and plugin objects.

        :param settings: a dict shaped like ``crm.toml`` (its ``[crm] plugins`` are added).
        :param database: reuse this URL (another app on the same database) instead of a new one.
        :param create_schema: create the tables from the registry.
        """
        _check_reachable(self.base_url)
        names = [p for p in plugins if isinstance(p, str)]
        objects = [p for p in plugins if not isinstance(p, str)]
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (settings or {}).items()}
        crm_table = dict(data.get("crm", {}))
        crm_table["plugins"] = [*crm_table.get("plugins", []), *names]
        pool = self.pool
        pooled = pool is not None and database is None and create_schema and self._postgres
        fresh: str | None | bool = False  # a new database nothing wrote yet: its schema or None
        if database is not None:
            if pool is not None and create_schema:
                fresh = self._still_fresh(database)
        elif not pooled:
            database = self.database_url(file=file)
            self._fresh.pop(database, None)
            if pool is not None and create_schema:
                fresh = None  # SQLite: in memory or a new file
        crm_table["database"] = database or self.base_url
        data["crm"] = crm_table
        app = create_app(data, plugins=objects, **overrides)
        self.apps.append(app)
        if pooled:
            assert pool is not None
            key = pool.key(app)
            schema = pool.take(key, app)
            reused = schema is not None
            if schema is None:
                schema = f"t_{uuid.uuid4().hex[:12]}"
                pool.create_schema(schema)
            self._pooled[schema] = (key, frozenset(app.metadata.tables))
            # the engine is made on first use, so the app can still be pointed at its schema
            app.settings = attrs.evolve(app.settings, database=_with_schema(self.base_url, schema))
            if reused:
                app.seed()
            else:
                pool.build(app, key, schema)
            return app
        if fresh is not False:
            assert pool is not None
            pool.build(app, pool.key(app), fresh)  # type: ignore[arg-type]
            return app
        if create_schema:
            app.create_schema()
        return app

    def close(self) -> None:
        for app in self.apps:
            with contextlib.suppress(Exception):
                app.close()
        dropped = list(self._schemas)
        for schema, (key, tables) in self._pooled.items():
            if self.pool is None or not self.pool.give_back(schema, key, tables):
                dropped.append(schema)
        if dropped:
            if self.pool is not None:
                self.pool.drop(dropped)
            else:
                _drop_schemas(self.base_url, dropped)
