"""The JSON field type, :class:`Json`, and the limits of its values (nesting, digits, NUL).

Import from :mod:`crmcore.fields`, which re-exports these.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.fields.base import FieldType, FieldValueError, _finite, check_text, shown

__all__ = ["JSON_MAX_DEPTH", "JSON_MAX_DIGITS", "Json"]


@attrs.frozen
class Json(FieldType):
    """Any JSON value (object, list, text, number); text input is parsed as JSON.

    The parsed value is a fresh copy in the form the database gives back (tuples become lists,
    keys become text), so changing the object given, or the one a record holds, never changes
    what was stored or audited.
    """

    kind: ClassVar[str] = "json"
    operators: ClassVar[frozenset[str]] = frozenset({"is null", "is not null"})
    sortable: ClassVar[bool] = False

    def parse(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                raise self._fail(value) from None
            except RecursionError:
                raise self._too_deep(value) from None
            _check_json(parsed, value)
            return parsed
        copied = _plain_copy(value, value)
        if copied is not _NOT_PLAIN:
            return copied
        _check_json(value, value)
        try:
            return json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            raise self._fail(value) from None

    @staticmethod
    def _too_deep(value: Any) -> FieldValueError:
        return FieldValueError(f"expected a JSON value nested at most {JSON_MAX_DEPTH} levels deep, got {shown(value)}")

    def describe(self) -> str:
        return "a JSON value"

    def dump(self, value: Any) -> Any:
        return None if value is None else json.loads(json.dumps(value))

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.JSON(none_as_null=True)  # an empty field is SQL NULL, not JSON null

    def format(self, value: Any) -> str:
        return "" if value is None else json.dumps(value, separators=(",", ":"))


#: How deep a JSON value may nest, and how many digits its numbers may have.
JSON_MAX_DEPTH, JSON_MAX_DIGITS = 64, 38


_NOT_PLAIN = object()


def _plain_copy(value: Any, given: Any, depth: int = 1) -> Any:
    """A fresh copy of *value* made of exactly dicts with text keys, lists, tuples (as lists),
    text, numbers, booleans and ``None``, checked as :func:`_check_json` checks, in one walk;
    :data:`_NOT_PLAIN` for anything else (subclasses, other keys), which then takes the
    JSON round trip, so the result is always what the database gives back."""
    kind = type(value)
    if kind is str:
        check_text(value)
        return value
    if kind is dict:
        if depth > JSON_MAX_DEPTH:
            raise Json._too_deep(given)
        copy = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            check_text(key)
            inner = item if type(item) in (bool, type(None)) else _plain_copy(item, given, depth + 1)
            if inner is _NOT_PLAIN:
                return _NOT_PLAIN
            copy[key] = inner
        return copy
    if kind is list or kind is tuple:
        if depth > JSON_MAX_DEPTH:
            raise Json._too_deep(given)
        items = []
        for item in value:
            inner = item if type(item) in (bool, type(None)) else _plain_copy(item, given, depth + 1)
            if inner is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(inner)
        return items
    if kind in (bool, type(None)):
        return value
    if kind is int or kind is float:
        _check_json(value, given)
        return value
    return _NOT_PLAIN


def _check_json(value: Any, given: Any) -> None:
    """Refuse what some database or the JSON encoder would choke on: nesting past
    :data:`JSON_MAX_DEPTH`, numbers of more than :data:`JSON_MAX_DIGITS` digits, ``NaN`` and
    infinities, NUL characters. Walks the value without recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > JSON_MAX_DEPTH:
                raise Json._too_deep(given)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            check_text(item)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and len(str(abs(item))) > JSON_MAX_DIGITS:
            raise FieldValueError(f"expected a JSON value whose numbers have at most {JSON_MAX_DIGITS} digits, "
                                  f"got {shown(given)}")
        elif isinstance(item, float) and not _finite(item):
            raise FieldValueError(f"expected a JSON value, got {shown(given)}")  # NaN and Infinity are not JSON
