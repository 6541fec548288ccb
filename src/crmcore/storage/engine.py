"""Engines for SQLite (the embedded default) and PostgreSQL (the scale-out path).

SQLite gets WAL journaling, foreign keys, a busy timeout and explicit ``BEGIN`` so that a unit
of work is one real transaction. PostgreSQL goes through psycopg 3, with a ``lock_timeout`` of
the same length. :func:`lost_race` tells a busy database (a write that waited for another
transaction's lock longer than the busy timeout) from a real conflict (another transaction
wrote first).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from crmcore.errors import BusyError, ConfigError, ConflictError, CrmError, DatabaseError

__all__ = ["check_connection", "lost_race", "make_engine", "missing_sqlite_file", "safe_url"]

#: SQLite's result of a write whose snapshot is older than the last commit: a real conflict.
_SQLITE_SNAPSHOT = "SQLITE_BUSY_SNAPSHOT"
#: PostgreSQL's SQLSTATEs of a lost race: serialization failure, deadlock (conflicts), and a
#: lock not granted within lock_timeout (busy).
_PG_CONFLICTS = frozenset({"40001", "40P01"})
_PG_BUSY = "55P03"

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


def lost_race(
    exc: sa.exc.DBAPIError, *, timeout: float | None = None, entity: str | None = None, id: Any = None,
    waited: float | None = None,
) -> CrmError:
    """What a failed statement means for the unit of work that ran it.

    - another transaction held a lock longer than the busy timeout (SQLite: ``database is
      locked`` after waiting; PostgreSQL: ``lock_timeout``): a :class:`BusyError` saying so;
    - another transaction wrote first (SQLite: the unit's snapshot is older than the last
      commit, or the unit had read and another transaction holds the write lock, which SQLite
      refuses at once instead of waiting; PostgreSQL: serialization failure or deadlock): a
      :class:`ConflictError`;
    - anything else: a :class:`CrmError` with the database's first line (no SQL text).

    :param timeout: the busy timeout in force, named in the message.
    :param entity: the entity type being written, when known (named in the message).
    :param id: the record being written, when known.
    :param waited: seconds the failed statement ran, when measured: a SQLite ``database is
        locked`` well inside *timeout* means SQLite did not wait (the unit holds a read snapshot
        that another writer is about to make stale), hence a conflict.
    """
    orig = exc.orig
    text = str(orig).lower()
    name = getattr(orig, "sqlite_errorname", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    what = f"{entity} {id} could not be written: " if entity is not None else ""
    conflict = name == _SQLITE_SNAPSHOT or code in _PG_CONFLICTS or "could not serialize" in text or "deadlock" in text
    if name == "SQLITE_BUSY" and waited is not None and timeout and waited < timeout / 2:
        # refused at once: SQLite lets no unit that has read wait for the write lock (that could
        # deadlock); the writer holding it is about to change what this unit read
        return ConflictError(
            f"{what}the database changed under this unit of work (another transaction is writing, "
            "and a unit of work that has read cannot wait for it on SQLite); open a new unit of work, "
            "read the records again and retry",
            entity=entity, id=id,
        )
    if conflict:
        return ConflictError(
            f"{what}the database changed under this unit of work (another transaction wrote first); "
            "open a new unit of work, read the records again and retry",
            entity=entity, id=id,
        )
    if code == _PG_BUSY or (name or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        waits = f"a write waits at most {timeout:g} s, " if timeout is not None else ""
        return BusyError(
            f"{what}the database is busy: another transaction holds the lock this write needs "
            f"({waits}[crm] busy_timeout); nothing was changed. Open a new unit of work and retry in a "
            "moment, keep units of work short, or raise [crm] busy_timeout",
            timeout=timeout, entity=entity, id=id,
        )
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return CrmError(f"database error: {first}")


def make_engine(url: str, *, echo: bool = False, busy_timeout: float = 30.0, **kwargs: Any) -> sa.Engine:
    """Create the engine for *url*.

    ``postgresql://`` URLs use psycopg 3. An in-memory SQLite URL shares one connection, so
    every unit of work sees the same database; hence one transaction at a time: opening a
    second one while a unit of work is open is a :class:`DatabaseError` (use a database file
    for concurrent work), never a silent end of the open one.

    :param busy_timeout: seconds a write waits for another transaction's lock (SQLite's busy
        timeout, PostgreSQL's ``lock_timeout``; 0 waits forever on PostgreSQL).
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
            with dbapi_connection.cursor() as cursor:  # a session setting: committed, so it stays
                cursor.execute(f"SET lock_timeout = {round(busy_timeout * 1000)}")
            dbapi_connection.commit()

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
        kwargs.setdefault("connect_args", {"timeout": busy_timeout})
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


def missing_sqlite_file(url: sa.URL) -> str | None:
    """The path of the SQLite database file *url* names when that file does not exist (SQLite
    would create it, empty, on connecting); ``None`` otherwise (another database, in memory,
    a URI filename, or a file that exists)."""
    if url.get_backend_name() != "sqlite":
        return None
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:") or url.query.get("uri"):
        return None
    return None if os.path.exists(path) else path


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
