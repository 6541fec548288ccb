"""The orders plugin's own field type: a line's cascading discounts."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, ClassVar

import attrs
from crmcore.fields import Choice, FieldValueError, Json
from crmcore.money import CURRENCIES

__all__ = ["Currency", "Discounts", "currency_choice"]

_HUNDRED = decimal.Decimal(100)


@attrs.frozen
class Discounts(Json):
    """Line discounts in percent, applied one after the other: a list of exact decimals from 0
    to 100, kept as texts (``["10", "2.5"]``); a single number or text is a list of one."""

    kind: ClassVar[str] = "json"

    def parse(self, value: Any) -> list[str]:
        items = super().parse(value)
        if items is None or items == "":
            return []
        if not isinstance(items, list):
            items = [items]
        parsed = []
        for item in items:
            if isinstance(item, bool | float | dict | list) or item is None:
                raise FieldValueError(f"a discount is a percentage such as \"12.5\", got {item!r}")
            try:
                number = decimal.Decimal(str(item))
            except decimal.InvalidOperation:
                raise FieldValueError(f"a discount is a percentage such as \"12.5\", got {item!r}") from None
            if not number.is_finite() or not 0 <= number <= _HUNDRED:
                raise FieldValueError(f"a discount is a percentage from 0 to 100, got {item!r}")
            parsed.append(str(number))
        return parsed

    def describe(self) -> str:
        return "a list of percentages from 0 to 100, applied one after the other"

    def sample(self, n: int) -> list[str]:
        """A valid sample (for conformance checks): 10 percent, then 5."""
        return ["10", "5"]


class Currency(Choice):
    """A document's currency: an ISO 4217 code. The deployment's currency (``[crm] currency``)
    comes first, so it is also the sample."""

    def __init__(self, first: str = "USD") -> None:
        super().__init__(first, *sorted(CURRENCIES - {first}))

    def bind(self, *, currency: str, timezone: dt.tzinfo) -> Currency:
        return self if self.choices[0] == currency or currency not in CURRENCIES else Currency(currency)

    def sample(self, n: int) -> str:
        """A valid sample (for conformance checks): the deployment's currency."""
        return self.choices[0]


def currency_choice() -> Currency:
    """The currency field type, before the deployment's currency is bound."""
    return Currency()
