"""Products and price lists go through the generic import and export (crmcore.transfer)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from catalog_support import DAY, catalog
from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.transfer import export, import_file

from crm_catalog.pricing import explain_price

ENTITIES = ("product_group", "tax_category", "product", "price_list", "price_list_line")


def test_a_product_file_imports_and_updates_by_code(crm_factory, tmp_path: Path) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    path = tmp_path / "products.csv"
    path.write_text("Code,Name,List price,Cost,Product group,Unit of measure\n"
                    f"CABLE,USB cable,9.90 EUR,2.10 EUR,{c['hardware'].id},piece\n"
                    f"DOCK,Dock (new model),210.00 EUR,,{c['hardware'].id},unit\n", encoding="utf-8")
    report = import_file(crm, "product", path, dedupe_on="code", on_duplicate="update")
    assert (report.created, report.updated) == (1, 1)
    with crm.unit_of_work() as uow:
        cable = uow.query("product").where(code="CABLE").first()
        assert (cable.list_price, cable.uom, cable.group_id) == (Money("9.90", "EUR"), "piece", c["hardware"].id)
        assert uow.get("product", c["dock"].id).list_price == Money("210.00", "EUR")


def test_a_catalog_exports_and_imports_into_another_deployment_with_the_same_prices(crm_factory, tmp_path: Path) -> None:
    source = crm_factory(plugins=["catalog"])
    c = catalog(source)
    with source.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR", stacking="best_for_customer")
        uow.create("price_list_line", price_list_id=retail.id, group_id=c["hardware"].id, priority=2,
                   discount_percent="7.5", rounding="0.5", surcharge="1.25 EUR")
        uow.create("price_list_line", price_list_id=retail.id, product_id=c["setup"].id, priority=3, base="fixed",
                   fixed_price="80 EUR")
        uow.commit()
    for entity in ENTITIES:
        assert export(source, entity, tmp_path / f"{entity}.csv").records > 0
    target = crm_factory(plugins=["catalog"])
    for entity in ENTITIES:
        import_file(target, entity, tmp_path / f"{entity}.csv", keep_ids=True)
    for crm in (source, target):
        with crm.unit_of_work() as uow:
            laptop = explain_price(uow, None, c["laptop"].id, 1, DAY)
            setup = explain_price(uow, None, c["setup"].id, 1, DAY)
            assert (laptop.unit_price.amount, setup.unit_price.amount) == (Decimal("926.50"), Decimal("80.00"))
    with (tmp_path / "price_list_line.csv").open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert {"price_list_id", "product_id", "group_id", "min_quantity", "priority", "discount_percent"} <= set(header)


def test_an_imported_rule_tie_is_refused_naming_the_products(crm_factory, tmp_path: Path) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    with crm.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR")
        uow.commit()
    path = tmp_path / "lines.csv"
    path.write_text("Price list,Product,Product group,Priority,Discount percent\n"
                    f"{retail.id},{c['laptop'].id},,5,10\n{retail.id},,{c['laptops'].id},5,12\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="both cover LAP-14"):
        import_file(crm, "price_list_line", path)
    with crm.unit_of_work() as uow:
        assert uow.query("price_list_line").count() == 0
