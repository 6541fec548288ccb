"""Access predicates: one small tree, two evaluators.

The security model compiles a decision for (actor, entity, action) into a :class:`Predicate`.
The same tree becomes a SQL ``WHERE`` clause (:meth:`Predicate.sql`) for every read path, and
is evaluated in memory against one record (:meth:`Predicate.test`) for single-record checks.
Membership in a set of ids defined by the database (the users holding some roles, say) is an
:class:`IdSet`: a SQL subquery in the first case, the same subquery run once in the second, so
both answers come from one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import sqlalchemy as sa

__all__ = ["ALWAYS", "NEVER", "All", "Any_", "Const", "FieldEquals", "FieldIn", "IdSet", "Not", "Predicate", "all_of", "any_of"]


class Predicate:
    """A condition on the columns of one entity's table."""

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        """The condition as a SQL expression over *table*."""
        raise TypeError(f"{type(self).__name__} cannot be compiled")  # overridden by every node

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        """Evaluate against one record's column values; *run* executes an :class:`IdSet` query."""
        raise TypeError(f"{type(self).__name__} cannot be evaluated")  # overridden by every node


@attrs.frozen
class Const(Predicate):
    value: bool

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.true() if self.value else sa.false()

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        return self.value


ALWAYS = Const(True)
NEVER = Const(False)


@attrs.frozen
class FieldEquals(Predicate):
    """``column = value`` (``value`` may be ``None``: ``column IS NULL``)."""

    column: str
    value: Any

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        column = _checked(table.c[self.column])
        return column.is_(None) if self.value is None else column == self.value

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        return values.get(self.column) == self.value


@attrs.frozen
class IdSet:
    """A set of ids given literally, by a query returning one column, or both (union)."""

    ids: frozenset[Any] = frozenset()
    query: sa.Select[Any] | None = attrs.field(default=None, eq=False)
    label: str = ""

    def is_empty(self) -> bool:
        return not self.ids and self.query is None


@attrs.frozen
class FieldIn(Predicate):
    """``column IN ids`` (never true for ``NULL``)."""

    column: str
    ids: IdSet

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        column = _checked(table.c[self.column])
        parts: list[sa.ColumnElement[bool]] = []
        if self.ids.ids:
            parts.append(column.in_(sorted(self.ids.ids)))
        if self.ids.query is not None:
            parts.append(column.in_(self.ids.query))
        if not parts:
            return sa.false()
        return parts[0] if len(parts) == 1 else sa.or_(*parts)

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        value = values.get(self.column)
        if value is None:
            return False
        if value in self.ids.ids:
            return True
        return self.ids.query is not None and value in run(self.ids.query)


@attrs.frozen
class All(Predicate):
    parts: tuple[Predicate, ...]

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(*(p.sql(table) for p in self.parts))

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        return all(p.test(values, run) for p in self.parts)


@attrs.frozen
class Any_(Predicate):
    parts: tuple[Predicate, ...]

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.or_(*(p.sql(table) for p in self.parts))

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        return any(p.test(values, run) for p in self.parts)


@attrs.frozen
class Not(Predicate):
    part: Predicate

    def sql(self, table: sa.Table) -> sa.ColumnElement[bool]:
        # NULL-safe: a comparison with NULL is "unknown", which NOT keeps unknown; coalesce to false
        return sa.not_(sa.func.coalesce(self.part.sql(table), sa.false()))

    def test(self, values: Mapping[str, Any], run: Callable[[sa.Select[Any]], set[Any]]) -> bool:
        return not self.part.test(values, run)


def _checked(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The column as an access check reads it: ``column + 0`` for whole numbers.

    The arithmetic keeps every value (and NULL) but hides the column's index from the planner,
    so the database drives a query by the query's own filters and sort and checks access on
    each candidate row. Without it the planner may walk the owner indexes (an OR of index
    scans): fast for a user who owns little, several times slower for a manager who sees much,
    and a secured page should cost about what the same page costs the system actor.
    """
    if isinstance(column.type, sa.Integer):
        return column + 0
    return column


def all_of(parts: Iterable[Predicate]) -> Predicate:
    """Conjunction, simplified: constants fold away."""
    kept = []
    for part in parts:
        if part == NEVER:
            return NEVER
        if part != ALWAYS:
            kept.append(part)
    if not kept:
        return ALWAYS
    return kept[0] if len(kept) == 1 else All(tuple(kept))


def any_of(parts: Iterable[Predicate]) -> Predicate:
    """Disjunction, simplified: constants fold away, empty sets drop out."""
    kept = []
    for part in parts:
        if part == ALWAYS:
            return ALWAYS
        if part == NEVER or (isinstance(part, FieldIn) and part.ids.is_empty()):
            continue
        kept.append(part)
    if not kept:
        return NEVER
    return kept[0] if len(kept) == 1 else Any_(tuple(kept))
