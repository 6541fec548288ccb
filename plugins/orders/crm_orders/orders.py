"""Sales orders: from an accepted quote (its current version) or straight from an opportunity;
confirmed, fulfilled or cancelled.

Confirming an order (``confirm_order``, or any move of it to ``confirmed``) reserves the stock
of its products (catalog) and writes its fulfilment requests through the outbox, in the same
transaction (:func:`on_moved`); cancelling a confirmed order releases the stock.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crm_catalog.stock import release, reserve
from crmcore import Actor
from crmcore.errors import ValidationError

from crm_orders import documents, following, fulfilment
from crm_orders.pricing import Wanted, price_wanted
from crm_orders.quotes import today_in
from crm_orders.settings import orders_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["cancel_order", "confirm_order", "on_moved", "order_from_opportunity", "order_from_quote", "stock_source"]

_HEADER = ("title", "account_id", "opportunity_id", "notes")
_LIVE = ("draft", "confirmed", "in_fulfilment", "fulfilled")


def stock_source(order_id: int) -> str:
    """The source named on an order's stock reservations."""
    return f"sales_order:{order_id}"


def order_from_quote(uow: UnitOfWork, quote_id: int) -> Record:
    """A draft order from the current version of an accepted quote: its pricing and lines
    (with their price snapshots and lineage) copied, so its totals are the quote's.

    :raises ValidationError: for a quote that is not accepted, superseded, or already ordered.
    """
    quote = uow.get("quote", quote_id)
    values = quote.values
    if not values.get("is_current"):
        raise ValidationError(f"quote {quote.id} (version {values.get('version_number')}) was superseded by quote "
                              f"{values.get('superseded_by_id')}; an order comes from the current version")
    if values.get("state") != "accepted":
        raise ValidationError(f"quote {quote.id} is {values.get('state')!r}; an order comes from an accepted quote (accept it first)")
    with uow.acting_as(Actor.system()):
        taken = uow.select("sales_order", fields=("id",)).where(("state", "in", _LIVE), quote_id=quote.id).limit(1).first()
    if taken is not None:
        raise ValidationError(f"quote {quote.id} is already ordered (sales_order {taken['id']})")
    lines = documents.lines_of(uow, documents.DOCUMENTS["quote"], [quote.id], fields=(*documents.LINE_FIELDS, "id"))[quote.id]
    order = uow.create("sales_order", **{name: values.get(name) for name in _HEADER}, **documents.copy_pricing(values),
                       quote_id=quote.id, state="draft")
    rows = [{**row, "sales_order_id": order.id} for row in documents.copy_lines(lines, quote_id=quote.id)]
    uow.create_many("sales_order_line", rows)
    documents.refresh(uow, "sales_order", [order.id], lines={order.id: rows})
    return uow.get("sales_order", order.id)


def order_from_opportunity(uow: UnitOfWork, opportunity_id: int, **header: Any) -> Record:
    """A draft order straight from an opportunity, its lines priced as a quote's would be."""
    opportunity = uow.get("opportunity", opportunity_id)
    lines = (uow.select("opportunity_line", fields=("id", "product_id", "product", "description", "quantity", "unit_price"))
             .where(opportunity_id=opportunity.id).order_by("position", "id").all())
    values = opportunity.values
    amount = values.get("amount")
    currency = header.pop("currency", None) or (amount.currency if amount is not None else uow.registry.currency)
    wanted = tuple(Wanted(quantity=Decimal(row["quantity"]), product_id=row.get("product_id"), account_id=values.get("account_id"),
                          description=row.get("description") or row.get("product"),
                          unit_price=None if row.get("product_id") else row.get("unit_price")) for row in lines)
    rounding = orders_settings(uow.crm).rounding(currency)
    today = today_in(uow)
    order = uow.create("sales_order", title=header.pop("title", None) or f"Order: {values.get('name')}",
                       account_id=values.get("account_id"), opportunity_id=opportunity.id, currency=currency, state="draft",
                       document_discount=header.pop("document_discount", None) or Decimal(0), pricing_date=today,
                       rounding_mode=rounding.mode, rounding_method=rounding.method, rounding_places=rounding.places, **header)
    rows = [{key: value for key, value in row.items() if key != "opportunity_line_id"} | {"sales_order_id": order.id}
            for row in price_wanted(uow, wanted, currency=currency, on=today)]
    if rows:
        uow.create_many("sales_order_line", rows)
    documents.refresh(uow, "sales_order", [order.id], lines={order.id: rows})
    return uow.get("sales_order", order.id)


def confirm_order(uow: UnitOfWork, order_id: int) -> Record:
    """Confirm a draft order: stock reserved and fulfilment requests written (see
    :func:`on_moved`), the opportunity won when ``won_on = "confirmed"``."""
    order = uow.get("sales_order", order_id)
    if order.values.get("state") == "draft" and not uow.select("sales_order_line").where(sales_order_id=order.id).exists():
        raise ValidationError(f"sales_order {order.id} has no lines; add lines before confirming it")
    documents.refresh(uow, "sales_order", [order.id])
    return uow.move(uow.get("sales_order", order.id), "confirmed")


def cancel_order(uow: UnitOfWork, order_id: int) -> Record:
    """Cancel an order that is not fulfilled; a confirmed one releases its stock."""
    return uow.move(uow.get("sales_order", order_id), "cancelled")


def on_moved(uow: UnitOfWork, moves: Sequence[tuple[Record, Record, str | None, str | None]]) -> None:
    """After sales orders moved (``crm_after_move``): confirmed ones reserve stock, post their
    fulfilment requests and may win their opportunity; cancelled ones that held stock release
    it; an opportunity left without a live quote or order may be lost."""
    confirmed = [new for _, new, source, target in moves if target == "confirmed" and source == "draft"]
    cancelled = [new for _, new, source, target in moves if target == "cancelled" and source in ("confirmed", "in_fulfilment")]
    if confirmed or cancelled:
        lines = documents.lines_of(uow, documents.DOCUMENTS["sales_order"], [o.id for o in (*confirmed, *cancelled)],
                                   fields=("id", "product_id", "quantity"))
        with uow.acting_as(Actor.system()):
            for order in confirmed:
                reserve(uow, _quantities(lines[order.id]), source=stock_source(order.id))
            for order in cancelled:
                release(uow, _quantities(lines[order.id]), source=stock_source(order.id))
        fulfilment.post_requests(uow, confirmed)
        following.mark_won(uow, "confirmed", confirmed)
    gone = [new.values.get("opportunity_id") for _, new, _, target in moves if target == "cancelled"]
    if gone:
        following.mark_lost_if_closed(uow, gone)


def _quantities(lines: Sequence[dict[str, Any]]) -> list[tuple[int, Decimal]]:
    summed: dict[int, Decimal] = {}
    for line in lines:
        if line.get("product_id"):
            summed[line["product_id"]] = summed.get(line["product_id"], Decimal(0)) + Decimal(line["quantity"])
    return sorted(summed.items())

