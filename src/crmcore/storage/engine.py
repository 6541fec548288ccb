"""Engines for SQLite (the embedded default) and PostgreSQL (the scale-out path).

SQLite gets WAL journaling, foreign keys, a busy timeout and explicit ``BEGIN`` so that a unit
of work is one real transaction. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from crmcore.errors import ConfigError, DatabaseError

__all__ = ["check_connection", "make_engine", "safe_url"]

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given, minus nothing to hide
        return str(url)


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> sa.Engine:
    """Create the engine for *url*.

    ``postgresql://`` URLs use psycopg 3. An in-memory SQLite URL shares one connection, so
    every unit of work sees the same database; hence one transaction at a time: opening a
    second one while a unit of work is open is a :class:`DatabaseError` (use a database file
    for concurrent work), never a silent end of the open one.

    :raises ConfigError: for a URL that cannot be parsed or a database crmcore does not support.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError(
            f"cannot parse database URL {url!r}; use 'sqlite:///crm.db' or "
            "'postgresql+psycopg://user@host/dbname'", key="crm.database",
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        try:
            engine = sa.create_engine(parsed, echo=echo, **kwargs)
        except ModuleNotFoundError:
            raise ConfigError(
                "PostgreSQL needs psycopg 3: pip install 'crmcore[postgres]'", key="crm.database"
            ) from None

        @event.listens_for(engine, "connect")
        def _on_pg_connect(dbapi_connection: Any, _record: Any) -> None:
            # psycopg prepares a statement after a few runs and PostgreSQL may then switch it to
            # a generic plan chosen while a table was small; a bulk import or move grows the
            # table inside its transaction, and a generic plan (a sequential scan where the
            # index should serve) turns each batch's duplicate lookup quadratic. Statements are
            # sent unprepared, so each is planned with its own values. (The server's own
            # foreign-key checks keep their cached plans: forcing custom plans server-wide
            # would re-plan one of those for every row a bulk delete removes.)
            dbapi_connection.prepare_threshold = None

        return engine
    if backend != "sqlite":
        raise ConfigError(
            f"unsupported database {safe_url(url)!r}; crmcore runs on SQLite and PostgreSQL",
            key="crm.database",
        )
    memory = parsed.database in (None, "", ":memory:")
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        # the one shared connection: returning it must not roll back the transaction of
        # whoever else holds it (every Connection ends its own transaction anyway)
        kwargs.setdefault("pool_reset_on_return", None)
    else:
        kwargs.setdefault("connect_args", {"timeout": 30})
    engine = sa.create_engine(parsed, echo=echo, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # crmcore issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if memory and connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            raise DatabaseError(
                "the in-memory SQLite database has a single connection and a transaction is open "
                "on it; finish that unit of work first, or use a database file for concurrent work"
            )
        connection.exec_driver_sql("BEGIN")

    return engine


def check_connection(engine: sa.Engine) -> None:
    """Connect once, turning failure into a one-line :class:`DatabaseError`."""
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot reach database {safe_url(engine.url)}: {reason}; check [crm] database "
            "(or --db) and that the server is running"
        ) from None
