"""The formula of a price list line, as pure functions over ``Decimal``: no app, no database.

A line's price is its base (the list price, the cost, another list's price or a fixed price),
minus ``discount_percent``, plus ``surcharge``, rounded half up to a multiple of ``rounding``,
then clamped so that the margin over cost, ``(price - cost) / price``, stays between
``min_margin_percent`` and ``max_margin_percent`` (a clamped price is rounded up, or down, to
the rounding multiple so the bound still holds). Each part is optional.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Formula", "margin_bounds", "round_to"]

_HUNDRED = decimal.Decimal(100)
_ONE = decimal.Decimal(1)


def round_to(value: decimal.Decimal, step: decimal.Decimal, rounding: str = decimal.ROUND_HALF_UP) -> decimal.Decimal:
    """*value* rounded to a multiple of *step* (half up by default)."""
    return (value / step).quantize(_ONE, rounding=rounding) * step


def margin_bounds(
    cost: decimal.Decimal, min_margin: decimal.Decimal | None, max_margin: decimal.Decimal | None
) -> tuple[decimal.Decimal | None, decimal.Decimal | None]:
    """The lowest and highest price that keep the margin over *cost* within the bounds (in
    percent of the price); ``None`` for a bound not given (or not reachable: 100% and more)."""
    low = cost / (1 - min_margin / _HUNDRED) if min_margin is not None and min_margin < _HUNDRED else None
    high = cost / (1 - max_margin / _HUNDRED) if max_margin is not None and max_margin < _HUNDRED else None
    return low, high


def _decimal(value: Any) -> decimal.Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, decimal.Decimal) else decimal.Decimal(value)


@attrs.frozen
class Formula:
    """The formula part of a price list line."""

    base: str = "list_price"
    discount_percent: decimal.Decimal | None = None
    surcharge: decimal.Decimal | None = None
    rounding: decimal.Decimal | None = None
    min_margin_percent: decimal.Decimal | None = None
    max_margin_percent: decimal.Decimal | None = None

    @classmethod
    def of(cls, line: Mapping[str, Any]) -> Formula:
        """The formula of a price list line read as a mapping (a select row or a record's
        values; money fields as :class:`~crmcore.money.Money`)."""
        surcharge = line.get("surcharge")
        return cls(
            base=line.get("base") or "list_price",
            discount_percent=_decimal(line.get("discount_percent")) or None,
            surcharge=(surcharge.amount if surcharge is not None else None) or None,
            rounding=_decimal(line.get("rounding")) or None,
            min_margin_percent=_decimal(line.get("min_margin_percent")),
            max_margin_percent=_decimal(line.get("max_margin_percent")),
        )

    def adjust(self, base: decimal.Decimal) -> decimal.Decimal:
        """The base less the discount, plus the surcharge (not rounded)."""
        value = base
        if self.discount_percent is not None:
            value = value * (1 - self.discount_percent / _HUNDRED)
        if self.surcharge is not None:
            value = value + self.surcharge
        return value

    def round(self, value: decimal.Decimal) -> decimal.Decimal:
        """*value* rounded to the line's rounding multiple (unchanged without one)."""
        return round_to(value, self.rounding) if self.rounding is not None else value

    def clamp(self, value: decimal.Decimal, cost: decimal.Decimal | None) -> tuple[decimal.Decimal, str | None]:
        """*value* within the margin bounds over *cost*, and which bound moved it (``"min"``,
        ``"max"`` or ``None``). Without a cost, or bounds, the value stands."""
        if cost is None or (self.min_margin_percent is None and self.max_margin_percent is None):
            return value, None
        low, high = margin_bounds(cost, self.min_margin_percent, self.max_margin_percent)
        if low is not None and value < low:
            up = round_to(low, self.rounding, decimal.ROUND_CEILING) if self.rounding else low
            return up, "min"
        if high is not None and value > high:
            down = round_to(high, self.rounding, decimal.ROUND_FLOOR) if self.rounding else high
            return down, "max"
        return value, None

    @property
    def has_clamp(self) -> bool:
        return self.min_margin_percent is not None or self.max_margin_percent is not None

    def describe(self, base_text: str, currency: str) -> str:
        """The formula as text: ``"list price - 10% + 0.50 EUR"``."""
        text = base_text
        if self.discount_percent is not None:
            text += f" - {_plain(self.discount_percent)}%"
        if self.surcharge is not None:
            sign = "+" if self.surcharge >= 0 else "-"
            text += f" {sign} {_plain(abs(self.surcharge))} {currency}"
        return text


def _plain(value: decimal.Decimal) -> str:
    """A decimal without trailing zeros (``10.0000`` -> ``10``), never in exponent form."""
    text = format(value.normalize(), "f")
    return text
