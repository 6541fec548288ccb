"""The pytest plugin crmcore offers to plugin authors (registered under ``pytest11``).

Wherever crmcore is installed, tests get these fixtures:

``crm_factory(plugins=[...], settings={...}, file=False)``
    a fresh app with the given plugins (names of installed plugins, or objects carrying
    ``@hookimpl`` functions for throwaway hooks), its schema created. It runs on in-memory
    SQLite, or on ``CRM_TEST_DATABASE_URL`` when that is set (PostgreSQL: each app gets a schema
    of its own). ``file=True`` uses an SQLite file, for tests that need several connections.
    Tables are built once per session for each distinct DDL and then copied (SQLite) or kept
    and emptied between tests (PostgreSQL): see :class:`SchemaPool`.
``crm``
    ``crm_factory()`` with the core only.
``make_user(crm, username, **fields)``
    creates a user and returns its :class:`~crmcore.Actor`.
``make_record(crm, entity, **values)``
    creates a record, filling required fields with sample values.
``captured_signals(name, crm=None)``
    a context manager collecting the events of signal *name* sent by the factory's apps.
``crm_database_url``
    the URL the factory's apps run on.
``http_sink``
    a real HTTP server on 127.0.0.1 (a free port) that records what it receives, dedups on the
    ``Idempotency-Key`` header and can fail its first calls (:class:`HttpSinkServer`), for tests
    of webhooks and HTTP sinks; it stops at the end of the test.
``smtp_server``
    a real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, recording what it receives
    (:class:`SmtpServer`); stopped after the test.
``crm_module_factory``
    a ``crm_factory`` shared by the tests of a module, for an app built once and only read.
``crm_workdir``
    an empty working folder where ``crm`` reads only the ``crm.toml`` the test writes.

:func:`check_plugin` (``from crmcore.testing import check_plugin``) is the conformance check.
:func:`run_crm`, :func:`crm_ok` and :func:`crm_fails` run the ``crm`` command in the test's
process; :func:`tell_story` tells the story of ``crm demo`` on an app and :func:`demo_counts`
counts the records of a demo file (see :mod:`crmcore.testing.commands`).

When ``CRM_TEST_DATABASE_URL`` names a PostgreSQL server that cannot be reached, the tests that
need a database are skipped with the reason, unless ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import os
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from crmcore.actors import Actor
from crmcore.app import Crm, create_app
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Email,
    Field,
    Integer,
    Json,
    MoneyType,
    MultiChoice,
    Phone,
    Reference,
    String,
    Text,
    Url,
)
from crmcore.records import Record
from crmcore.registry import EntityType
from crmcore.security.admin import add_user
from crmcore.storage.engine import make_engine, safe_url
from crmcore.testing.commands import (
    CORE_DEMO_ENTITIES,
    ToldStory,
    crm_fails,
    crm_ok,
    demo_counts,
    run_crm,
    tell_story,
)
from crmcore.testing.servers import HttpSinkServer, SmtpServer, http_sink, smtp_server  # noqa: F401 - fixtures

__all__ = [
    "CORE_DEMO_ENTITIES",
    "FrozenClock",
    "HttpSinkServer",
    "SmtpServer",
    "ToldStory",
    "check_plugin",
    "crm_fails",
    "crm_ok",
    "database_url_for_tests",
    "demo_counts",
    "run_crm",
    "sample_value",
    "sample_values",
    "tell_story",
]

ENV_URL = "CRM_TEST_DATABASE_URL"


def database_url_for_tests() -> str:
    """``CRM_TEST_DATABASE_URL``, or in-memory SQLite."""
    return os.environ.get(ENV_URL) or "sqlite://"


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


class FrozenClock:
    """The time crmcore stamps on what it writes (``created_at``, ``updated_at``, the time a
    record entered its stage), under a test's control: it stands still until the test moves it.
    """

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, when: dt.datetime) -> None:
        """Make it *when* (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError(f"the clock takes timezone-aware times, got {when!r}")
        self.now = when

    def advance(self, **delta: float) -> dt.datetime:
        """Move it on by ``timedelta(**delta)`` (``advance(days=10)``); returns the new time."""
        self.now += dt.timedelta(**delta)
        return self.now

    def __repr__(self) -> str:
        return f"<FrozenClock {self.now.isoformat()}>"


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """A :class:`FrozenClock` standing at 2026-01-01 09:00 UTC that every crmcore module
    loaded so far reads instead of the real time, for this test: histories, stage times and
    time-based work become repeatable::

        def test_cycle_time(crm, frozen_clock):
            with crm.unit_of_work() as uow:
                deal = uow.create("opportunity", name="Acme", stage="qualification")
                frozen_clock.advance(days=10)
                uow.move(deal, "won", close_date=frozen_clock.now.date())
    """
    clock = FrozenClock(dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC))
    for name, module in list(sys.modules.items()):
        if (name == "crmcore" or name.startswith("crmcore.")) and callable(getattr(module, "_now", None)):
            monkeypatch.setattr(module, "_now", clock)
    return clock


