"""Aggregates: the counts, sums, averages, minimums and maximums of
:meth:`~crmcore.query.Query.aggregate` and :meth:`~crmcore.query.Select.aggregate`.

The query or select given provides ``uow``, ``entity``, ``source`` (what the statement reads
from), ``_target(name, purpose)`` and ``_select(*columns)`` (the statement with its read
predicates and conditions applied).
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.fields import Decimal, Integer, MoneyType
from crmcore.money import Money
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.query.base import Query
    from crmcore.query.conditions import _Target
    from crmcore.query.select import Select

__all__ = ["Aggregates"]

_SUMMABLE = (Integer, Decimal, MoneyType)
_FUNCTIONS = ("sum", "avg", "min", "max")


class Aggregates:
    """The :meth:`aggregate` of :class:`~crmcore.query.Query` and
    :class:`~crmcore.query.Select`, mixed into both: they provide ``_aggregated(group_by)``,
    the query or select to aggregate and its group fields."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by the class this is mixed into

        def _aggregated(self, group_by: list[str]) -> tuple[Query | Select, list[str]]: ...

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

        Each row is a dict: the group fields (a select's :meth:`~crmcore.query.Select.group_by`
        fields, then *group_by*), ``<money field>_currency`` for each money field aggregated,
        ``count``, then ``sum_<field>``, ``avg_<field>``, ``min_<field>``, ``max_<field>`` (the
        field as named: a select also takes dotted paths, ``sum_account_id.annual_revenue``
        say). Rows are ordered by the group values (empty last). Order and limit do not apply.

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
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        spec = {"sum": list(sum), "avg": list(avg), "min": list(min), "max": list(max)}
        source, groups = self._aggregated(list(group_by))
        return _Aggregate(source, groups, count, spec).run()


class _Aggregate:
    """One run of :meth:`Query.aggregate`.

    Money measures group by the currency column as well. PostgreSQL hashes that extra key at
    no cost; SQLite would sort the whole table for it, so there, with a single money field, the
    statement groups by the requested fields only and reads the least and greatest currency of
    each group: a group holding one currency (the usual case) gives its rows directly, and a
    group mixing currencies makes the statement run again grouped by currency.
    """

    def __init__(self, query: Query | Select, group_by: list[str], count: bool, spec: dict[str, list[str]]) -> None:
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
        statement = self.query._select(*columns).select_from(self.query.source)
        return statement.group_by(*keys) if keys else statement

    def _values(self, row: sa.Row[Any]) -> dict[tuple[str, str], Any]:
        mapping = row._mapping
        return {key: mapping[f"a{i}"] for i, key in enumerate(self.needed)}

    def _grouped_by_currency(self) -> list[dict[str, Any]]:
        keys = [g.column for g in self.groups] + [m.currency for m in self.money if m.currency is not None]
        result = []
        for row in internal.execute(self.query.uow, self._statement([], keys)):
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
        for row in internal.execute(self.query.uow, self._statement(extra, [g.column for g in self.groups])):
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

