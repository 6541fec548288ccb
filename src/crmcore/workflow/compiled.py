"""Conditions compiled into nested Python closures, for rules evaluated many times.

:func:`compile_condition` walks a parsed :class:`~crmcore.workflow.conditions.Condition` once
and returns a function that gives the same answers as :meth:`Condition.evaluate`: it uses the
same comparison and arithmetic helpers, treats missing values the same way and records the same
values it looked at. No text is ever compiled or evaluated: the closures are built from the
tree, so only the operations of the condition language exist. A plain field name is read from
the record's values directly; ``ref.field`` names go through the lookup.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
from collections.abc import Callable, Mapping
from typing import Any

from crmcore.money import Money
from crmcore.workflow.conditions import (
    Arithmetic,
    Compare,
    Condition,
    ListOf,
    Literal,
    Logical,
    Name,
    Negation,
    Negative,
    Node,
)
from crmcore.workflow.operations import _arith, _compare, _negate, _Unknown

__all__ = ["Compiled", "compile_condition"]

Lookup = Callable[[tuple[str, ...]], Any]
#: ``compiled(values, lookup, seen) -> bool``; *seen* receives the values looked at.
Compiled = Callable[[Mapping[str, Any], Lookup, dict[str, Any]], bool]
_Part = Callable[[Mapping[str, Any], Lookup, dict[str, Any]], Any]


def compile_condition(condition: Condition) -> Compiled:
    """A function evaluating *condition* like :meth:`Condition.evaluate`, only faster."""
    return _truth(condition.root)


def _value(node: Node) -> _Part:
    if isinstance(node, Literal):
        constant = node.value
        return lambda values, lookup, seen: constant
    if isinstance(node, Name):
        return _name(node)
    if isinstance(node, ListOf):
        items = [_value(item) for item in node.items]
        return lambda values, lookup, seen: [item(values, lookup, seen) for item in items]
    if isinstance(node, Negative):
        operand = _value(node.operand)

        def negative(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> Any:
            return _negate(operand(values, lookup, seen))

        return negative
    if isinstance(node, Arithmetic):
        op, left, right = node.op, _value(node.left), _value(node.right)
        return lambda values, lookup, seen: _arith(op, left(values, lookup, seen), right(values, lookup, seen))
    return _truth(node)


def _name(node: Name) -> _Part:
    key = ".".join(node.path)
    if node.path == ("today",):
        def today(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> Any:
            seen[key] = found = dt.date.today()
            return found

        return today
    if node.path == ("now",):
        def now(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> Any:
            seen[key] = found = dt.datetime.now(dt.UTC)
            return found

        return now
    if len(node.path) == 1:
        def field(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> Any:
            seen[key] = found = values.get(key)
            return found

        return field
    path = node.path

    def reference(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> Any:
        seen[key] = found = lookup(path)
        return found

    return reference


def _truth(node: Node) -> Compiled:
    if isinstance(node, Logical):
        parts = [_truth(part) for part in node.parts]
        if node.op == "and":
            def every(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
                for part in parts:
                    if not part(values, lookup, seen):
                        return False
                return True

            return every

        def some(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
            for part in parts:
                if part(values, lookup, seen):
                    return True
            return False

        return some
    if isinstance(node, Negation):
        operand = _truth(node.operand)
        return lambda values, lookup, seen: not operand(values, lookup, seen)
    if isinstance(node, Compare):
        fast = _fast_compare(node)
        if fast is not None:
            return fast
        op, left = node.op, _value(node.left)
        right = _value(node.right) if node.right is not None else None

        def compare(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
            try:
                a = left(values, lookup, seen)
                b = right(values, lookup, seen) if right is not None else None
            except _Unknown:
                return False
            return _compare(op, a, b)

        return compare
    inner = _value(node)

    def truthy(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
        try:
            return bool(inner(values, lookup, seen))
        except _Unknown:
            return False

    return truthy


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _fast_compare(node: Compare) -> Compiled | None:
    """Shortcuts for the most common comparisons (a name against constants) that give exactly
    what :func:`_compare` gives, falling back to it for any other kind of value."""
    if not isinstance(node.left, Name) or node.left.path in (("today",), ("now",)):
        return None
    left = _name(node.left)
    op = node.op
    if op in _ORDER and isinstance(node.right, Literal) and type(node.right.value) in (int, decimal.Decimal):
        constant, order = node.right.value, _ORDER[op]

        def ordered(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
            found = left(values, lookup, seen)
            kind = type(found)
            if kind is Money:
                return order(found.amount, constant)  # type: ignore[no-any-return]
            if kind is int or kind is decimal.Decimal:
                return order(found, constant)  # type: ignore[no-any-return]
            return _compare(op, found, constant)

        return ordered
    if op in ("=", "!=") and isinstance(node.right, Literal) and type(node.right.value) is str:
        text, equal = node.right.value, op == "="

        def same(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
            found = left(values, lookup, seen)
            if type(found) is str:
                return (found == text) is equal
            return _compare(op, found, text)

        return same
    if op in ("in", "not in") and isinstance(node.right, ListOf) and node.right.items and all(
        isinstance(i, Literal) and type(i.value) is str for i in node.right.items
    ):
        items = [i.value for i in node.right.items]  # type: ignore[attr-defined]
        texts, inside = frozenset(items), op == "in"

        def member(values: Mapping[str, Any], lookup: Lookup, seen: dict[str, Any]) -> bool:
            found = left(values, lookup, seen)
            if type(found) is str:
                return (found in texts) is inside
            return _compare(op, found, items)

        return member
    return None
