"""Queries: filters, sorting, keyset pagination, counts and aggregates over one entity type
(see :mod:`crmcore.query` for the language and its semantics)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.fields import Decimal as DecimalType
from crmcore.fields import FieldType, FieldValueError, MoneyType
from crmcore.fields.base import shown
from crmcore.query.aggregate import Aggregates
from crmcore.query.conditions import Conditions, _nullable, _Target, resolve
from crmcore.records import Record, _owned
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.query.select import Select
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["Page", "Query", "base_where"]


_STREAM_BATCH = 500
_MAX_PAGE = 10_000
_MAX_CURSOR = 100_000  # characters; a cursor holds a few sort-key values
_MAX_LIMIT = 2**63 - 1  # LIMIT is a signed 64-bit number on both databases


def base_where(uow: UnitOfWork, entity: EntityType) -> sa.ColumnElement[bool]:
    """The predicate every read of *entity* by ``uow.actor`` starts from.

    Every statement a :class:`Query` runs (records, ids, pages, counts, aggregates, streams)
    is ``WHERE base_where(...) AND <the query's conditions>``: the predicate the permission
    model compiles for (actor, entity, read); ``true`` for the system actor (which SQLAlchemy
    drops from the ``WHERE``).

    :param uow: the unit of work; its ``actor`` is who reads.
    :param entity: the entity type read.
    :returns: a SQL boolean expression over the entity's table.
    """
    return uow.read_filter(entity.name)



@attrs.frozen
class _SortKey:
    target: _Target
    descending: bool

    @property
    def token(self) -> str:
        return ("-" if self.descending else "") + self.target.name


@attrs.frozen
class Page:
    """One page of a keyset-paginated query.

    :ivar records: the records of the page, in query order.
    :ivar next_cursor: pass it as ``after=`` for the next page; ``None`` on the last page.
    """

    records: tuple[Record, ...]
    next_cursor: str | None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"<Page records={len(self.records)} more={self.next_cursor is not None}>"


# -- the query --------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Query(Conditions, Aggregates):
    """An immutable query over one entity type; every method returns a new query or a result.

    Build it with :meth:`crmcore.storage.uow.UnitOfWork.query`; it runs in that unit of work's
    transaction, on behalf of its actor.
    """

    uow: UnitOfWork
    entity: EntityType
    table: sa.Table
    conditions: tuple[sa.ColumnElement[bool], ...] = ()
    sort: tuple[_SortKey, ...] = ()
    max_rows: int | None = None
    projection: tuple[_Target, ...] | None = None

    @classmethod
    def for_entity(cls, uow: UnitOfWork, entity: str) -> Query:
        """A query over every record of *entity* that ``uow.actor`` may read.

        :raises NotFoundError: for an unknown entity type, listing the known ones.
        """
        etype = uow.registry.entity(entity)
        return cls(uow, etype, uow.registry.table(entity))

    @property
    def source(self) -> sa.FromClause:
        """What the query's statements read from: the entity's table."""
        return self.table

    # -- building ------------------------------------------------------------------------------
    def where(self, *conditions: Any, **equals: Any) -> Query:
        """Narrow the query: every condition given here and before must hold.

        :param conditions: conditions as described in the module docs.
        :param equals: ``field=value`` equality conditions.
        :raises ValidationError: naming an unknown field (and listing the fields), an operator
            the field's type does not support (and listing those it does), or a value that
            does not fit the field.
        """
        compiled = [self._compile(c, negate=False) for c in conditions]
        compiled += [self._leaf(name, "=", value, negate=False) for name, value in equals.items()]
        return attrs.evolve(self, conditions=(*self.conditions, *compiled))

    def order_by(self, *fields: str) -> Query:
        """Sort by *fields* (``"-amount"`` for descending), replacing any earlier order.

        ``id`` is always added as the last key, so the order is total and pages are stable.

        :raises ValidationError: for an unknown field or one that cannot be sorted.
        """
        return attrs.evolve(self, sort=sort_keys(self, fields))

    def limit(self, n: int | None) -> Query:
        """Return at most *n* records (``None`` for no limit)."""
        return attrs.evolve(self, max_rows=checked_limit(n, self.entity.name))

    def fields(self, *names: str) -> Query:
        """Read only the fields *names* (a projection): the records a list page shows need
        not carry whole rows. Each record holds ``id`` and the named fields, nothing else,
        so it cannot stand for a full record (updating it by id re-reads the row); order,
        pages, counts and aggregates are as without a projection.

        :param names: fields of the entity (``id`` is always included).
        :raises ValidationError: for an unknown field, or no field at all.
        :raises PermissionDeniedError: for a field hidden from the actor, as filters and
            aggregates refuse them.
        """
        if not names:
            raise ValidationError("fields() needs at least one field name, such as 'name'", entity=self.entity.name)
        targets = {"id": self._target("id", "read")}
        for name in names:
            target = self._target(name, "read")
            if not self.entity.has_field(target.name):  # the currency of a money field
                raise ValidationError({target.name: ["the currency comes with its money field; name that field"]},
                                      entity=self.entity.name)
            targets.setdefault(target.name, target)
        return attrs.evolve(self, projection=tuple(targets.values()))

    # -- running -------------------------------------------------------------------------------
    def statement(self) -> sa.Select[Any]:
        """The ``SELECT`` this query runs for :meth:`all` (for inspection and ``EXPLAIN``)."""
        statement = self._select(*self._columns()).order_by(*self._order_clauses())
        if self.max_rows is not None:
            statement = statement.limit(self.max_rows)
        return statement

    def all(self) -> list[Record]:
        """Every matching record, in order, as a list."""
        result = internal.execute(self.uow, self.statement())
        fast = self._row_converter(result.keys())
        if fast is not None:
            return list(map(fast, result.fetchall()))  # one fetch: a driver call per row costs on psycopg
        convert = self._converter()
        return [convert(row) for row in result.mappings()]

    def __iter__(self) -> Iterator[Record]:
        """Stream the matching records in batches (a server-side cursor on PostgreSQL), so an
        export of any size runs in constant memory. Consume it inside the unit of work."""
        convert = self._converter()
        result = internal.execute(self.uow, self.statement().execution_options(yield_per=_STREAM_BATCH))
        try:
            for row in result.mappings():
                yield convert(row)
        finally:
            result.close()

    def first(self) -> Record | None:
        """The first matching record in order, or ``None``."""
        row = internal.execute(self.uow, self.statement().limit(1)).mappings().first()
        return None if row is None else self._converter()(row)

    def ids(self) -> list[int]:
        """The ids of the matching records, in order."""
        statement = self._select(self.table.c.id).order_by(*self._order_clauses())
        if self.max_rows is not None:
            statement = statement.limit(self.max_rows)
        return [row[0] for row in internal.execute(self.uow, statement)]

    def count(self) -> int:
        """The number of matching records (order and limit do not apply)."""
        statement = self._select(sa.func.count()).select_from(self.table)
        return int(internal.execute(self.uow, statement).scalar_one())

    def page(self, size: int, after: str | None = None) -> Page:
        """One page of *size* records, after the position *after* (a previous ``next_cursor``).

        Keyset pagination: the cursor holds the sort-key values of the last record of the
        previous page, so every page costs the same however deep it is, and records inserted
        or deleted meanwhile neither repeat nor skip others.

        :raises ValidationError: for a size outside 1..10000, or a cursor that is malformed or
            was made by a query with another order.
        """
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_PAGE:
            raise ValidationError(f"page size must be a whole number from 1 to {_MAX_PAGE}, got {shown(size)}", entity=self.entity.name)
        keys = self._keys()
        statement = self._select(*self._columns(keys))
        if after is not None:
            statement = statement.where(_after(keys, _decode_cursor(after, keys, self.entity.name)))
        statement = statement.order_by(*self._order_clauses(keys)).limit(size + 1)
        rows = internal.execute(self.uow, statement).mappings().all()
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            next_cursor = _encode_cursor(keys, rows[-1])
        convert = self._converter()
        return Page(tuple(convert(row) for row in rows), next_cursor)

    # -- internals -----------------------------------------------------------------------------

    def _select(self, *columns: Any) -> sa.Select[Any]:
        return select_matching(self, *columns)

    def _aggregated(self, group_by: list[str]) -> tuple[Query, list[str]]:
        return self, group_by

    def _keys(self) -> tuple[_SortKey, ...]:
        keys = []
        for key in self.sort:
            keys.append(key)
            if key.target.name == "id":
                return tuple(keys)
        return (*keys, _SortKey(self._target("id", "sort"), False))

    def _order_clauses(self, keys: Sequence[_SortKey] | None = None) -> list[sa.ColumnElement[Any]]:
        return order_clauses(keys if keys is not None else self._keys())

    def _columns(self, keys: Sequence[_SortKey] = ()) -> list[Any]:
        """The columns a statement reads: the whole row, or the projection's columns and those
        of the sort *keys* (a page cursor holds their values)."""
        if self.projection is None:
            return [self.table]
        columns = [*(t.column for t in self.projection), *(t.currency for t in self.projection if t.currency is not None),
                   *(k.target.column for k in keys)]
        return list({id(c): c for c in columns}.values())

    def _converter(self) -> Callable[[Mapping[Any, Any]], Record]:
        """Turns a row of :meth:`_columns` into a record."""
        name, etype, convert = self.entity.name, self.entity, internal.record_maker(self.uow)
        if self.projection is None:
            return lambda row: convert(etype, row)
        fields = [t.field for t in self.projection]
        return lambda row: Record(name, {f.name: f.type.from_db(row, f.column) for f in fields})

    def _row_converter(self, keys: Sequence[str]) -> Callable[[sa.Row[Any]], Record] | None:
        """For a projection, what :meth:`_converter` makes, taking the values read as the row
        holds them by position (one C call per row; money from the row's mapping); ``None``
        for whole rows."""
        if self.projection is None:
            return None
        fields = [t.field for t in self.projection]
        names = [f.name for f in fields]
        position = {key: index for index, key in enumerate(keys)}
        plain = [type(f.type).from_db is FieldType.from_db for f in fields]
        if len(set(names)) != len(names) or any(simple and f.column not in position for f, simple in zip(fields, plain, strict=True)):
            return None
        picks = [position[f.column] if simple else 0 for f, simple in zip(fields, plain, strict=True)]
        pick = operator.itemgetter(*picks) if len(picks) > 1 else (lambda row: (row[picks[0]],))
        special = [(f.name, f.type.from_db, f.column) for f, simple in zip(fields, plain, strict=True) if not simple]
        name = self.entity.name

        def convert(row: sa.Row[Any]) -> Record:
            values = dict(zip(names, pick(row), strict=True))
            if special:
                mapping: Mapping[str, Any] = row._mapping  # type: ignore[assignment]
                for field_name, from_db, column in special:
                    values[field_name] = from_db(mapping, column)  # in place: the order of the fields stays
            return _owned(name, values)

        return convert

    def _target(self, name: str, purpose: str) -> _Target:
        """Resolve a field named by a filter, sort or aggregate (*purpose*); see
        :func:`~crmcore.query.conditions.resolve`."""
        return resolve(self.uow, self.entity, self.table, name, purpose)

    def __repr__(self) -> str:
        order = ",".join(k.token for k in self.sort) or "id"
        return f"<Query {self.entity.name} conditions={len(self.conditions)} order={order} limit={self.max_rows}>"


# -- helpers shared with selects -------------------------------------------------------------


def select_matching(owner: Query | Select, *columns: Any) -> sa.Select[Any]:
    """``SELECT columns`` restricted to the records *owner* matches: the actor's read
    predicate and the owner's conditions."""
    parts = [c for c in (base_where(owner.uow, owner.entity), *owner.conditions) if not isinstance(c, sa.sql.elements.True_)]
    return sa.select(*columns).where(*parts) if parts else sa.select(*columns)


def sort_keys(owner: Query | Select, fields: Sequence[str]) -> tuple[_SortKey, ...]:
    """The sort keys of *fields* (``"-amount"`` for descending) as *owner* resolves them.

    :raises ValidationError: for an unknown field or one that cannot be sorted.
    """
    keys: list[_SortKey] = []
    entity = owner.entity
    for token in fields:
        if not isinstance(token, str) or not token.strip("-+ "):
            raise ValidationError(f"sort keys are field names such as 'name' or '-amount', got {token!r}", entity=entity.name)
        token = token.strip()
        descending = token.startswith("-")
        target = owner._target(token.lstrip("-+"), "sort")
        if not target.field.type.sortable:
            sortable = ", ".join(entity.sortable)
            raise ValidationError(
                {target.name: [f"a {target.kind} field cannot be sorted; sortable fields: {sortable}"]},
                entity=entity.name,
            )
        if any(k.target.name == target.name for k in keys):
            continue
        keys.append(_SortKey(target, descending))
    return tuple(keys)


def order_clauses(keys: Sequence[_SortKey]) -> list[sa.ColumnElement[Any]]:
    """``ORDER BY`` clauses of *keys*: empty values last ascending, first descending."""
    clauses: list[sa.ColumnElement[Any]] = []
    for key in keys:
        column = key.target.column
        if not _nullable(column):
            clauses.append(column.desc() if key.descending else column.asc())
        else:
            clauses.append(column.desc().nulls_first() if key.descending else column.asc().nulls_last())
    return clauses


def checked_limit(n: int | None, entity: str) -> int | None:
    """*n* if it is a row limit (a whole number from 0 to 2**63 - 1, or ``None``).

    :raises ValidationError: otherwise.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= _MAX_LIMIT):
        raise ValidationError(f"limit must be a whole number from 0 to {_MAX_LIMIT}, got {shown(n)}", entity=entity)
    return n


# -- cursors --------------------------------------------------------------------------------


def _after(keys: Sequence[_SortKey], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after the position *values* in the order of *keys* (empty values are
    greater than every value: last ascending, first descending)."""
    branches: list[sa.ColumnElement[bool]] = []
    ties: list[sa.ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        column = key.target.column
        after: sa.ColumnElement[bool] | None
        if value is None:
            after = column.is_not(None) if key.descending else None
            tie = column.is_(None)
        else:
            if key.descending:
                after = column < value
            elif _nullable(column):
                after = sa.or_(column > value, column.is_(None))
            else:
                after = column > value
            tie = column == value
        if after is not None:
            branches.append(sa.and_(*ties, after) if ties else after)
        ties.append(tie)
    return sa.or_(sa.false(), *branches)


def _to_json(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return {"d": str(value)}
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"D": value.isoformat()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        (tag, text), = value.items()
        if tag == "d":
            return decimal.Decimal(text)
        if tag == "t":
            return dt.datetime.fromisoformat(text)
        if tag == "D":
            return dt.date.fromisoformat(text)
        raise ValueError(tag)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise ValueError(value)


def _encode_cursor(keys: Sequence[_SortKey], row: Mapping[Any, Any]) -> str:
    payload = {"k": [k.token for k in keys], "v": [_to_json(row[k.target.column.name]) for k in keys]}
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, keys: Sequence[_SortKey], entity: str) -> list[Any]:
    """The sort-key values a cursor holds, each checked by the type of its field: a cursor
    comes back from the caller, so it is input like any other."""
    if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR:
        raise ValidationError(
            f"cannot read page cursor {shown(cursor, 60)}; pass the next_cursor of a previous page unchanged",
            entity=entity,
        )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        tokens, values = payload["k"], [_from_json(v) for v in payload["v"]]
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        raise ValidationError(
            f"cannot read page cursor {cursor[:40]!r}; pass the next_cursor of a previous page unchanged",
            entity=entity,
        ) from None
    expected = [k.token for k in keys]
    if tokens != expected or len(values) != len(keys):
        made = ",".join(t if isinstance(t, str) else shown(t) for t in tokens) if isinstance(tokens, list) else shown(tokens)
        raise ValidationError(
            f"the page cursor belongs to a query sorted by {made[:200]}, but this one is "
            f"sorted by {','.join(expected)}; start again from the first page",
            entity=entity,
        )
    return [_cursor_value(key.target, value, entity) for key, value in zip(keys, values, strict=True)]


def _cursor_value(target: _Target, value: Any, entity: str) -> Any:
    """*value* of a cursor for the sort key *target*, parsed by the field's type (a money
    key holds the amount only)."""
    if value is None and _nullable(target.column):
        return None
    ftype = target.field.type
    try:
        if value is None:
            raise FieldValueError("an empty value, which this field never holds")
        if isinstance(ftype, MoneyType):
            return DecimalType(scale=ftype.scale).parse(value)
        return ftype.parse(value)
    except FieldValueError as exc:
        raise ValidationError(
            {target.name: [f"the page cursor holds a value this field cannot hold ({exc}); "
                           "pass the next_cursor of a previous page unchanged"]},
            entity=entity,
        ) from None
