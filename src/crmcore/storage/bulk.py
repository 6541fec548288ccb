"""Set-based bulk writes: one compiled INSERT, many rows, one call to the driver.

SQLAlchemy's generic ``executemany`` handles every parameter set in Python (defaults, bind
processors, multi-row ``VALUES`` rendering), which costs more than the database spends storing
the row. The audit trail of the unit of work and the bulk import write thousands of rows at a
time, so they use :class:`BulkInsert`: SQLAlchemy still quotes the names and supplies each
column type's own bind processor (scaled decimals, UTC datetimes, JSON), and the rows then go
to the driver at once: ``executemany`` of multi-row ``VALUES`` on SQLite (one statement step
per :data:`ROWS_PER_STATEMENT` rows instead of one per row), ``COPY ... FROM STDIN`` on
PostgreSQL.
Driver errors are re-raised as SQLAlchemy's exceptions (``IntegrityError``, ...) so callers
handle them exactly as errors of ordinary statements.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import sqlalchemy as sa

from crmcore.storage.types import UTCDateTime

__all__ = [
    "ROWS_PER_STATEMENT", "BulkInsert", "JsonText", "allocate_ids", "json_fragment", "processed_column", "sync_sequence",
]

#: Rows per multi-row ``INSERT ... VALUES`` on SQLite (fewer when a row has many columns, so a
#: statement stays within SQLite's historical limit of 999 parameters).
ROWS_PER_STATEMENT = 100
_MAX_PARAMETERS = 999


class JsonText(str):
    """Text already in JSON form: a JSON column of :class:`BulkInsert` stores it as it is,
    where any other value (a ``str`` included) is encoded first. Writers that assemble many
    similar documents from shared parts (the audit entries of a batch) hand them over so."""

    __slots__ = ()


class BulkInsert:
    """An INSERT of *columns* into *table*, prepared for many rows on *connection*'s dialect.

    :param connection: the connection (and transaction) to write on.
    :param table: the target table.
    :param columns: the column names, in the order of the values of each row.
    """

    def __init__(self, connection: sa.Connection, table: sa.Table, columns: Sequence[str]) -> None:
        self.connection = connection
        self.table = table
        self.columns = tuple(columns)
        dialect = connection.dialect
        self.dialect = dialect
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        self.null_aware: set[int] = set()  # columns whose processor also turns None into a value
        self.shared: set[int] = set()  # JSON columns: a document many rows share is encoded once
        for index, name in enumerate(self.columns):
            column_type = table.c[name].type
            processor = (_json_text(column_type, dialect) or _utc_text(column_type, dialect)
                         or column_type.dialect_impl(dialect).bind_processor(dialect))
            if processor is not None and isinstance(column_type, sa.JSON):
                processor = _passing_json_text(processor)
            if processor is not None:
                processors.append((index, processor))
                if isinstance(column_type, sa.JSON):
                    self.shared.add(index)
                    if not column_type.none_as_null:
                        self.null_aware.add(index)  # None is JSON null, not SQL NULL
        self.processors = processors
        quote = dialect.identifier_preparer.quote
        target = dialect.identifier_preparer.format_table(table)
        names = ", ".join(quote(name) for name in self.columns)
        self.copy = dialect.name == "postgresql"
        if self.copy:
            self.statement = f"COPY {target} ({names}) FROM STDIN"
        else:
            marks = f"({', '.join('?' for _ in self.columns)})"
            self.statement = f"INSERT INTO {target} ({names}) VALUES {marks}"
            self.per_statement = max(1, min(ROWS_PER_STATEMENT, _MAX_PARAMETERS // len(self.columns)))
            self.multi_statement = f"INSERT INTO {target} ({names}) VALUES {', '.join([marks] * self.per_statement)}"

    def processor(self, name: str) -> Callable[[Any], Any] | None:
        """The bind processor of column *name* (``None`` when values pass unchanged)."""
        index = self.columns.index(name)
        return next((p for i, p in self.processors if i == index), None)

    def process(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Apply the columns' bind processors to plain Python values (``None`` stays ``None``)."""
        rows = list(rows)
        if not self.processors or not rows:
            return [tuple(row) for row in rows]
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))  # column by column: one tight loop per processor
        for index, processor in self.processors:
            columns[index] = processed_column(columns[index], processor, keep_none=index not in self.null_aware,
                                              shared=index in self.shared)
        return list(zip(*columns, strict=True))

    def execute(self, rows: Sequence[Sequence[Any]], *, processed: bool = False) -> None:
        """Insert *rows* (sequences of values in column order).

        :param processed: the rows are tuples whose values already went through
            :meth:`process` (or need no processing); otherwise they are processed here.
        """
        if not rows:
            return
        if not processed:
            rows = self.process(rows)
        if not self.copy:
            self._insert_sqlite(rows)
            return
        dbapi = self.dialect.loaded_dbapi
        try:
            cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(self.statement) as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        except dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(
                self.statement, None, exc, dbapi.Error, dialect=self.dialect
            ) from exc

    def _insert_sqlite(self, rows: Sequence[Sequence[Any]]) -> None:
        """*rows* in statements of :attr:`per_statement` rows each (their values in one flat
        parameter list), the rest one row per statement, all in two driver calls at most."""
        size = self.per_statement
        full = len(rows) - len(rows) % size
        if size > 1 and full:
            chain = itertools.chain.from_iterable
            self.connection.exec_driver_sql(self.multi_statement, [tuple(chain(rows[i:i + size])) for i in range(0, full, size)])
            rows = rows[full:]
        if rows:
            self.connection.exec_driver_sql(self.statement, rows)  # type: ignore[arg-type]


