"""``crm demo`` tells the catalog chapter when the catalog is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import create_app, demo


def test_the_demo_has_a_catalog_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["catalog"], echo=lines.append, today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "Catalog: 5 products in 4 groups, vendor Northwind Components supplies 3 of them" in text
    assert "joins the retail segment with a 3% loyalty discount" in text
    assert "       minimum margin 25.00% over cost 840.00 USD: 1055.00 USD -> 1120.00 USD" in text
    assert "    unit price 1120.00 USD, customer discount 3%, net 1086.40 USD, tax STD 20.00%" in text
    assert "  reorder LAP-14: available 4 at reorder point 5, from Northwind Components in 14 days at 820.00 USD" in text
    crm = create_app({"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}", "plugins": ["catalog"]}})
    with crm.unit_of_work() as uow:
        assert uow.query("product").count() == 5
        assert uow.query("price_list").where(segment="retail").count() == 1
        assert uow.query("customer_discount").where(kind="manual").count() == 1
        assert uow.query("account").where(vendor=True).count() == 1
    crm.close()
