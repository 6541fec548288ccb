"""Special offers made as quotes, when the orders plugin is enabled.

An offer campaign (channel ``offer``) reaches each member with a draft quote, made through the
orders plugin's public API (:func:`crm_orders.quotes.create_quotes`, all quotes of a chunk at
once, priced by the catalog): for the member's account (an account itself, a contact's or a
lead's account), owned by the member's owner, with the offered product (the campaign's
``product_code``) at quantity 1 and the campaign's ``offer_discount`` as a line discount (with
no product, as the document's discount), valid until the campaign ends, the campaign's message
as its notes. A member without an account (a lead not converted yet) gets a planned task to
make the offer, as every member does without orders.

This module imports the orders plugin only when it is enabled; without it nothing here runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crm_marketing.errors import CampaignError

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["enabled", "make_quotes"]


def enabled(uow: UnitOfWork) -> bool:
    """Whether offers become quotes: the orders plugin (its ``quote`` entity) is enabled."""
    return "quote" in uow.registry.entity_names


def make_quotes(uow: UnitOfWork, campaign: Record, rows: Sequence[tuple[dict[str, Any], str]],
                owners: Sequence[int | None]) -> list[int]:
    """A draft quote per member of *rows* (each with an ``account_id``), owned by *owners*; the
    ids of the quotes, in the same order.

    :raises CampaignError: for a ``product_code`` the catalog does not have.
    """
    if not rows:
        return []
    from crm_orders.pricing import Wanted
    from crm_orders.quotes import QuoteSpec, create_quotes

    values = campaign.values
    discount = values.get("offer_discount")
    product_id = None
    if values.get("product_code"):
        found = uow.find_many("product", "code", [values["product_code"]])
        if not found:
            raise CampaignError({"product_code": [f"campaign {campaign.id} offers product {values['product_code']!r}, "
                                                  "which the catalog does not have; give a catalog product code"]},
                                entity="campaign")
        product_id = found[0].id
    money = values.get("budget") or values.get("expected_revenue")
    currency = money.currency if money is not None else uow.registry.currency
    title = f"Offer: {values['name']}"[:200]
    specs = []
    for row, _ in rows:
        lines: tuple[Wanted, ...] = ()
        if product_id is not None:
            lines = (Wanted(quantity=Decimal(1), product_id=product_id, account_id=row["account_id"],
                            discounts=(Decimal(discount),) if discount else ()),)
        specs.append(QuoteSpec(
            title=title, currency=currency, lines=lines, account_id=row["account_id"],
            valid_until=values.get("ends_on"), notes=values.get("message"),
            document_discount=Decimal(discount) if discount and product_id is None else None,
        ))
    quotes = create_quotes(uow, specs)
    moves = [(quote, {"owner_id": owner}) for quote, owner in zip(quotes, owners, strict=True)
             if owner is not None and quote.values.get("owner_id") != owner]
    if moves:
        uow.update_many("quote", moves)
    return [quote.id for quote in quotes]
