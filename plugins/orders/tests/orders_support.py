"""Helpers the orders tests share (plain functions over the public API, no fixtures)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import Crm

#: The day the tests price on.
DAY = dt.date(2026, 6, 1)


def settings(tmp_path: Any, **orders: Any) -> dict[str, Any]:
    """Settings with production and sales-office file sinks under *tmp_path*."""
    return {
        "plugins": {"orders": {"routes": {"Machines": "production", "Services": "delivery"}, **orders}},
        "outbox": {"sinks": {
            "production": {"type": "file", "path": str(tmp_path / "production")},
            "delivery": {"type": "file", "path": str(tmp_path / "delivery")},
            "sales_office_review": {"type": "file", "path": str(tmp_path / "office")},
        }},
    }


def seed(crm: Crm, *, owner: Any = None) -> dict[str, Any]:
    """A catalog (machines, spare parts, services), a segment price list, a customer discount,
    an account and an opportunity at rfp_received with two product lines and a free-text one."""
    with crm.unit_of_work() as uow:
        machines = uow.create("product_group", name="Machines", code="MAC")
        lathes = uow.create("product_group", name="Lathes", code="LAT", parent_id=machines.id)
        parts = uow.create("product_group", name="Spare parts", code="SPA")
        services = uow.create("product_group", name="Services", code="SRV")
        vat = uow.create("tax_category", code="VAT19", name="Standard VAT", rate="19.00")
        low = uow.create("tax_category", code="VAT7", name="Reduced VAT", rate="7.00")
        lathe = uow.create("product", code="LATHE-1", name="Lathe L1", group_id=lathes.id, list_price="10000.00 EUR",
                           cost="6000.00 EUR", tax_category_id=vat.id)
        belt = uow.create("product", code="BELT", name="Drive belt", group_id=parts.id, list_price="45.50 EUR",
                          tax_category_id=low.id)
        install = uow.create("product", code="INSTALL", name="Installation", group_id=services.id,
                             list_price="800.00 EUR", tax_category_id=vat.id)
        account = uow.create("account", name="Acme Metalworks", segment="industry",
                             **({"owner_id": owner} if owner is not None else {}))
        uow.create("price_list", name="Industry", currency="EUR", segment="industry")
        segment_list = uow.query("price_list").where(name="Industry").first()
        uow.create("price_list_line", price_list_id=segment_list.id, group_id=machines.id, priority=10, discount_percent="5")
        uow.create("customer_discount", account_id=account.id, percent="3")
        values: dict[str, Any] = {"name": "Acme lathe line", "account_id": account.id, "stage": "rfp_received",
                                  "amount": "1.00 EUR"}
        if owner is not None:
            values["owner_id"] = owner
        opportunity = uow.create("opportunity", **values)
        uow.create("opportunity_line", opportunity_id=opportunity.id, product="Lathe L1", product_id=lathe.id, quantity=2,
                   unit_price="10000.00 EUR", position=1)
        uow.create("opportunity_line", opportunity_id=opportunity.id, product="Drive belt", product_id=belt.id, quantity=10,
                   unit_price="45.50 EUR", position=2)
        uow.create("opportunity_line", opportunity_id=opportunity.id, product="Training day", quantity=1,
                   unit_price="600.00 EUR", position=3)
        uow.commit()
    return {"machines": machines, "lathes": lathes, "parts": parts, "services": services, "vat": vat, "low": low,
            "lathe": lathe, "belt": belt, "install": install, "account": account, "opportunity": opportunity,
            "price_list": segment_list}
