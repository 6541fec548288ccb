"""Small helpers the catalog's tests share (plain functions over the public API, no fixtures)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import Crm

#: The day prices are asked for in the tests.
DAY = dt.date(2026, 6, 1)


def catalog(crm: Crm) -> dict[str, Any]:
    """A small catalog: groups hardware > laptops, a tax category, three products, a segment
    account and a plain account. Returns the records by name."""
    with crm.unit_of_work() as uow:
        hardware = uow.create("product_group", name="Hardware", code="HW")
        laptops = uow.create("product_group", name="Laptops", code="LAP", parent_id=hardware.id)
        services = uow.create("product_group", name="Services", code="SRV")
        vat = uow.create("tax_category", code="VAT19", name="Standard VAT", rate="19.00")
        laptop = uow.create("product", code="LAP-14", name="Laptop 14", group_id=laptops.id,
                            list_price="1000.00 EUR", cost="700.00 EUR", tax_category_id=vat.id)
        dock = uow.create("product", code="DOCK", name="Dock", group_id=hardware.id,
                          list_price="200.00 EUR", cost="120.00 EUR", tax_category_id=vat.id)
        setup = uow.create("product", code="SETUP", name="Setup", group_id=services.id,
                           list_price="90.00 EUR")
        retail = uow.create("account", name="Retail Co", segment="retail")
        plain = uow.create("account", name="Plain Co")
        uow.commit()
    return {"hardware": hardware, "laptops": laptops, "services": services, "vat": vat, "laptop": laptop,
            "dock": dock, "setup": setup, "retail": retail, "plain": plain}