def processed_column(values: Sequence[Any], processor: Callable[[Any], Any], *, keep_none: bool = True,
                     shared: bool = False) -> list[Any]:
    """*values* through *processor*; ``None`` stays ``None`` (SQL NULL) unless *keep_none* is
    false, and the same object repeated (one time stamp for a whole batch) is processed once.
    With *shared* (JSON documents), the same object anywhere in *values* is processed once."""
    if shared:
        return _processed_shared(values, processor, keep_none=keep_none)
    out: list[Any] = []
    append = out.append
    last_in: Any = None
    last_out: Any = None
    for value in values:
        if value is None and keep_none:
            append(None)
        elif value is last_in:
            append(last_out)
        else:
            last_in, last_out = value, processor(value)
            append(last_out)
    return out


def _processed_shared(values: Sequence[Any], processor: Callable[[Any], Any], *, keep_none: bool) -> list[Any]:
    """:func:`processed_column` remembering the output of each dict or list by identity (the
    objects stay alive in *values* meanwhile, so an id is never reused during the call)."""
    out: list[Any] = []
    append = out.append
    done: dict[int, Any] = {}
    for value in values:
        if value is None and keep_none:
            append(None)
            continue
        kind = type(value)
        if kind is str or kind is int or value is None:
            append(processor(value))
            continue
        key = id(value)
        found = done.get(key, done)
        if found is done:
            found = done[key] = processor(value)
        append(found)
    return out


