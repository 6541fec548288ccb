"""The orders plugin's own field type: a line's cascading discounts."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any, ClassVar

import attrs
from crm_catalog.pricing import PricedLine, PriceStep
from crmcore.errors import ValidationError
from crmcore.fields import Choice, FieldValueError, Json
from crmcore.money import CURRENCIES, Money

__all__ = ["Currency", "Discounts", "PriceSnapshot", "currency_choice"]

_HUNDRED = decimal.Decimal(100)


@attrs.frozen
class Discounts(Json):
    """Line discounts in percent, applied one after the other: a list of exact decimals from 0
    to 100, kept as texts (``["10", "2.5"]``); a single number or text is a list of one."""

    kind: ClassVar[str] = "json"

    def parse(self, value: Any) -> list[str]:
        items = json.loads(value) if isinstance(value, str) and value.lstrip().startswith("[") else value
        if items is None or items == "":
            return []
        if not isinstance(items, list | tuple):
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


@attrs.frozen
class PriceSnapshot(Json):
    """The catalog's resolved price of a line, frozen: what :meth:`PricedLine.snapshot` gives.
    Anything else is refused; a valid snapshot is stored in its canonical form."""

    kind: ClassVar[str] = "json"

    def parse(self, value: Any) -> dict[str, Any] | None:
        data = json.loads(value) if isinstance(value, str) else value
        if data is None:
            return None
        if not isinstance(data, dict):
            raise FieldValueError(f"a price snapshot is what PricedLine.snapshot() gives (an object), got {value!r}")
        try:
            clean = PricedLine.from_snapshot(data).snapshot()
        except ValidationError as exc:
            raise FieldValueError(str(exc.messages.get("snapshot", [exc])[0])) from None
        text = json.dumps(clean, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldValueError("a price snapshot's text may not hold a lone surrogate; check the encoding") from None
        if "\\u0000" in text:
            raise FieldValueError("a price snapshot's text may not hold the NUL character (\\x00)")
        return clean

    def describe(self) -> str:
        return "a priced line's snapshot (PricedLine.snapshot())"

    def sample(self, n: int) -> dict[str, Any]:
        """A valid sample (for conformance checks): a list price of 10.00 USD."""
        price = Money(decimal.Decimal("10.00"), "USD")
        return PricedLine(product_id=1, quantity=decimal.Decimal(1), list_price=price, unit_price=price,
                          discount_percent=decimal.Decimal(0), tax_category=None, tax_rate=decimal.Decimal(0),
                          price_list_id=None, price_list_line_id=None,
                          steps=(PriceStep("list_price", "product 1", "the list price", None, price),)).snapshot()
