"""Checks of every write of documents and lines, whoever makes it (services, ``crm create``,
imports): a line changes only while its document is a draft, has a positive quantity,
percentages from 0 to 100 as discounts, and a price in its document's currency; a document's
discount is a percentage. One read of the documents per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmcore import Actor
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_orders.documents import document_of_line, parse_discounts

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["check_documents", "check_lines"]


def check_documents(entity: str, items: Iterable[Mapping[str, Any]]) -> None:
    """Checks of quote and order values about to be written.

    :raises ValidationError: naming the field and value.
    """
    for values in items:
        discount = values.get("document_discount")
        if discount is not None and not Decimal(0) <= Decimal(discount) <= Decimal(100):
            raise ValidationError({"document_discount": [f"a discount is a percentage from 0 to 100, got {discount}"]}, entity=entity)


def _parents(uow: UnitOfWork, entity: str, field: str, ids: Iterable[int | None]) -> dict[int, Record]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    with uow.acting_as(Actor.system()):
        return {r.id: r for r in uow.find_many(entity, "id", wanted, fields=("state", "currency"))}


def check_lines(uow: UnitOfWork, line_entity: str, items: Sequence[Mapping[str, Any]], *, old: Sequence[Record] = ()) -> None:
    """Checks of line values about to be written (*old*: the records changed or deleted).

    :raises ValidationError: for a line of a document that is no longer a draft, a quantity
        that is not positive, a bad discount, or a price in another currency.
    """
    document = document_of_line(line_entity)
    if document is None:
        return
    field = document.parent_field
    parents = _parents(uow, document.entity, field, [*(v.get(field) for v in items), *(r.values.get(field) for r in old)])
    for parent in parents.values():
        state = parent.values.get("state")
        if state not in (None, "draft"):
            raise ValidationError(
                f"{document.entity} {parent.id} is {state!r}: its lines are frozen"
                + ("; revise the quote for a new version" if document.entity == "quote" else ""), entity=line_entity)
    for values in items:
        quantity = values.get("quantity")
        if quantity is not None and quantity <= 0:
            raise ValidationError({"quantity": [f"must be more than 0, got {quantity}"]}, entity=line_entity)
        if "discounts" in values:
            parse_discounts(values.get("discounts"))
        rate = values.get("tax_rate")
        if rate is not None and not Decimal(0) <= rate <= Decimal(100):
            raise ValidationError({"tax_rate": [f"a tax rate is a percentage from 0 to 100, got {rate}"]}, entity=line_entity)
        price, parent = values.get("unit_price"), parents.get(values.get(field))
        if isinstance(price, Money) and parent is not None and price.currency != parent.values.get("currency"):
            raise ValidationError({"unit_price": [
                f"{price} is not in {parent.values.get('currency')}, the currency of {document.entity} {parent.id}"]}, entity=line_entity)