def _passing_json_text(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """*processor* of a JSON column, leaving :class:`JsonText` as it is (plain text: SQLite
    stores JSON as text, and PostgreSQL parses the text ``COPY`` sends)."""
    return lambda value: str(value) if type(value) is JsonText else processor(value)


def json_fragment(dump: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    """``value -> JSON text`` of ``dump(value)`` (of the value itself when *dump* is ``None``),
    as ``json.dumps`` writes it; ``None`` is ``null``. The parts :class:`JsonText` documents
    are assembled from."""
    encode = _encoder()
    join = "".join
    quote = encode_basestring_ascii
    if dump is None:
        def plain(value: Any) -> str:
            return quote(value) if type(value) is str else join(encode(value, 0))

        return plain

    def dumped(value: Any) -> str:
        if value is None:
            return "null"
        value = dump(value)
        return quote(value) if type(value) is str else join(encode(value, 0))

    return dumped


def _encoder() -> Callable[[Any, int], Any]:
    """``json.dumps(value)`` with its defaults as one C encoder prepared once, without the check
    for circular structures (values bound to a column are plain data)."""
    if c_make_encoder is None:  # a Python without the C accelerator
        return lambda value, _indent: json.dumps(value)
    return c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True)  # type: ignore[no-any-return]


def _json_text(column_type: Any, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """For a plain JSON column on SQLite, the bind processor SQLAlchemy would use (the text of
    ``json.dumps(value)``; SQL NULL for ``None`` when ``none_as_null``), made with one C
    encoder prepared once instead of a ``json.dumps`` set-up per value; ``None`` otherwise."""
    if (
        type(column_type) is not sa.JSON or dialect.name != "sqlite"
        or getattr(dialect, "_json_serializer", None) is not None or c_make_encoder is None
    ):
        return None
    encode = _encoder()
    join = "".join
    if column_type.none_as_null:
        return lambda value: None if value is None else join(encode(value, 0))
    return lambda value: join(encode(value, 0))


#: SQLAlchemy's default text form of a time on SQLite, which ``isoformat(" ", "microseconds")``
#: of a naive time writes alike.
_SQLITE_DATETIME = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


def _utc_text(column_type: Any, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """For a :class:`UTCDateTime` column on SQLite, the bind processor SQLAlchemy would use
    (the time made naive UTC, then its text in the default storage format), with one
    ``isoformat`` call instead of a format of seven parts; ``None`` otherwise."""
    if type(column_type) is not UTCDateTime or dialect.name != "sqlite":
        return None
    impl = column_type.dialect_impl(dialect)
    if getattr(getattr(impl, "impl_instance", None), "_storage_format", None) != _SQLITE_DATETIME:
        return None
    bind = column_type.process_bind_param
    utc = dt.UTC

    def text(value: Any) -> str:
        if value.tzinfo is None:
            return bind(value, dialect)  # type: ignore[return-value]  # raises: naive times are refused
        if value.tzinfo is not utc:
            value = value.astimezone(utc)
        return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"

    return text


def allocate_ids(connection: sa.Connection, table: sa.Table, count: int, *, above: int = 0) -> list[int]:
    """Reserve *count* new primary keys of *table* (ascending), so rows can be inserted with
    their ids known in advance, without ``RETURNING``.

    PostgreSQL draws them from the column's sequence (safe under concurrency). SQLite takes the
    ids after the largest one in the table: inside the unit of work's transaction that is safe,
    because SQLite lets one writer at a time commit and refuses to write from a snapshot that
    another writer has overtaken.

    :param above: the ids must also be greater than this (ids given explicitly in the batch).
    """
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        sequence = _sequence(connection, table)
        if above > 0:
            _raise_sequence(connection, sequence, above)
        rows = connection.execute(
            sa.select(sa.func.nextval(sa.cast(sequence, _REGCLASS)))
            .select_from(sa.func.generate_series(1, count))
        )
        return sorted(r[0] for r in rows)
    start = connection.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
    start = max(start, above)
    return list(range(start + 1, start + 1 + count))


def sync_sequence(connection: sa.Connection, table: sa.Table) -> None:
    """After rows were inserted with explicit ids, move PostgreSQL's id sequence past them
    (nothing to do on SQLite, which numbers after the largest id)."""
    if connection.dialect.name != "postgresql":
        return
    top = connection.execute(sa.select(sa.func.max(table.c.id))).scalar()
    if top:
        _raise_sequence(connection, _sequence(connection, table), top)


class _RegClass(sa.types.UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "regclass"


_REGCLASS = _RegClass()


def _sequence(connection: sa.Connection, table: sa.Table) -> str:
    name = connection.execute(sa.select(sa.func.pg_get_serial_sequence(table.fullname, "id"))).scalar_one()
    if name is None:
        raise sa.exc.InvalidRequestError(f"table {table.fullname!r} has no id sequence")
    return str(name)


def _raise_sequence(connection: sa.Connection, sequence: str, value: int) -> None:
    """Make the next id drawn from *sequence* greater than *value* (never lower it)."""
    seq = sa.cast(sequence, _REGCLASS)
    current = sa.func.coalesce(sa.func.pg_sequence_last_value(seq), 0)
    connection.execute(sa.select(sa.func.setval(seq, sa.func.greatest(value, current))))
