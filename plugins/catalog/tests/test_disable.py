"""Without the catalog, or with it disabled on a database it once ran on, the core and sales
work as before."""

from __future__ import annotations

import pytest
from crm_sales import convert_lead
from crmcore.errors import NotFoundError
from crmcore.money import Money


def _sell(crm) -> None:
    with crm.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace", company="Engines Ltd", email="ada@engines.example",
                          status="qualified")
        done = convert_lead(uow, lead, opportunity={"amount": "1000 EUR"})
        line = uow.create("opportunity_line", opportunity_id=done.opportunity.id, product="Analytical engine",
                          quantity="2", unit_price="500 EUR")
        uow.commit()
    assert line.line_total == Money("1000.0000", "EUR")
    with crm.unit_of_work() as uow:
        assert uow.query("account").where(name="Engines Ltd").count() == 1
        assert uow.query("opportunity_line").where(product="Analytical engine").count() == 1


def test_core_and_sales_work_without_the_catalog(crm_factory) -> None:
    crm = crm_factory()
    assert "catalog" not in crm.plugins.plugins and "sales" in crm.plugins.plugins
    _sell(crm)
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError):
        uow.query("product").count()


def test_disabling_the_catalog_keeps_core_and_sales_working_on_its_database(crm_factory) -> None:
    url = crm_factory.database_url(file=True)
    with_catalog = crm_factory(plugins=["catalog"], database=url)
    with with_catalog.unit_of_work() as uow:
        account = uow.create("account", name="Supplier", vendor=True, segment="retail")
        product = uow.create("product", code="P1", name="Part", list_price="10 EUR")
        uow.create("vendor_product", vendor_id=account.id, product_id=product.id, cost="7 EUR")
        uow.commit()
    with_catalog.close()
    without = crm_factory(database=url, create_schema=False)  # catalog no longer listed
    assert "catalog" not in without.plugins.plugins
    with without.unit_of_work() as uow:
        assert uow.get("account", account.id).name == "Supplier"
        uow.update("account", account.id, name="Supplier Ltd")
        uow.commit()
    _sell(without)
    again = crm_factory(plugins=["catalog"], database=url, create_schema=False)
    with again.unit_of_work() as uow:
        assert uow.get("product", product.id).list_price == Money("10.00", "EUR")
        assert uow.query("opportunity_line").first().product_id is None
        assert uow.get("account", account.id).vendor is True
        assert uow.query("vendor_product").count() == 1
