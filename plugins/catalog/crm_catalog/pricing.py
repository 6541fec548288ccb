"""Prices from the catalog: what a quote or order line costs, and why.

:func:`price_lines` prices many lines at once, set-based: it reads the products, product groups,
tax categories, accounts, price lists, price list lines and customer discounts it needs with a
few statements per call (whatever the number of lines), as the unit of work's actor (a product
or a price list the actor may not read is missing), and resolves every line in Python
(:mod:`crm_catalog.loading`, :mod:`crm_catalog.resolve`). :func:`explain_price` prices one line; its
:attr:`PricedLine.steps` are the explanation, each step with its input and output::

    from crm_catalog.pricing import PriceRequest, explain_price, price_lines

    with crm.unit_of_work("ada") as uow:
        lines = price_lines(uow, [PriceRequest(product.id, Decimal(5), account.id, date.today())])
        for step in explain_price(uow, account.id, product.id, Decimal(5), date.today()).steps:
            print(step.kind, step.source, step.detail, step.input, "->", step.output)

A :class:`PricedLine` is a value: a quote keeps its :meth:`~PricedLine.snapshot` so later rule
edits never reprice it, and :meth:`PricedLine.from_snapshot` gives it back.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError
from crmcore.money import Money

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["STEP_KINDS", "PriceRequest", "PriceStep", "PricedLine", "explain_price", "price_lines"]

#: The kinds of steps an explanation holds, in the order they happen.
STEP_KINDS = ("list_price", "price_list_line", "rounding", "clamp", "customer_discount")

_HUNDRED = decimal.Decimal(100)
#: From this many requests on, the cyclic garbage collector pauses while they are resolved.
_BATCH = 1000


def _quantity(value: Any) -> decimal.Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"a quantity is a Decimal, int or str, not {value!r}")
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(value)
    if not number.is_finite() or number <= 0:
        raise ValueError(f"a quantity must be more than 0, got {value!r}")
    return number


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise TypeError(f"'on' is a date, not a datetime: {value!r}")
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@attrs.frozen
class PriceRequest:
    """A line to price: *quantity* of a product for an account (or nobody) on a day, in a
    currency (by default the product's list price currency)."""

    product_id: int
    quantity: decimal.Decimal = attrs.field(converter=_quantity)
    account_id: int | None
    on: dt.date = attrs.field(converter=_day)
    currency: str | None = None


def _money_out(value: Money | None) -> dict[str, str] | None:
    return None if value is None else {"amount": str(value.amount), "currency": value.currency}


def _money_in(value: Mapping[str, str] | None) -> Money | None:
    return None if value is None else Money(decimal.Decimal(value["amount"]), value["currency"])


@attrs.frozen
class PriceStep:
    """One step of a price: what it did (*kind*), which rule or record did it (*source*), how
    (*detail*), and the price before (*input*, ``None`` for the first) and after (*output*)."""

    kind: str
    source: str
    detail: str
    input: Money | None
    output: Money

    def snapshot(self) -> dict[str, Any]:
        """The step as JSON-able data (amounts as text)."""
        return {"kind": self.kind, "source": self.source, "detail": self.detail,
                "input": _money_out(self.input), "output": _money_out(self.output)}

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> PriceStep:
        """The step :meth:`snapshot` gave."""
        output = _money_in(data["output"])
        assert output is not None
        return cls(data["kind"], data["source"], data["detail"], _money_in(data.get("input")), output)

    def __str__(self) -> str:
        before = "" if self.input is None else f"{self.input} -> "
        return f"{self.kind}: {self.source}: {self.detail}: {before}{self.output}"


@attrs.frozen
class PricedLine:
    """A priced line: the list price, the unit price the price lists give, the customer
    discount to show as a line discount (percent, may be 0), the tax category and rate, the
    list and line that set the price (``None`` when the list price stands), and the steps."""

    product_id: int
    quantity: decimal.Decimal
    list_price: Money
    unit_price: Money
    discount_percent: decimal.Decimal
    tax_category: str | None
    tax_rate: decimal.Decimal
    price_list_id: int | None
    price_list_line_id: int | None
    steps: tuple[PriceStep, ...]

    @property
    def net_unit_price(self) -> Money:
        """The unit price less the customer discount, unrounded (the totals engine rounds)."""
        return self.unit_price * (1 - self.discount_percent / _HUNDRED)

    def snapshot(self) -> dict[str, Any]:
        """The priced line as JSON-able data (decimals and amounts as text), for a document to
        keep: :meth:`from_snapshot` gives the same line back, whatever the rules are then."""
        return {
            "product_id": self.product_id,
            "quantity": str(self.quantity),
            "list_price": _money_out(self.list_price),
            "unit_price": _money_out(self.unit_price),
            "discount_percent": str(self.discount_percent),
            "tax_category": self.tax_category,
            "tax_rate": str(self.tax_rate),
            "price_list_id": self.price_list_id,
            "price_list_line_id": self.price_list_line_id,
            "steps": [step.snapshot() for step in self.steps],
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> PricedLine:
        """The line a :meth:`snapshot` holds.

        :raises ValidationError: when *data* is not a priced line's snapshot.
        """
        try:
            list_price, unit_price = _money_in(data["list_price"]), _money_in(data["unit_price"])
            assert list_price is not None and unit_price is not None
            return cls(
                product_id=int(data["product_id"]),
                quantity=decimal.Decimal(data["quantity"]),
                list_price=list_price,
                unit_price=unit_price,
                discount_percent=decimal.Decimal(data["discount_percent"]),
                tax_category=data.get("tax_category"),
                tax_rate=decimal.Decimal(data["tax_rate"]),
                price_list_id=data.get("price_list_id"),
                price_list_line_id=data.get("price_list_line_id"),
                steps=tuple(PriceStep.from_snapshot(s) for s in data.get("steps", ())),
            )
        except (KeyError, TypeError, ValueError, AssertionError, decimal.InvalidOperation) as exc:
            raise ValidationError(
                {"snapshot": [f"not a priced line's snapshot ({type(exc).__name__}: {exc}); keep what PricedLine.snapshot() gave"]},
            ) from None

    def explain(self) -> list[str]:
        """The steps as lines of text, one per step."""
        return [str(step) for step in self.steps]


def price_lines(uow: UnitOfWork, requests: Sequence[PriceRequest]) -> list[PricedLine]:
    """Price *requests*, in their order, as the unit of work's actor.

    Reads what it needs with a few statements per call; a product the actor may not read is
    missing, and so is a price list (it does not apply).

    :raises NotFoundError: naming a product or account that is missing (or unreadable).
    :raises ValidationError: naming an inactive product, or a currency no price applies in.
    """
    from crm_catalog.loading import load
    from crm_catalog.resolve import Resolver
    from crm_catalog.settings import catalog_settings

    if not requests:
        return []
    settings = catalog_settings(uow)
    quantum = decimal.Decimal(1).scaleb(-settings.price_decimals)
    if len(requests) < _BATCH or not gc.isenabled():
        return Resolver(load(uow, requests), settings.discount_combination, quantum).price_all(requests)
    # A large batch reads and makes many small acyclic objects (rows, lines, steps, amounts):
    # the cyclic collector would walk them again and again for nothing, so it waits meanwhile.
    gc.disable()
    try:
        return Resolver(load(uow, requests), settings.discount_combination, quantum).price_all(requests)
    finally:
        gc.enable()


def explain_price(
    uow: UnitOfWork,
    account_id: int | None,
    product_id: int,
    quantity: decimal.Decimal | int | str,
    on: dt.date,
    *,
    currency: str | None = None,
) -> PricedLine:
    """Price one line and explain it: the returned line's :attr:`~PricedLine.steps` are the
    chain of list price, price lists, lines, rounding, margin clamps and customer discounts that
    produced the price, each with its input and output.

    :raises NotFoundError: naming a product or account that is missing (or unreadable).
    :raises ValidationError: naming an inactive product or a quantity that is not positive.
    """
    try:
        request = PriceRequest(product_id, quantity, account_id, on, currency)  # type: ignore[arg-type]
    except (TypeError, ValueError, decimal.InvalidOperation) as exc:
        raise ValidationError({"quantity": [f"{exc}"]}) from None
    return price_lines(uow, [request])[0]
