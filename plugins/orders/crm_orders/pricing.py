"""Document lines priced by the catalog, set-based: one call of
:func:`crm_catalog.pricing.price_lines` for all the lines of all the documents being made.

A wanted line names a catalog product (priced: list price, price lists, customer discount,
tax category; the resolved price and the steps behind it are frozen in ``price_snapshot``) or
describes something with its own unit price (kept as given, e.g. a free-text opportunity
line). Lines keep the snapshot: pricing runs when a line is made, never again, so later edits
of price lists never reprice an existing document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crm_catalog.pricing import PriceRequest, price_lines
from crmcore.errors import ValidationError
from crmcore.money import Money

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["Wanted", "price_wanted"]


@attrs.frozen
class Wanted:
    """A line to price for one document.

    :ivar account_id: the customer the price is for (``None``: no customer discount).
    :ivar unit_price: the price of a line without a product (or to override the catalog's).
    :ivar discounts: extra line discounts (percent), cascading after the catalog's.
    """

    quantity: Decimal
    product_id: int | None = None
    account_id: int | None = None
    description: str | None = None
    unit_price: Money | None = None
    discounts: tuple[Decimal, ...] = ()
    opportunity_line_id: int | None = None


def price_wanted(uow: UnitOfWork, wanted: Sequence[Wanted], *, currency: str, on: dt.date) -> list[dict[str, Any]]:
    """Line values (without the document reference) for *wanted*, in the same order.

    :raises ValidationError: for a line with neither product nor price, a quantity that is not
        positive, or a price in another currency than *currency*; the catalog's errors for
        unknown or inactive products.
    """
    for number, line in enumerate(wanted, start=1):
        if line.quantity <= 0:
            raise ValidationError({"quantity": [f"line {number}: the quantity must be more than 0, got {line.quantity}"]})
        if line.product_id is None and line.unit_price is None:
            raise ValidationError({"unit_price": [f"line {number} ({line.description!r}) names no catalog product; give it a unit price"]})
    requests = [PriceRequest(product_id=line.product_id, quantity=line.quantity, account_id=line.account_id, on=on, currency=currency)
                for line in wanted if line.product_id is not None]
    priced = iter(price_lines(uow, requests) if requests else [])
    names = _product_names(uow, {line.product_id for line in wanted if line.product_id is not None and not line.description})
    rows = []
    for position, line in enumerate(wanted, start=1):
        values: dict[str, Any] = {"position": position, "quantity": line.quantity, "opportunity_line_id": line.opportunity_line_id}
        discounts = list(line.discounts)
        if line.product_id is not None:
            price = next(priced)
            values.update(product_id=line.product_id, tax_code=price.tax_category, tax_rate=price.tax_rate,
                          price_snapshot=price, unit_price=price.unit_price)
            if price.discount_percent:
                discounts.insert(0, price.discount_percent)
        if line.unit_price is not None:
            values["unit_price"] = line.unit_price
        values["description"] = line.description or names.get(line.product_id) or ""
        values["discounts"] = [str(d) for d in discounts]
        if values["unit_price"].currency != currency:
            raise ValidationError({"unit_price": [
                f"line {position} ({values['description']!r}) is priced in {values['unit_price'].currency}, the document in "
                f"{currency}; give a price in {currency} or a price list in that currency"]})
        rows.append(values)
    return rows


def _product_names(uow: UnitOfWork, ids: set[int]) -> Mapping[int, str]:
    if not ids:
        return {}
    return {record.id: record.values.get("name") for record in uow.find_many("product", "id", sorted(ids), fields=("name",))}