@pytest.fixture(scope="session")
def _crm_schema_pool(crm_database_url: str) -> Iterator[SchemaPool | None]:
    """Schemas reused between the tests of a session (PostgreSQL), schema templates (SQLite)."""
    pool = SchemaPool(crm_database_url)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def crm_database_url() -> str:
    """The database URL the factory's apps run on (``CRM_TEST_DATABASE_URL`` or SQLite)."""
    return database_url_for_tests()


@pytest.fixture
def crm_factory(
    crm_database_url: str, tmp_path_factory: pytest.TempPathFactory, _crm_schema_pool: SchemaPool | None
) -> Iterator[CrmFactory]:
    """Build apps with chosen plugins on a fresh database; see the module docs."""
    factory = CrmFactory(crm_database_url, tmp_path_factory, _crm_schema_pool)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def crm_module_factory(
    crm_database_url: str, tmp_path_factory: pytest.TempPathFactory, _crm_schema_pool: SchemaPool | None
) -> Iterator[CrmFactory]:
    """A :class:`CrmFactory` shared by the tests of a module, for apps built once that the
    tests only read (a story told, a large data set); its apps are closed after the module."""
    factory = CrmFactory(crm_database_url, tmp_path_factory, _crm_schema_pool)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def crm(crm_factory: CrmFactory) -> Crm:
    """An app with the core only, its schema created."""
    return crm_factory()


