"""Confirmed revenue for the catalog's discount tiers (``catalog_revenue``).

An order counts from the day it was confirmed (in the deployment's time zone) while it is
confirmed, in fulfilment or fulfilled; each line counts with its net amount (after line and
document discounts, before taxes) computed by the totals engine, towards its product's group.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore import Actor
from crmcore.money import Money

from crm_orders import documents

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["COUNTED_STATES", "confirmed_revenue"]

COUNTED_STATES = ("confirmed", "in_fulfilment", "fulfilled")
_ORDER_FIELDS = ("id", "account_id", "currency", "document_discount", "rounding_mode", "rounding_method", "rounding_places")
_LINE_FIELDS = ("id", "position", "product_id", "quantity", "unit_price", "discounts", "tax_code", "tax_rate")


def confirmed_revenue(uow: UnitOfWork, account_ids: list[int], since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    """``[{"account_id", "product_group_id", "amount": Money}]`` of the orders of *account_ids*
    confirmed from *since* to *until* (both included); one row per account, group and currency."""
    if not account_ids:
        return []
    tz = uow.registry.timezone
    start = dt.datetime.combine(since, dt.time(), tz)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tz)
    with uow.acting_as(Actor.system()):
        orders = []
        wanted = sorted(set(account_ids))
        for first in range(0, len(wanted), 500):
            orders.extend(uow.select("sales_order", fields=_ORDER_FIELDS).where(
                ("account_id", "in", wanted[first:first + 500]), ("state", "in", COUNTED_STATES),
                ("confirmed_at", ">=", start), ("confirmed_at", "<", end)).all())
        if not orders:
            return []
        lines = documents.lines_of(uow, documents.DOCUMENTS["sales_order"], [o["id"] for o in orders], fields=_LINE_FIELDS)
        product_ids = sorted({line["product_id"] for found in lines.values() for line in found if line.get("product_id")})
        groups = {p.id: p.values.get("group_id") for p in uow.find_many("product", "id", product_ids, fields=("group_id",))} if product_ids else {}
    sums: dict[tuple[int, int | None, str], Money] = {}
    for order in orders:
        order_lines = lines[order["id"]]
        totals = documents.totals_of(order, order_lines)
        for line, amounts in zip(order_lines, totals.lines, strict=True):
            key = (order["account_id"], groups.get(line.get("product_id")), order["currency"])
            sums[key] = sums[key] + amounts.net if key in sums else amounts.net
    return [{"account_id": account, "product_group_id": group, "amount": amount}
            for (account, group, _), amount in sorted(sums.items(), key=lambda item: (item[0][0], item[0][1] or 0, item[0][2]))]
