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
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from crmcore.actors import Actor
from crmcore.app import Crm
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
from crmcore.storage.engine import safe_url
from crmcore.testing.commands import (
    CORE_DEMO_ENTITIES,
    ToldStory,
    crm_fails,
    crm_ok,
    demo_counts,
    run_crm,
    tell_story,
)
from crmcore.testing.databases import CrmFactory, SchemaPool, _check_reachable  # noqa: F401 - re-exported
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
