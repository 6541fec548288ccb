"""SQL column types that keep values exact and times aware on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

__all__ = ["JSONList", "ScaledDecimal", "UTCDateTime"]


class ScaledDecimal(TypeDecorator[decimal.Decimal]):
    """A ``Decimal`` stored as an integer count of ``10**-scale`` units.

    Sums and comparisons run on integers in SQL, so they are exact on every database (SQLite has
    no exact decimal type).
    """

    impl = sa.BigInteger
    cache_ok = True

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self._factor = decimal.Decimal(10) ** scale
        self._quantum = decimal.Decimal(1).scaleb(-scale)

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> int | None:
        if value is None:
            return None
        if not isinstance(value, decimal.Decimal):
            value = decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)
        return int((value * self._factor).to_integral_value(decimal.ROUND_HALF_EVEN))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> decimal.Decimal | None:
        if value is None:
            return None
        return (decimal.Decimal(int(value)) / self._factor).quantize(self._quantum)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return self

    def __repr__(self) -> str:
        return f"ScaledDecimal({self.scale})"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware ``datetime``, stored as naive UTC and read back with ``tzinfo=UTC``."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crmcore stores timezone-aware times only")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        """One call per value: SQLite's stored text parsed straight to an aware time (the
        composed processor of the impl and :meth:`process_result_value` costs a third of a
        full record's read); elsewhere the driver's naive UTC time, made aware."""
        utc = dt.UTC
        if dialect.name == "sqlite":
            parse = dt.datetime.fromisoformat

            def from_text(value: Any) -> dt.datetime | None:
                if value is None:
                    return None
                if value.__class__ is str:
                    return parse(value + "+00:00")  # UTC (the same tzinfo): faster than replace()
                return value.replace(tzinfo=utc)  # a datetime an adapter already made

            return from_text

        def aware(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            if value.__class__ is str:
                value = dt.datetime.fromisoformat(value)
            return value.replace(tzinfo=utc)

        return aware

    def __repr__(self) -> str:
        return "UTCDateTime()"


class JSONList(TypeDecorator[tuple[str, ...]]):
    """A list of short texts stored as JSON text (``contains`` filters match one element)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):  # a single element, as bound by a LIKE filter
            return value
        return json.dumps(list(value), separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(json.loads(value))

    def __repr__(self) -> str:
        return "JSONList()"
