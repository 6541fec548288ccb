"""Invoiced revenue for the catalog's discount tiers (``catalog_revenue``).

The orders plugin already reports confirmed orders, and the catalog sums every answer, so
each sale is reported once: billing reports the posted invoices made without an order, and
every posted credit note as a negative amount (an order's revenue is lowered by what was
credited on its invoices). A document counts on its invoice date; each line with its net
amount (after discounts, before taxes) from the totals engine, towards its product's group.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore import Actor
from crmcore.money import Money

from crm_billing.entities import OPEN_STATES
from crm_billing.invoices import invoice_totals, lines_of

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["invoiced_revenue"]

_FIELDS = ("id", "kind", "account_id", "sales_order_id", "currency", "document_discount", "rounding_mode",
           "rounding_method", "rounding_places")


def invoiced_revenue(uow: UnitOfWork, account_ids: list[int], since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    """``[{"account_id", "product_group_id", "amount": Money}]`` for *account_ids* from *since*
    to *until* (both included): invoices without an order, less every credit note."""
    if not account_ids:
        return []
    wanted = sorted(set(account_ids))
    documents = []
    with uow.acting_as(Actor.system()):
        for first in range(0, len(wanted), 500):
            documents.extend(uow.select("invoice", fields=_FIELDS).where(
                ("account_id", "in", wanted[first:first + 500]), ("state", "in", OPEN_STATES),
                ("invoice_date", ">=", since), ("invoice_date", "<=", until)).all())
        documents = [d for d in documents if d["kind"] == "credit_note" or d["sales_order_id"] is None]
        if not documents:
            return []
        lines = lines_of(uow, [d["id"] for d in documents])
        product_ids = sorted({line["product_id"] for found in lines.values() for line in found if line.get("product_id")})
        groups = ({p.id: p.values.get("group_id") for p in uow.find_many("product", "id", product_ids, fields=("group_id",))}
                  if product_ids else {})
    sums: dict[tuple[int, int | None, str], Money] = {}
    for document in documents:
        found = lines[document["id"]]
        sign = -1 if document["kind"] == "credit_note" else 1
        for line, amounts in zip(found, invoice_totals(document, found).lines, strict=True):
            key = (document["account_id"], groups.get(line.get("product_id")), document["currency"])
            amount = amounts.net * sign
            sums[key] = sums[key] + amount if key in sums else amount
    return [{"account_id": account, "product_group_id": group, "amount": amount}
            for (account, group, _), amount in sorted(sums.items(), key=lambda i: (i[0][0], i[0][1] or 0, i[0][2]))]
