"""Queries: filters, sorting, keyset pagination, counts and aggregates over one entity type.

``uow.query("opportunity")`` returns an immutable, chainable :class:`Query`. Conditions are
Python data, validated against the registry and compiled to SQLAlchemy Core with every value a
bound parameter::

    query = (
        uow.query("opportunity")
        .where(("amount", ">", 50000), stage="rfp_received")
        .where({"any": [("close_date", "<", "2026-07-01"), ("owner_id", "is null")]})
        .order_by("-amount", "name")
    )
    page = query.page(50)                       # Page(records, next_cursor)
    more = query.page(50, after=page.next_cursor)
    query.count()
    query.aggregate(group_by=["stage"], sum=["amount"])

A condition is one of:

- ``(field, operator, value)``, or ``(field, "is null")`` / ``(field, "is not null")``;
- ``{"all": [condition, ...]}``, ``{"any": [condition, ...]}``, ``{"not": condition}``;
- a text filter such as ``"amount>50000"`` (see :func:`parse_where`);
- keyword equality: ``.where(stage="won")`` (``None`` means ``is null``).

Semantics, the same on SQLite and PostgreSQL:

- Values go through the field's own :meth:`~crmcore.fields.Field.parse`, so ``"50000"`` works
  for money and ``"2026-01-01"`` for dates. ``contains`` and ``startswith`` take plain text,
  match case-insensitively (ASCII letters on SQLite, all letters on PostgreSQL) and treat
  ``%`` and ``_`` literally. On a multi-choice field, ``contains`` names choices: the record
  must carry each of them.
- Money compares amounts. A value that names its currency (``"50000 EUR"``, a
  :class:`~crmcore.money.Money`) also requires that currency; a bare number does not. Every
  money field ``amount`` has a companion filter and group field ``amount_currency``.
- Empty values: comparisons never match an empty (NULL) field, except ``!=`` and ``not in``,
  which do, as ``None != value`` does in Python; ``{"not": c}`` matches exactly the records
  ``c`` does not. An empty value (``None``, ``""``) with ``=`` means ``is null`` and with
  ``!=`` means ``is not null``.
- Sorting: empty values sort after every value ascending and before every value descending
  (``NULLS LAST`` / ``NULLS FIRST``); money sorts by amount; ``id`` is always the final key.
  Text compares and sorts by the database's collation (codepoint order on SQLite and on a
  PostgreSQL database created with the ``C`` collation).

Every statement starts from :func:`base_where`, the read predicate of (actor, entity type),
which the permission model compiles; the fields a query names all pass through
:meth:`Query._target`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.errors import PermissionDeniedError, ValidationError
from crmcore.fields import (
    EQUALITY,
    Decimal,
    Field,
    FieldType,
    FieldValueError,
    Integer,
    MoneyType,
    MultiChoice,
)
from crmcore.money import CURRENCIES, Money
from crmcore.records import Record

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["OPERATORS", "Page", "Query", "base_where", "parse_where"]

#: Every operator a condition may use.
OPERATORS = (
    "=", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith",
    "is null", "is not null", "between",
)
_NULL_OPERATORS = frozenset({"is null", "is not null"})
_TEXT_OPERATORS = frozenset({"contains", "startswith"})
_NEGATED = {"!=": "=", "not in": "in", "is not null": "is null"}
_STREAM_BATCH = 500
_MAX_PAGE = 10_000


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


# -- the companion currency field of money fields ------------------------------------------------


@attrs.frozen
class _Currency(FieldType):
    """The currency code of a money field, filterable and groupable as ``<field>_currency``."""

    kind: ClassVar[str] = "currency"
    operators: ClassVar[frozenset[str]] = EQUALITY

    def parse(self, value: Any) -> str:
        if isinstance(value, str) and value.strip().upper() in CURRENCIES:
            return value.strip().upper()
        raise self._fail(value)

    def describe(self) -> str:
        return "an ISO 4217 currency code such as 'EUR'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(3)


@attrs.frozen
class _Target:
    """A field a query names, with the column that stores it."""

    field: Field
    column: sa.ColumnElement[Any]
    currency: sa.ColumnElement[Any] | None = None  # money fields: the currency column

    @property
    def name(self) -> str:
        return self.field.name

    @property
    def kind(self) -> str:
        return self.field.type.kind


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
class Query:
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

    @classmethod
    def for_entity(cls, uow: UnitOfWork, entity: str) -> Query:
        """A query over every record of *entity* that ``uow.actor`` may read.

        :raises NotFoundError: for an unknown entity type, listing the known ones.
        """
        etype = uow.registry.entity(entity)
        return cls(uow, etype, uow.registry.table(entity))

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
        keys: list[_SortKey] = []
        for token in fields:
            if not isinstance(token, str) or not token.strip("-+ "):
                raise ValidationError(f"sort keys are field names such as 'name' or '-amount', got {token!r}", entity=self.entity.name)
            token = token.strip()
            descending = token.startswith("-")
            target = self._target(token.lstrip("-+"), "sort")
            if not target.field.type.sortable:
                sortable = ", ".join(self.entity.sortable)
                raise ValidationError(
                    {target.name: [f"a {target.kind} field cannot be sorted; sortable fields: {sortable}"]},
                    entity=self.entity.name,
                )
            if any(k.target.name == target.name for k in keys):
                continue
            keys.append(_SortKey(target, descending))
        return attrs.evolve(self, sort=tuple(keys))

    def limit(self, n: int | None) -> Query:
        """Return at most *n* records (``None`` for no limit)."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ValidationError(f"limit must be a whole number of at least 0, got {n!r}", entity=self.entity.name)
        return attrs.evolve(self, max_rows=n)

    # -- running -------------------------------------------------------------------------------
    def statement(self) -> sa.Select[Any]:
        """The ``SELECT`` this query runs for :meth:`all` (for inspection and ``EXPLAIN``)."""
        statement = self._select(self.table).order_by(*self._order_clauses())
        if self.max_rows is not None:
            statement = statement.limit(self.max_rows)
        return statement

    def all(self) -> list[Record]:
        """Every matching record, in order, as a list."""
        etype, convert = self.entity, self.uow._row_to_record
        return [convert(etype, row) for row in self.uow._execute(self.statement()).mappings()]

    def __iter__(self) -> Iterator[Record]:
        """Stream the matching records in batches (a server-side cursor on PostgreSQL), so an
        export of any size runs in constant memory. Consume it inside the unit of work."""
        etype, convert = self.entity, self.uow._row_to_record
        result = self.uow._execute(self.statement().execution_options(yield_per=_STREAM_BATCH))
        try:
            for row in result.mappings():
                yield convert(etype, row)
        finally:
            result.close()

    def first(self) -> Record | None:
        """The first matching record in order, or ``None``."""
        row = self.uow._execute(self.statement().limit(1)).mappings().first()
        return None if row is None else self.uow._row_to_record(self.entity, row)

    def ids(self) -> list[int]:
        """The ids of the matching records, in order."""
        statement = self._select(self.table.c.id).order_by(*self._order_clauses())
        if self.max_rows is not None:
            statement = statement.limit(self.max_rows)
        return [row[0] for row in self.uow._execute(statement)]

    def count(self) -> int:
        """The number of matching records (order and limit do not apply)."""
        statement = self._select(sa.func.count()).select_from(self.table)
        return int(self.uow._execute(statement).scalar_one())

    def page(self, size: int, after: str | None = None) -> Page:
        """One page of *size* records, after the position *after* (a previous ``next_cursor``).

        Keyset pagination: the cursor holds the sort-key values of the last record of the
        previous page, so every page costs the same however deep it is, and records inserted
        or deleted meanwhile neither repeat nor skip others.

        :raises ValidationError: for a size outside 1..10000, or a cursor that is malformed or
            was made by a query with another order.
        """
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_PAGE:
            raise ValidationError(f"page size must be a whole number from 1 to {_MAX_PAGE}, got {size!r}", entity=self.entity.name)
        keys = self._keys()
        statement = self._select(self.table)
        if after is not None:
            statement = statement.where(_after(keys, _decode_cursor(after, keys, self.entity.name)))
        statement = statement.order_by(*self._order_clauses(keys)).limit(size + 1)
        rows = self.uow._execute(statement).mappings().all()
        next_cursor = None
        if len(rows) > size:
            rows = rows[:size]
            next_cursor = _encode_cursor(keys, rows[-1])
        convert, etype = self.uow._row_to_record, self.entity
        return Page(tuple(convert(etype, row) for row in rows), next_cursor)

    def aggregate(
        self,
        *,
        group_by: Sequence[str] = (),
        count: bool = True,
        sum: Sequence[str] = (),  # noqa: A002 - the aggregate's name
        avg: Sequence[str] = (),
        min: Sequence[str] = (),  # noqa: A002
        max: Sequence[str] = (),  # noqa: A002
    ) -> list[dict[str, Any]]:
        """Counts, sums, averages, minimums and maximums of the matching records per group.

        Each row is a dict: the ``group_by`` fields, then ``count`` and ``sum_<field>``,
        ``avg_<field>``, ``min_<field>``, ``max_<field>``. Rows are ordered by the group
        values (empty last). Order and limit of the query do not apply.

        Results are exact on both databases: sums of money and decimal fields are ``Decimal``
        (money as :class:`~crmcore.money.Money`), summed as integers in SQL; an average is the
        exact sum divided by the number of non-empty values, rounded half-even to the field's
        scale (integers: 2 places). Aggregating a money field ``amount`` also groups by its
        currency: each row carries ``amount_currency``, so amounts in different currencies
        are never added, and records with no amount form their own row (currency ``None``).

        :param group_by: fields to group by (none: one row for all matching records).
        :param count: include ``count``, the number of records in the group.
        :param sum: integer, decimal or money fields to add up.
        :param avg: integer, decimal or money fields to average.
        :param min: fields with an order (numbers, money, dates, text) to take the least of.
        :param max: the same, for the greatest.
        :raises ValidationError: for an unknown field or one that cannot be aggregated so.
        """
        spec = {"sum": list(sum), "avg": list(avg), "min": list(min), "max": list(max)}
        return _Aggregate(self, list(group_by), count, spec).run()

    # -- internals -----------------------------------------------------------------------------
    def _select(self, *columns: Any) -> sa.Select[Any]:
        base = base_where(self.uow, self.entity)
        parts = [c for c in (base, *self.conditions) if not isinstance(c, sa.sql.elements.True_)]
        return sa.select(*columns).where(*parts) if parts else sa.select(*columns)

    def _keys(self) -> tuple[_SortKey, ...]:
        keys = []
        for key in self.sort:
            keys.append(key)
            if key.target.name == "id":
                return tuple(keys)
        return (*keys, _SortKey(self._target("id", "sort"), False))

    def _order_clauses(self, keys: Sequence[_SortKey] | None = None) -> list[sa.ColumnElement[Any]]:
        clauses: list[sa.ColumnElement[Any]] = []
        for key in keys if keys is not None else self._keys():
            column = key.target.column
            if not _nullable(column):
                clauses.append(column.desc() if key.descending else column.asc())
            else:
                clauses.append(column.desc().nulls_first() if key.descending else column.asc().nulls_last())
        return clauses

    def _target(self, name: str, purpose: str) -> _Target:
        """Resolve a field named by a filter, sort or aggregate (*purpose*).

        The one place a query turns a name into a column, so field-level access rules apply
        to every use of a field.

        :raises ValidationError: for an unknown field, listing the fields.
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        etype = self.entity
        if isinstance(name, str):
            base = name[: -len("_currency")] if name.endswith("_currency") and not etype.has_field(name) else name
            if base in self.uow.hidden_fields(etype.name):
                raise PermissionDeniedError(
                    f"{etype.name}.{base} is hidden from {self.uow.actor.username}; it cannot be used to {purpose}",
                    field=base, reasons=[f"field access of {etype.name}.{base} is hidden"],
                )
        if isinstance(name, str) and etype.has_field(name):
            field = etype.field(name)
            column = self.table.c[field.column]
            if isinstance(field.type, MoneyType):
                return _Target(field, column, self.table.c[f"{field.column}_currency"])
            return _Target(field, column)
        if isinstance(name, str) and name.endswith("_currency") and etype.has_field(name[: -len("_currency")]):
            money = etype.field(name[: -len("_currency")])
            if isinstance(money.type, MoneyType):
                field = Field(name, _Currency(), label=f"{money.label} currency", origin=money.origin,
                              column=f"{money.column}_currency")
                return _Target(field, self.table.c[field.column])
        known = [f.name for f in etype.all_fields]
        known += [f"{f.name}_currency" for f in etype.all_fields if isinstance(f.type, MoneyType)]
        raise ValidationError(
            {str(name): [f"unknown field; the fields of {etype.name} are: {', '.join(known)}"]},
            entity=etype.name,
        )

    def _compile(self, condition: Any, *, negate: bool) -> sa.ColumnElement[bool]:
        if isinstance(condition, str):
            return self._compile(parse_where(condition), negate=negate)
        if isinstance(condition, Mapping):
            if len(condition) != 1 or next(iter(condition)) not in ("all", "any", "not"):
                raise ValidationError(
                    f"a condition group is {{'all': [...]}}, {{'any': [...]}} or {{'not': condition}}, "
                    f"got {dict(condition)!r}", entity=self.entity.name,
                )
            kind, inner = next(iter(condition.items()))
            if kind == "not":
                return self._compile(inner, negate=not negate)
            if isinstance(inner, (str, Mapping)) or not isinstance(inner, Iterable):
                raise ValidationError(f"{kind!r} takes a list of conditions, got {inner!r}", entity=self.entity.name)
            parts = [self._compile(c, negate=negate) for c in inner]
            conjunction = (kind == "all") != negate  # De Morgan: not(all) is any(not)
            if conjunction:
                return sa.and_(sa.true(), *parts)
            return sa.or_(sa.false(), *parts)
        if isinstance(condition, Sequence) and condition and isinstance(condition[0], str):
            if len(condition) == 2 and isinstance(condition[1], str) and condition[1].lower() in _NULL_OPERATORS:
                return self._leaf(condition[0], condition[1], None, negate=negate)
            if len(condition) == 3 and isinstance(condition[1], str):
                return self._leaf(condition[0], condition[1], condition[2], negate=negate)
        raise ValidationError(
            f"cannot read condition {condition!r}; write (field, operator, value), (field, 'is null'), "
            "a group such as {'all': [...]}, or a text filter such as 'amount>50000'",
            entity=self.entity.name,
        )

    def _leaf(self, name: str, op: str, value: Any, *, negate: bool) -> sa.ColumnElement[bool]:
        target = self._target(name, "filter")
        op = " ".join(op.lower().split()) if isinstance(op, str) else op
        if op not in OPERATORS:
            raise ValidationError(
                {target.name: [f"unknown operator {op!r}; operators are: {', '.join(OPERATORS)}"]},
                entity=self.entity.name,
            )
        allowed = target.field.type.operators
        if op not in allowed:
            shown = ", ".join(o for o in OPERATORS if o in allowed)
            raise ValidationError(
                {target.name: [f"operator {op!r} does not apply to a {target.kind} field; use one of: {shown}"]},
                entity=self.entity.name,
            )
        if op in ("=", "!=") and _is_empty(value):
            op = "is null" if op == "=" else "is not null"
        if op in _NEGATED:
            op, negate = _NEGATED[op], not negate
        column = target.column
        if op == "is null":
            return column.is_not(None) if negate else column.is_(None)
        expression = self._expression(target, op, value)
        # *expression* is NULL exactly when the column is; a negated leaf matches empty values
        if negate:
            return sa.or_(sa.not_(expression), column.is_(None))
        return expression

    def _expression(self, target: _Target, op: str, value: Any) -> sa.ColumnElement[bool]:
        column = target.column
        if op in _TEXT_OPERATORS:
            if isinstance(target.field.type, MultiChoice):
                chosen = self._parse(target, op, value)
                text = sa.type_coerce(column, sa.Text())
                likes = [text.like(f"%{_like_escape(json.dumps(c))}%", escape="\\") for c in chosen]
                return sa.and_(*likes)
            fragment = _fragment(target, op, value, self.entity.name)
            pattern = _like_escape(fragment) + "%"
            if op == "contains":
                pattern = "%" + pattern
            return column.ilike(pattern, escape="\\")
        if op == "in":
            items = _items(target, value, self.entity.name)
            parsed = [self._parse(target, op, item) for item in items]
            if target.currency is not None and any(_names_currency(i) for i in items):
                return sa.or_(sa.false(), *(self._money(target, "=", p, True) for p in parsed))
            if isinstance(target.field.type, MoneyType):
                parsed = [p.amount for p in parsed]
            return column.in_(parsed)
        if op == "between":
            if isinstance(value, str) and ".." in value:
                value = value.split("..", 1)
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or len(value) != 2:
                raise ValidationError(
                    {target.name: [f"'between' takes two values (low, high) or text 'low..high', got {value!r}"]},
                    entity=self.entity.name,
                )
            low, high = (self._parse(target, op, v) for v in value)
            if target.currency is not None:
                explicit = _names_currency(value[0]) or _names_currency(value[1])
                if explicit and low.currency != high.currency:
                    raise ValidationError(
                        {target.name: [f"'between' bounds are in different currencies: {low} and {high}"]},
                        entity=self.entity.name,
                    )
                expression = column.between(low.amount, high.amount)
                return sa.and_(expression, target.currency == low.currency) if explicit else expression
            return column.between(low, high)
        parsed = self._parse(target, op, value)
        if target.currency is not None:
            return self._money(target, op, parsed, _names_currency(value))
        return _compare(column, op, parsed)

    def _money(self, target: _Target, op: str, money: Money, explicit: bool) -> sa.ColumnElement[bool]:
        expression = _compare(target.column, op, money.amount)
        if explicit:
            assert target.currency is not None
            return sa.and_(expression, target.currency == money.currency)
        return expression

    def _parse(self, target: _Target, op: str, value: Any) -> Any:
        try:
            parsed = target.field.parse(value)
        except FieldValueError as exc:
            raise ValidationError(
                {target.name: [f"cannot filter with {op!r} on {value!r}: {exc}"]}, entity=self.entity.name
            ) from None
        if parsed is None:
            raise ValidationError(
                {target.name: [f"{op!r} needs a value; to find empty fields use 'is null'"]}, entity=self.entity.name
            )
        return parsed

    def __repr__(self) -> str:
        order = ",".join(k.token for k in self.sort) or "id"
        return f"<Query {self.entity.name} conditions={len(self.conditions)} order={order} limit={self.max_rows}>"


# -- helpers ----------------------------------------------------------------------------------


def _nullable(column: sa.ColumnElement[Any]) -> bool:
    return bool(getattr(column, "nullable", True)) and not getattr(column, "primary_key", False)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _compare(column: sa.ColumnElement[Any], op: str, value: Any) -> sa.ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    return column >= value  # ">="


def _names_currency(value: Any) -> bool:
    """Whether a money filter value states its currency (then the currency must match too)."""
    if isinstance(value, Money):
        return True
    if isinstance(value, Mapping):
        return bool(value.get("currency"))
    return isinstance(value, str) and re.search(r"[A-Za-z]", value) is not None


def _items(target: _Target, value: Any, entity: str) -> list[Any]:
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ValidationError(
            {target.name: [f"'in' takes a list of values or text 'a,b,c', got {value!r}"]}, entity=entity
        )
    return list(value)


def _fragment(target: _Target, op: str, value: Any, entity: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({target.name: [f"{op!r} needs some text, got {value!r}"]}, entity=entity)
    return value.strip()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        tokens, values = payload["k"], [_from_json(v) for v in payload["v"]]
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise ValidationError(
            f"cannot read page cursor {cursor[:40]!r}; pass the next_cursor of a previous page unchanged",
            entity=entity,
        ) from None
    expected = [k.token for k in keys]
    if tokens != expected or len(values) != len(keys):
        raise ValidationError(
            f"the page cursor belongs to a query sorted by {','.join(map(str, tokens))}, but this one is "
            f"sorted by {','.join(expected)}; start again from the first page",
            entity=entity,
        )
    return values


# -- aggregates -------------------------------------------------------------------------------

_SUMMABLE = (Integer, Decimal, MoneyType)
_FUNCTIONS = ("sum", "avg", "min", "max")


class _Aggregate:
    """One run of :meth:`Query.aggregate`.

    Money measures group by the currency column as well. PostgreSQL hashes that extra key at
    no cost; SQLite would sort the whole table for it, so there, with a single money field, the
    statement groups by the requested fields only and reads the least and greatest currency of
    each group: a group holding one currency (the usual case) gives its rows directly, and a
    group mixing currencies makes the statement run again grouped by currency.
    """

    def __init__(self, query: Query, group_by: list[str], count: bool, spec: dict[str, list[str]]) -> None:
        self.query = query
        self.count = count
        self.groups = [self._group(name) for name in group_by]
        self.measures: list[tuple[str, _Target]] = []
        for function in _FUNCTIONS:
            for name in spec[function]:
                self.measures.append((function, self._measure(function, name)))
        money: dict[str, _Target] = {}
        for _, target in self.measures:
            if target.currency is not None:
                money.setdefault(target.name, target)
        self.money = list(money.values())
        # the SQL aggregates needed, labelled by position so statements keep one shape
        self.needed: dict[tuple[str, str], sa.ColumnElement[Any]] = {}
        for function, target in self.measures:
            if function in ("sum", "avg"):
                self.needed.setdefault(("sum", target.name), sa.func.sum(target.column))
            if function == "avg":
                self.needed.setdefault(("count", target.name), sa.func.count(target.column))
            if function in ("min", "max"):
                self.needed.setdefault((function, target.name), getattr(sa.func, function)(target.column))

    def _group(self, name: str) -> _Target:
        target = self.query._target(name, "group")
        ftype = target.field.type
        if not ftype.sortable or isinstance(ftype, MoneyType):
            hint = f"; group by {name}_currency for its currency" if isinstance(ftype, MoneyType) else ""
            raise ValidationError(
                {target.name: [f"cannot group by a {target.kind} field{hint}"]}, entity=self.query.entity.name
            )
        return target

    def _measure(self, function: str, name: str) -> _Target:
        target = self.query._target(name, "aggregate")
        ftype = target.field.type
        if function in ("sum", "avg"):
            ok = isinstance(ftype, _SUMMABLE)
            wanted = "integer, decimal or money"
        else:
            ok = "<" in ftype.operators and ftype.sortable
            wanted = "number, money, date, time or text"
        if not ok:
            raise ValidationError(
                {target.name: [f"cannot take the {function} of a {target.kind} field; it needs a {wanted} field"]},
                entity=self.query.entity.name,
            )
        return target

    def run(self) -> list[dict[str, Any]]:
        sqlite = self.query.uow.connection.dialect.name == "sqlite"
        rows = self._single_currency() if len(self.money) == 1 and sqlite else None
        if rows is None:
            rows = self._grouped_by_currency()
        names = list(dict.fromkeys([*(g.name for g in self.groups), *(f"{m.name}_currency" for m in self.money)]))
        return sorted(rows, key=lambda row: [_sort_value(row[name]) for name in names])

    def _statement(self, extra: Sequence[sa.ColumnElement[Any]], keys: Sequence[sa.ColumnElement[Any]]) -> sa.Select[Any]:
        columns = [
            *(column.label(f"g{i}") for i, column in enumerate(keys)),
            sa.func.count().label("n"),
            *extra,
            *(expression.label(f"a{i}") for i, expression in enumerate(self.needed.values())),
        ]
        statement = self.query._select(*columns).select_from(self.query.table)
        return statement.group_by(*keys) if keys else statement

    def _values(self, row: sa.Row[Any]) -> dict[tuple[str, str], Any]:
        mapping = row._mapping
        return {key: mapping[f"a{i}"] for i, key in enumerate(self.needed)}

    def _grouped_by_currency(self) -> list[dict[str, Any]]:
        keys = [g.column for g in self.groups] + [m.currency for m in self.money if m.currency is not None]
        result = []
        for row in self.query.uow._execute(self._statement([], keys)):
            values = list(row[: len(keys)])
            currencies = dict(zip((m.name for m in self.money), values[len(self.groups):], strict=True))
            result.append(self._row(values[: len(self.groups)], currencies, row.n, self._values(row)))
        if not result and not self.groups:  # totals of nothing: one row, as without currencies
            result.append(self._row([], dict.fromkeys(m.name for m in self.money), 0, dict.fromkeys(self.needed)))
        return result

    def _single_currency(self) -> list[dict[str, Any]] | None:
        money = self.money[0]
        assert money.currency is not None
        extra = [
            sa.func.count(money.column).label("filled"),
            sa.func.min(money.currency).label("low"),
            sa.func.max(money.currency).label("high"),
        ]
        others = any(target.name != money.name for _, target in self.measures)
        result = []
        for row in self.query.uow._execute(self._statement(extra, [g.column for g in self.groups])):
            groups, values = list(row[: len(self.groups)]), self._values(row)
            if row.low != row.high:
                return None
            if row.low is None or row.filled == row.n:
                result.append(self._row(groups, {money.name: row.low}, row.n, values))
                continue
            if others:  # records without an amount would need their own figures
                return None
            empty = dict.fromkeys(values)
            result.append(self._row(groups, {money.name: row.low}, row.filled, values))
            result.append(self._row(groups, {money.name: None}, row.n - row.filled, empty))
        return result

    def _row(self, groups: list[Any], currencies: dict[str, str | None], n: int, values: dict[tuple[str, str], Any]) -> dict[str, Any]:
        row: dict[str, Any] = {g.name: value for g, value in zip(self.groups, groups, strict=True)}
        for name, currency in currencies.items():
            row[f"{name}_currency"] = currency
        if self.count:
            row["count"] = int(n)
        for function, target in self.measures:
            row[f"{function}_{target.name}"] = self._final(function, target, values, currencies.get(target.name))
        return row

    def _final(self, function: str, target: _Target, values: dict[tuple[str, str], Any], currency: str | None) -> Any:
        ftype = target.field.type
        if function == "avg":
            total, filled = values[("sum", target.name)], values[("count", target.name)]
            if not filled or total is None:
                return None
            scale = 2 if isinstance(ftype, Integer) else ftype.scale  # type: ignore[attr-defined]
            with decimal.localcontext() as context:
                context.prec = 60
                value: Any = (decimal.Decimal(total) / int(filled)).quantize(
                    decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_EVEN
                )
        else:
            value = values[("sum" if function == "sum" else function, target.name)]
            if value is None:
                return None
            if isinstance(ftype, Integer):
                value = int(value)
        if target.currency is not None:
            return None if currency is None else Money(value, currency)
        return value


def _sort_value(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


# -- the text filter syntax ---------------------------------------------------------------------

_FIELD = r"(?P<field>[A-Za-z_][A-Za-z0-9_]*)"
_SYMBOLIC = re.compile(rf"^\s*{_FIELD}\s*(?P<op>>=|<=|!=|=|>|<|~|\^)(?P<value>.*)$", re.DOTALL)
_WORDS = re.compile(
    rf"^\s*{_FIELD}\s+(?P<op>is\s+not\s+null|is\s+null|not\s+in|in|between|contains|startswith)\b(?P<value>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_SYMBOLS = {"~": "contains", "^": "startswith"}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_where(text: str) -> tuple[Any, ...]:
    """Read one text filter into a condition for :meth:`Query.where`.

    Grammar (spaces around operators are optional; keywords are case-insensitive)::

        filter   = field op value
                 | field "in" list | field "not in" list
                 | field "between" value ".." value
                 | field "is null" | field "is not null"
        op       = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" (contains) | "^" (startswith)
                 | "contains" | "startswith"
        list     = value { "," value }, optionally in parentheses or brackets
        field    = a field name such as amount, stage, custom_region, amount_currency
        value    = the rest of the text, trimmed; quote it ('...' or "...") to keep
                   surrounding spaces

    Examples: ``amount>50000``, ``amount >= 50000 EUR``, ``stage=rfp_received``,
    ``stage!=won``, ``email~acme.test``, ``name^Ac``, ``close_date>=2026-01-01``,
    ``stage in won,lost``, ``owner_id is null``, ``amount between 10..20``.

    The result is ``(field, operator, value)`` (``(field, operator)`` for the null tests; a
    list for ``in``; a ``(low, high)`` pair for ``between``), values still text: the query
    parses them with the field's type and reports unknown fields.

    :raises ValidationError: for text that does not follow the grammar, saying what is wrong.
    """
    if not isinstance(text, str):
        raise ValidationError(f"a text filter is a string such as 'amount>50000', got {text!r}")
    match = _WORDS.match(text) or _SYMBOLIC.match(text)
    if match is None:
        raise ValidationError(
            f"cannot read filter {text!r}: expected FIELD OPERATOR VALUE such as 'amount>50000', "
            "'stage=won', 'email~acme.test', 'stage in won,lost', 'owner_id is null' or "
            "'amount between 10..20'; operators: = != < <= > >= ~ ^ in, not in, between, "
            "contains, startswith, is null, is not null"
        )
    field = match.group("field")
    op = " ".join(match.group("op").lower().split())
    op = _SYMBOLS.get(op, op)
    rest = match.group("value")
    if op in _NULL_OPERATORS:
        if rest.strip():
            raise ValidationError(f"cannot read filter {text!r}: nothing may follow {op!r}, got {rest.strip()!r}")
        return (field, op)
    if op in ("in", "not in"):
        inner = rest.strip()
        if len(inner) >= 2 and (inner[0], inner[-1]) in (("(", ")"), ("[", "]")):
            rest = inner[1:-1]
        items = [_unquote(part) for part in rest.split(",")]
        if not rest.strip() or any(not item for item in items):
            raise ValidationError(f"cannot read filter {text!r}: {op!r} takes values separated by commas, such as 'won,lost'")
        return (field, op, items)
    if op == "between":
        low, sep, high = rest.partition("..")
        if not sep or not low.strip() or not high.strip():
            raise ValidationError(f"cannot read filter {text!r}: 'between' takes LOW..HIGH, such as 'amount between 10..20'")
        return (field, op, (_unquote(low), _unquote(high)))
    value = _unquote(rest)
    if not value and op not in ("=", "!="):
        raise ValidationError(f"cannot read filter {text!r}: {op!r} needs a value after it")
    if not rest.strip() and op in ("=", "!="):
        hint = "is null" if op == "=" else "is not null"
        raise ValidationError(f"cannot read filter {text!r}: no value after {op!r}; to test for empty values write '{field} {hint}'")
    return (field, op, value)
