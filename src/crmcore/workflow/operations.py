"""The operations of the condition language on values: arithmetic, comparison, and the limits
that keep conditions from exhausting the interpreter.

Both interpreters (:meth:`Condition.evaluate <crmcore.workflow.conditions.Condition.evaluate>`
and the closures of :mod:`crmcore.workflow.compiled`) use these helpers, so they give the same
answers.

Date arithmetic is total: ``close_date + 30`` on 9999-12-20 falls after the last date Python
can hold, and gives a :class:`FarDate` instead of an ``OverflowError``. A far date counts the
days from 0001-01-01 (an ordinal, fractional for times of day in UTC) and compares with dates,
times and other far dates as if the calendar had no end, so ``close_date + 30 > today`` is
simply true. ``date - far date`` is a number of days.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from crmcore.errors import ConfigError
from crmcore.money import Money

__all__ = ["MAX_DIGITS", "MAX_NESTING", "ConditionError", "FarDate", "check_number"]

#: How deep a condition may nest (parentheses, ``not``, ``-``, ``{"not": ...}``, chained
#: arithmetic such as ``a + b + c``); ``and``/``or`` chains and all/any lists do not nest.
MAX_NESTING = 32
#: The most digits a number written in a condition may have (before and after the point).
MAX_DIGITS = 38

_SECONDS_A_DAY = decimal.Decimal(86400)


class ConditionError(ConfigError):
    """A condition that cannot be parsed or does not fit the registry."""


def check_number(value: Any, where: str) -> None:
    """Refuse a number a condition could not use: ``nan``, infinities, more than
    :data:`MAX_DIGITS` digits.

    :raises ConditionError: naming *where* and the value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ConditionError(f"{where}: {value!r} is not a number a condition can use; write a finite number")
        value = decimal.Decimal(repr(value))
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        raise ConditionError(f"{where}: {value!r} is not a number a condition can use; write a finite number")
    if isinstance(value, int):
        too_long = len(str(abs(value))) > MAX_DIGITS
    else:
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        too_long = len(digits) > MAX_DIGITS or max(len(digits) + exponent, -exponent) > MAX_DIGITS
    if too_long:
        shown = str(value) if len(str(value)) <= 60 else f"{str(value)[:40]}... ({len(str(value))} characters)"
        raise ConditionError(f"{where}: the number {shown} is too large for a condition; "
                          f"numbers have at most {MAX_DIGITS} digits")


class FarDate:
    """A date or time beyond the years 1 to 9999, as an ordinal day count (see the module)."""

    __slots__ = ("days",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, days: decimal.Decimal) -> None:
        self.days = days

    def __repr__(self) -> str:
        return f"FarDate(days={self.days})"

    def _other(self, other: Any) -> decimal.Decimal | None:
        return _days(other) if isinstance(other, (FarDate, dt.date)) else None

    def __eq__(self, other: object) -> bool:
        days = self._other(other)
        return days is not None and self.days == days

    def __lt__(self, other: Any) -> bool:
        days = self._other(other)
        if days is None:
            return NotImplemented
        return self.days < days

    def __le__(self, other: Any) -> bool:
        days = self._other(other)
        if days is None:
            return NotImplemented
        return self.days <= days

    def __gt__(self, other: Any) -> bool:
        days = self._other(other)
        if days is None:
            return NotImplemented
        return self.days > days

    def __ge__(self, other: Any) -> bool:
        days = self._other(other)
        if days is None:
            return NotImplemented
        return self.days >= days


def _days(value: dt.date | FarDate) -> decimal.Decimal:
    """*value* as an ordinal day count (UTC for an aware time), without leaving the range."""
    if isinstance(value, FarDate):
        return value.days
    days = decimal.Decimal(value.toordinal())
    if isinstance(value, dt.datetime):
        seconds = value.hour * 3600 + value.minute * 60 + value.second + decimal.Decimal(value.microsecond) / 1000000
        offset = value.utcoffset()
        if offset is not None:
            seconds -= decimal.Decimal(offset.days * 86400 + offset.seconds)
        days += seconds / _SECONDS_A_DAY
    return days


def _datelike(value: Any) -> bool:
    return isinstance(value, (dt.date, FarDate))


class _Unknown(Exception):
    """A value needed by an operation is missing: comparisons with it are false."""


def _number(value: Any) -> Any:
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, bool):
        raise _Unknown
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    return value


def _negate(value: Any) -> Any:
    number = None if value is None else _number(value)
    if not isinstance(number, (int, decimal.Decimal)):
        raise _Unknown
    return -number


def _arith(op: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        raise _Unknown
    if isinstance(left, FarDate) or isinstance(right, FarDate):
        return _far_arith(op, left, right)
    if isinstance(left, dt.date) and isinstance(right, dt.date) and op == "-":
        if type(left) is dt.date and type(right) is dt.date:
            return (left - right).days
        if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
            return decimal.Decimal((left - right).total_seconds()) / 86400
        return _days(left) - _days(right)  # a date and a time: the date's midnight in UTC
    if isinstance(left, (dt.date, dt.datetime)) and isinstance(_number(right), (int, decimal.Decimal)):
        try:
            days = dt.timedelta(days=float(_number(right)))
            return left + days if op == "+" else left - days
        except OverflowError:
            return _far_arith(op, left, right)
    a, b = _number(left), _number(right)
    if not isinstance(a, (int, decimal.Decimal)) or not isinstance(b, (int, decimal.Decimal)):
        raise _Unknown
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise _Unknown
    return decimal.Decimal(a) / decimal.Decimal(b)


def _far_arith(op: str, left: Any, right: Any) -> Any:
    """Date arithmetic past the end (or before the start) of the calendar."""
    if _datelike(left) and _datelike(right) and op == "-":
        return _days(left) - _days(right)
    number = _number(right)
    if not _datelike(left) or op not in "+-" or not isinstance(number, (int, decimal.Decimal)):
        raise _Unknown
    return FarDate(_days(left) + number if op == "+" else _days(left) - number)


def _normalise(value: Any) -> Any:
    if isinstance(value, Money):
        return value.amount
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "is null":
        return left is None
    if op == "is not null":
        return left is not None
    if op == "contains":
        if left is None or right is None:
            return False
        if isinstance(left, (list, tuple)):
            return right in left
        return str(right).lower() in str(left).lower()
    if op in ("in", "not in"):
        found = left is not None and any(_equal(left, item) for item in right)
        return found if op == "in" else not found and left is not None
    if left is None or right is None:
        if op == "=":
            return left is None and right is None
        return op == "!=" and (left is None) != (right is None)
    if op == "=":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    a, b = _normalise(left), _normalise(right)
    if isinstance(a, dt.datetime) and isinstance(b, dt.date) and not isinstance(b, dt.datetime):
        a = a.date()
    if isinstance(b, dt.datetime) and isinstance(a, dt.date) and not isinstance(a, dt.datetime):
        b = b.date()
    try:
        if op == "<":
            return a < b  # type: ignore[no-any-return]
        if op == "<=":
            return a <= b  # type: ignore[no-any-return]
        if op == ">":
            return a > b  # type: ignore[no-any-return]
        return a >= b  # type: ignore[no-any-return]
    except TypeError:
        return False


def _equal(left: Any, right: Any) -> bool:
    a, b = _normalise(left), _normalise(right)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    try:
        return a == b  # type: ignore[no-any-return]
    except TypeError:
        return False
