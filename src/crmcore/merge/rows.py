"""Whole rows kept as JSON: the tombstone of a record merged away holds its row in a form that
brings back the same Python values (times, dates, decimals, bytes) when the merge is undone."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

__all__ = ["decode_row", "encode_row"]


def _encode(value: Any) -> list[Any]:
    if isinstance(value, dt.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, dt.date):
        return ["d", value.isoformat()]
    if isinstance(value, dt.time):
        return ["t", value.isoformat()]
    if isinstance(value, decimal.Decimal):
        return ["dec", str(value)]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["b", base64.b64encode(bytes(value)).decode("ascii")]
    return ["v", value]


_DECODERS = {
    "dt": dt.datetime.fromisoformat,
    "d": dt.date.fromisoformat,
    "t": dt.time.fromisoformat,
    "dec": decimal.Decimal,
    "b": base64.b64decode,
    "v": lambda value: value,
}


def encode_row(row: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{column: [kind, JSON value]}`` of a row read from a table."""
    return {str(name): _encode(value) for name, value in row.items()}


def decode_row(data: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The row :func:`encode_row` was given."""
    return {name: _DECODERS[kind](value) for name, (kind, value) in data.items()}
