"""Shared pieces of the benchmarks: fresh databases, raw driver connections, timing, memory.

Every benchmark runs in a process of its own (``run.py`` starts one per benchmark), so
``peak_rss_mb`` is the peak of that benchmark alone. A benchmark gets a fresh database for
crmcore and another for the raw floor: a new SQLite file in a temporary directory, or a new
schema on the PostgreSQL server named by ``--db``, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa

from crmcore import create_app
from crmcore.app import Crm

__all__ = [
    "Result",
    "fresh_app",
    "is_postgres",
    "median_seconds",
    "peak_rss_mb",
    "raw_connection",
]


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith("postgresql")  # type: ignore[union-attr]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``getrusage`` reports KB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Result(dict[str, Any]):
    """One line of the report: name, rows, seconds, rows_per_s, floor_rows_per_s,
    ratio_to_floor, peak_rss_mb (and notes)."""

    @classmethod
    def make(cls, name: str, rows: int, seconds: float, floor_seconds: float, peak: float, **notes: Any) -> Result:
        rate = rows / seconds if seconds else 0.0
        floor = rows / floor_seconds if floor_seconds else 0.0
        return cls(
            name=name, rows=rows, seconds=round(seconds, 4), rows_per_s=round(rate, 1),
            floor_rows_per_s=round(floor, 1), ratio_to_floor=round(rate / floor, 3) if floor else None,
            peak_rss_mb=peak, **notes,
        )


@contextlib.contextmanager
def fresh_app(url: str | None, workdir: str, label: str) -> Iterator[Crm]:
    """A crmcore app (core plugins only) on a fresh database with its schema created."""
    with fresh_url(url, workdir, label) as database:
        app = create_app({"crm": {"database": database}})
        try:
            app.create_schema()
            yield app
        finally:
            app.close()


@contextlib.contextmanager
def fresh_url(url: str | None, workdir: str, label: str) -> Iterator[str]:
    """A URL of a fresh, empty database: an SQLite file, or a new PostgreSQL schema."""
    if not is_postgres(url):
        path = os.path.join(workdir, f"{label}-{uuid.uuid4().hex[:8]}.db")
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path + suffix)
        return
    assert url is not None
    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextlib.contextmanager
def raw_connection(app: Crm) -> Iterator[Any]:
    """A plain driver connection to *app*'s database, outside SQLAlchemy: ``sqlite3`` (foreign
    keys on, WAL, as crmcore's engine sets them) or ``psycopg`` (on the same schema)."""
    url = app.engine.url
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("PRAGMA foreign_keys=ON")  # as crmcore's engine sets them
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        try:
            yield connection
        finally:
            connection.close()
        return
    import psycopg

    options = url.query.get("options")
    connection = psycopg.connect(
        host=url.host or "localhost", port=url.port or 5432, user=url.username, password=url.password,
        dbname=url.database, **({"options": options} if options else {}),
    )
    try:
        yield connection
    finally:
        connection.close()


def median_seconds(function: Callable[[], Any], runs: int) -> float:
    """The median wall time of *runs* calls of *function* (after one warm-up call)."""
    function()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def temporary_directory() -> tempfile.TemporaryDirectory[str]:
    """A scratch directory for data files and SQLite databases (``$CRM_BENCH_TMP`` or /tmp)."""
    return tempfile.TemporaryDirectory(prefix="crm-bench-", dir=os.environ.get("CRM_BENCH_TMP"))