@pytest.fixture
def crm_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder (the test's ``tmp_path``) as the working directory, with
    ``CRM_DATABASE_URL`` and ``CRM_PLUGINS`` unset: ``crm`` run there reads only the
    ``crm.toml`` the test writes in it. Use it in a module's autouse fixture that writes the
    settings::

        @pytest.fixture(autouse=True)
        def _settings(crm_workdir):
            (crm_workdir / "crm.toml").write_text('[crm]\\nplugins = ["helpdesk"]\\n')
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    return tmp_path


@pytest.fixture
def make_user() -> Callable[..., Actor]:
    """``make_user(crm, username, roles=(), groups=(), **fields)``: create a user holding
    *roles* and belonging to *groups* (both by name), return its actor.

    Example::

        crm = crm_factory(settings={"security": {...}})
        rep = make_user(crm, "rep1", roles=["sales_rep"])
        with crm.unit_of_work(rep) as uow:
            ...
    """

    def make(crm: Crm, username: str, *, roles: Sequence[str] = (), groups: Sequence[str] = (), **fields: Any) -> Actor:
        with crm.unit_of_work() as uow:
            user = add_user(uow, username, roles=roles, groups=groups, **fields)
            uow.commit()
        return Actor(user.id, username)

    return make


@pytest.fixture
def make_record() -> Callable[..., Record]:
    """``make_record(crm, entity, actor=None, **values)``: create one record, required fields
    filled with sample values (references get a fresh referenced record)."""

    def make(crm: Crm, entity: str, actor: Actor | None = None, **values: Any) -> Record:
        with crm.unit_of_work(actor) as uow:
            record = create_sample(uow, crm.registry.entity(entity), values)
            uow.commit()
        return record

    return make


@pytest.fixture
def captured_signals(crm_factory: CrmFactory) -> Callable[..., contextlib.AbstractContextManager[list[Any]]]:
    """``with captured_signals("record-created") as sent:`` collects the events of the signal
    from every app the factory built (or only *crm*'s)."""

    @contextlib.contextmanager
    def capture(name: str, crm: Crm | None = None) -> Iterator[list[Any]]:
        sent: list[Any] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            sent.append(kwargs.get("event", kwargs or sender))

        apps = [crm] if crm is not None else list(crm_factory.apps)
        for app in apps:
            app.signals.signal(name).connect(receiver)
        try:
            yield sent
        finally:
            for app in apps:
                app.signals.signal(name).disconnect(receiver)

    return capture


# -- sample data -------------------------------------------------------------------------------

_counter = iter(range(1, 10**9))


def sample_value(field: Field) -> Any:
    """A valid value for *field* (not for references: the caller provides those); a field type
    with a ``sample(n)`` method gives its own (*n* counts the samples made)."""
    n = next(_counter)
    ftype = field.type
    sample = getattr(ftype, "sample", None)
    if callable(sample):  # a plugin's field type that knows its own valid values
        return sample(n)
    if isinstance(ftype, Choice):
        return ftype.choices[0]
    if isinstance(ftype, MultiChoice):
        return ftype.choices[:1]
    if isinstance(ftype, Email):
        return f"sample{n}@example.com"
    if isinstance(ftype, Phone):
        return f"+1 555 010 {n % 10000:04d}"
    if isinstance(ftype, Url):
        return f"https://example{n}.com"
    if isinstance(ftype, String):
        return f"{field.name} {n}"[: ftype.max_length]
    if isinstance(ftype, Text):
        return f"{field.label} {n}"
    if isinstance(ftype, Integer):  # within the field's bounds, whatever the count
        low = ftype.minimum if ftype.minimum is not None else 0
        high = ftype.maximum if ftype.maximum is not None else low + 99
        return low + n % (max(high, low) - low + 1)
    if isinstance(ftype, Decimal):
        return (decimal.Decimal(n % 1000) + decimal.Decimal("0.25")).quantize(decimal.Decimal(1).scaleb(-ftype.scale))
    if isinstance(ftype, MoneyType):
        return f"{n % 100000}.50 {ftype.currency or 'USD'}"
    if isinstance(ftype, Boolean):
        return True
    if isinstance(ftype, Date):
        return dt.date(2026, 1, 1) + dt.timedelta(days=n % 365)
    if isinstance(ftype, DateTime):
        return dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC) + dt.timedelta(hours=n % 1000)
    if isinstance(ftype, Json):
        return {"n": n}
    raise TypeError(f"no sample value for field type {ftype.kind!r}")


def sample_values(entity: EntityType, *, include_optional: bool = True) -> dict[str, Any]:
    """Sample values for every non-reference field of *entity* (optional ones too by default)."""
    values = {}
    for field in entity.fields:
        if isinstance(field.type, Reference) or field.read_only:
            continue
        if field.required or include_optional:
            values[field.name] = sample_value(field)
    return values


def create_sample(uow: Any, entity: EntityType, values: dict[str, Any], *, include_optional: bool = False, _depth: int = 0) -> Record:
    """Create a record of *entity* in *uow* with *values*, filling required fields (and
    required references, recursively) with samples."""
    data = {k: v for k, v in sample_values(entity, include_optional=include_optional).items() if k not in values}
    for field in entity.fields:
        if isinstance(field.type, Reference) and field.required and field.name not in values:
            if _depth > 5:
                raise RuntimeError(f"required references of {entity.name!r} nest too deep")
            target = uow.registry.entity(field.type.entity)
            data[field.name] = create_sample(uow, target, {}, _depth=_depth + 1).id
    data.update(values)
    return uow.create(entity.name, data)  # type: ignore[no-any-return]


def check_plugin(name: str, *, plugins: list[Any] | tuple[Any, ...] = (), database: str | None = None) -> None:
    """The conformance check of an installed plugin; see :mod:`crmcore.conformance`."""
    from crmcore.conformance import check_plugin as check

    check(name, plugins=plugins, database=database or "sqlite://")


def pytest_report_header(config: pytest.Config) -> str:
    url = database_url_for_tests()
    return f"crmcore test database: {safe_url(url)}"


__all__ += ["CrmFactory"]
