"""Date and time field types: :class:`Date` and :class:`DateTime` (always timezone-aware,
stored in UTC; a time that falls outside the years 1 to 9999 once in UTC is refused).

Import from :mod:`crmcore.fields`, which re-exports these.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.fields.base import ORDERED, FieldType, FieldValueError
from crmcore.storage.types import UTCDateTime

__all__ = ["Date", "DateTime"]


@attrs.frozen
class Date(FieldType):
    """A calendar date, written ``YYYY-MM-DD``."""

    kind: ClassVar[str] = "date"
    operators: ClassVar[frozenset[str]] = ORDERED

    def parse(self, value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            raise self._fail(value)
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise self._fail(value)

    def describe(self) -> str:
        return "a date such as '2026-03-31'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Date()

    def dump(self, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def format(self, value: Any) -> str:
        return "" if value is None else value.isoformat()


@attrs.frozen
class DateTime(FieldType):
    """A moment in time, always timezone-aware (stored in UTC).

    Text is ISO 8601; a value without an offset is read in the deployment's time zone.
    """

    timezone: dt.tzinfo | None = None
    kind: ClassVar[str] = "datetime"
    operators: ClassVar[frozenset[str]] = ORDERED

    def parse(self, value: Any) -> dt.datetime:
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value.strip())
            except ValueError:
                raise self._fail(value) from None
        if not isinstance(value, dt.datetime):
            raise self._fail(value)
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=self.timezone or dt.UTC)
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise FieldValueError(
                f"{value.isoformat()} falls outside the years 1 to 9999 once in UTC; give a time within them"
            ) from None

    def describe(self) -> str:
        return "a date and time such as '2026-03-31T14:30:00+02:00'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return UTCDateTime()

    def dump(self, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def format(self, value: Any) -> str:
        return "" if value is None else value.isoformat()

    def bind(self, *, currency: str, timezone: dt.tzinfo) -> FieldType:
        return self if self.timezone else attrs.evolve(self, timezone=timezone)
