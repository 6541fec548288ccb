"""Helpers the billing tests share (plain functions over the public API, no fixtures)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_orders.orders import confirm_order
from crmcore import Crm

DAY = dt.date(2026, 3, 2)


def settings(tmp_path: Any, **billing: Any) -> dict[str, Any]:
    """Settings with a file sink for the orders' fulfilment requests under *tmp_path*."""
    return {
        "plugins": {"billing": {"payment_terms": {
            "net30": [{"days": 30, "percent": 100}],
            "split": [{"days": 30, "percent": 50}, {"days": 60, "percent": 50}],
        }, **billing}},
        "outbox": {"sinks": {"sales_office_review": {"type": "file", "path": str(tmp_path / "office")}}},
    }


def seed(crm: Crm, *, owner: int | None = None) -> dict[str, Any]:
    """Two accounts, a taxed product and a confirmed order of three lines for the first."""
    with crm.unit_of_work() as uow:
        vat = uow.create("tax_category", code="VAT19", name="Standard VAT", rate="19.00")
        group = uow.create("product_group", name="Machines", code="MAC")
        lathe = uow.create("product", code="LATHE", name="Lathe", group_id=group.id, list_price="1000.00 EUR",
                           tax_category_id=vat.id)
        extra = {"owner_id": owner} if owner is not None else {}
        acme = uow.create("account", name="Acme Metalworks", **extra)
        other = uow.create("account", name="Initech")
        order = uow.create("sales_order", title="Lathes for Acme", account_id=acme.id, currency="EUR", state="draft")
        uow.create_many("sales_order_line", [
            {"sales_order_id": order.id, "position": 1, "product_id": lathe.id, "description": "Lathe", "quantity": 2,
             "unit_price": "1000.00 EUR", "tax_code": "VAT19", "tax_rate": "19"},
            {"sales_order_id": order.id, "position": 2, "description": "Training", "quantity": 3,
             "unit_price": "333.33 EUR", "discounts": ["10"], "tax_code": "VAT19", "tax_rate": "19"},
            {"sales_order_id": order.id, "position": 3, "description": "Manual", "quantity": 1,
             "unit_price": "49.99 EUR", "tax_code": "VAT7", "tax_rate": "7"},
        ])
        uow.commit()
    with crm.unit_of_work() as uow:
        confirm_order(uow, order.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        order = uow.get("sales_order", order.id)
        lines = uow.query("sales_order_line").where(sales_order_id=order.id).order_by("position").all()
    return {"account": acme, "other": other, "order": order, "lines": lines, "lathe": lathe, "group": group}
