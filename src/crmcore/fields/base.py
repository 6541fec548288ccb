"""The base of field types: :class:`FieldType`, :class:`FieldValueError`, the operator sets
and the checks every text value passes (:func:`check_text`: no NUL character, which one
database would store and the other refuse, and no lone surrogate, which neither driver can
encode).

Import from :mod:`crmcore.fields`, which re-exports these.
"""

from __future__ import annotations

import abc
import datetime as dt
import decimal
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import sqlalchemy as sa

__all__ = ["EQUALITY", "ORDERED", "TEXTUAL", "FieldType", "FieldValueError", "check_text", "shown"]

EQUALITY = frozenset({"=", "!=", "in", "not in", "is null", "is not null"})
ORDERED = EQUALITY | {"<", "<=", ">", ">=", "between"}
TEXTUAL = ORDERED | {"contains", "startswith"}


class FieldValueError(ValueError):
    """Raised by :meth:`FieldType.parse`; its text is the message shown to the user."""


@attrs.frozen
class FieldType(abc.ABC):
    """Base of every field type. Subclasses are small frozen values.

    :cvar kind: the name used in settings (``type = "money"``) and in the docs.
    :cvar operators: the filter operators the type supports.
    """

    kind: ClassVar[str] = "abstract"
    operators: ClassVar[frozenset[str]] = EQUALITY
    sortable: ClassVar[bool] = True

    @abc.abstractmethod
    def parse(self, value: Any) -> Any:
        """Return the canonical Python value for *value* (never ``None`` or ``""``).

        :raises FieldValueError: with a message naming the expected form and the value.
        """

    def describe(self) -> str:
        """A short description of accepted values, used in messages and docs."""
        return self.kind

    def columns(self, column: str) -> list[sa.Column[Any]]:
        """The SQL columns that store a field of this type named *column*."""
        return [sa.Column(column, self.sql_type(), nullable=True)]

    @abc.abstractmethod
    def sql_type(self) -> sa.types.TypeEngine[Any]:
        """The SQL type of the field's (main) column."""

    def to_db(self, value: Any, column: str) -> dict[str, Any]:
        """Map a parsed value to ``{column: db value}``."""
        return {column: value}

    def from_db(self, row: Mapping[str, Any], column: str) -> Any:
        """Read the value of a field stored under *column* from a result row mapping."""
        return row[column]

    def dump(self, value: Any) -> Any:
        """A JSON-compatible rendering of a parsed value (used by JSON export and audit)."""
        return value

    def format(self, value: Any) -> str:
        """A text rendering that :meth:`parse` accepts back (used by CSV export and the CLI)."""
        if value is None:
            return ""
        return str(value)

    def dedupe_key(self, value: Any) -> Any:
        """The key under which two parsed values count as the same when looking for
        duplicates (imports, the lead check, lead conversion): the value itself, unless the
        type says otherwise (:class:`~crmcore.fields.Email`: the address lower-cased).
        :meth:`dedupe_column` computes the same key in SQL."""
        return value

    def dedupe_column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """:meth:`dedupe_key` of the values stored in *column*, as a SQL expression that gives
        the same result on every database."""
        return column

    def declaration_problem(self) -> str | None:
        """What is wrong with the type's parameters (``String(max_length=0)``), or ``None``;
        the registry refuses a field whose type has a problem when the app starts."""
        return None

    def bind(self, *, currency: str, timezone: dt.tzinfo) -> FieldType:
        """Return a copy configured with deployment defaults (currency, time zone)."""
        return self

    def _fail(self, value: Any) -> FieldValueError:
        return FieldValueError(f"expected {self.describe()}, got {shown(value)}")


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return (check_text(value) if "\x00" in value or not value.isascii() else value).strip()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return None


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finite(value: float | decimal.Decimal) -> bool:
    return value.is_finite() if isinstance(value, decimal.Decimal) else value not in (
        float("inf"), float("-inf")) and value == value


def check_text(text: str) -> str:
    """*text* itself, unless it holds a NUL character (``\\x00``) or a lone surrogate
    (``\\ud800`` to ``\\udfff``, half of a character that UTF-8 cannot encode), which text
    never may. Callers on hot paths call it only for text with a NUL or outside ASCII.

    :raises FieldValueError: naming the position of the first such character.
    """
    if "\x00" in text:
        raise FieldValueError(f"text may not contain the NUL character (\\x00), found at position "
                              f"{text.index(chr(0)) + 1} of {shown(text)}; remove it")
    if not text.isascii():
        found = _SURROGATE.search(text)
        if found is not None:
            raise FieldValueError(f"text may not contain a lone surrogate ({found.group()!r}), found at position "
                                  f"{found.start() + 1} of {shown(text)}; it is half of a character, not text; "
                                  "check the encoding of the source")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for a message, cut short past *limit* characters."""
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} characters)"
