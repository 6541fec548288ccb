"""Rule conditions evaluated over a batch of records at once (the rule engine's batch path).

:func:`batch_filter` turns a condition into a filter over the rows of a :class:`Batch`: ``and``
and ``or`` narrow the rows part by part, a comparison of a field with constants runs over the
field's column in one loop (thresholds with one sort of the column), anything else runs
compiled row by row. Each row gets what the compiled condition
(:mod:`crmcore.workflow.compiled`) gives for it.
"""

from __future__ import annotations

import bisect
import decimal
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.money import Money
from crmcore.workflow.compiled import compile_condition
from crmcore.workflow.conditions import Compare, Condition, ListOf, Literal, Logical, Name, Node
from crmcore.workflow.operations import _compare

if TYPE_CHECKING:
    from crmcore.workflow.engine import Lookups

__all__ = ["Batch", "Filter", "batch_filter"]


class Batch:
    """The records one pass of a rule over a batch looks at: their values, each field's values
    as a column (read once, for every condition of the pass) and the lookups of references."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], lookups: Lookups) -> None:
        self.rows = rows
        self.lookups = lookups
        self._columns: dict[str, list[Any]] = {}
        self._numbers: dict[str, list[Any]] = {}
        self._ranked: dict[str, tuple[list[Any], list[int], list[int]]] = {}
        self.everyone = list(range(len(rows)))

    def column(self, name: str) -> list[Any]:
        found = self._columns.get(name)
        if found is None:
            found = self._columns[name] = [row.get(name) for row in self.rows]
        return found

    def numbers(self, name: str) -> list[Any]:
        """The column of *name* as the numbers ordered comparisons use (a money amount, an
        integer or decimal as it is), :data:`_OTHER` for any other value."""
        found = self._numbers.get(name)
        if found is None:
            found = self._numbers[name] = [
                v.amount if (kind := type(v)) is Money else v if kind is int or kind is decimal.Decimal else _OTHER
                for v in self.column(name)
            ]
        return found


    def ranked(self, name: str) -> tuple[list[Any], list[int], list[int]]:
        """``(numbers ascending, their row indexes, indexes of the rows whose value is no
        number)`` of the column of *name*: one sort serves every threshold on the column."""
        found = self._ranked.get(name)
        if found is None:
            numbers = self.numbers(name)
            order = sorted((i for i in self.everyone if numbers[i] is not _OTHER), key=numbers.__getitem__)
            others = [i for i in self.everyone if numbers[i] is _OTHER] if len(order) < len(numbers) else []
            found = self._ranked[name] = ([numbers[i] for i in order], order, others)
        return found


#: Stands for a value that is no number in :meth:`Batch.numbers`.
_OTHER = object()


#: ``filter(batch, indexes) -> indexes``: the rows (by index, in order) a condition holds for.
Filter = Callable[[Batch, list[int]], list[int]]
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def batch_filter(node: Node) -> Filter:
    """A condition evaluated over the rows of a batch, giving what the compiled condition
    (:mod:`crmcore.workflow.compiled`) gives for each row: ``and`` and ``or`` narrow the rows
    part by part, a comparison of a field with constants runs over the field's column in one
    loop (as ``_fast_compare`` does), anything else runs compiled row by row."""
    if isinstance(node, Logical):
        parts = [batch_filter(part) for part in node.parts]
        if node.op == "and":
            def every(batch: Batch, indexes: list[int]) -> list[int]:
                for part in parts:
                    if not indexes:
                        break
                    indexes = part(batch, indexes)
                return indexes

            return every

        def some(batch: Batch, indexes: list[int]) -> list[int]:
            hit: set[int] = set()
            rest = indexes
            for part in parts:
                if not rest:
                    break
                found = part(batch, rest)
                if found:
                    hit.update(found)
                    rest = [i for i in rest if i not in hit]
            return [i for i in indexes if i in hit]

        return some
    if isinstance(node, Compare):
        fast = _column_compare(node)
        if fast is not None:
            return fast
    test = compile_condition(Condition(node, None))

    def each(batch: Batch, indexes: list[int]) -> list[int]:
        rows, lookups = batch.rows, batch.lookups
        resolve = lookups.resolve
        out = []
        for index in indexes:
            lookups.at = index
            if test(rows[index], resolve, {}):
                out.append(index)
        return out

    return each


def _column_compare(node: Compare) -> Filter | None:
    """The comparisons ``_fast_compare`` shortcuts (a field against constants), over a column."""
    left = node.left
    if not isinstance(left, Name) or len(left.path) != 1 or left.path in (("today",), ("now",)):
        return None
    name, op, right = left.path[0], node.op, node.right
    if op in _ORDER and isinstance(right, Literal) and type(right.value) in (int, decimal.Decimal):
        constant, order = right.value, _ORDER[op]

        def ordered(batch: Batch, indexes: list[int]) -> list[int]:
            if indexes is batch.everyone:  # the rows past the threshold, back in batch order
                numbers, rows, others = batch.ranked(name)
                if op == ">":
                    found = rows[bisect.bisect_right(numbers, constant):]
                elif op == ">=":
                    found = rows[bisect.bisect_left(numbers, constant):]
                elif op == "<":
                    found = rows[:bisect.bisect_left(numbers, constant)]
                else:
                    found = rows[:bisect.bisect_right(numbers, constant)]
                if others:  # a missing value is never above or below anything
                    column = batch.column(name)
                    found = found + [i for i in others if column[i] is not None and _compare(op, column[i], constant)]
                return sorted(found)
            numbers = batch.numbers(name)
            column = batch.column(name)
            return [i for i in indexes if (order(n, constant) if (n := numbers[i]) is not _OTHER else _compare(op, column[i], constant))]

        return ordered
    if op in ("=", "!=") and isinstance(right, Literal) and type(right.value) is str:
        text, equal = right.value, op == "="

        def same(batch: Batch, indexes: list[int]) -> list[int]:  # a missing value is unequal to any text
            column = batch.column(name)
            return [i for i in indexes if (
                (v == text) is equal if type(v := column[i]) is str else (not equal) if v is None else _compare(op, v, text))]

        return same
    if op in ("in", "not in") and isinstance(right, ListOf) and right.items and all(
        isinstance(i, Literal) and type(i.value) is str for i in right.items
    ):
        items = [i.value for i in right.items]  # type: ignore[attr-defined]
        texts, inside = frozenset(items), op == "in"

        def member(batch: Batch, indexes: list[int]) -> list[int]:  # a missing value is neither in nor not in
            column = batch.column(name)
            return [i for i in indexes if (
                (v in texts) is inside if type(v := column[i]) is str else False if v is None else _compare(op, v, items))]

        return member
    return None
