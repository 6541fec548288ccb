"""Price lists, lines, precedence and customer discounts through price_lines and explain_price."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from catalog_support import DAY, catalog
from crmcore.errors import NotFoundError, ValidationError
from crmcore.money import Money

from crm_catalog.pricing import PricedLine, PriceRequest, explain_price, price_lines


@pytest.fixture
def app(crm_factory):
    crm = crm_factory(plugins=["catalog"])
    return crm, catalog(crm)


def test_without_price_lists_the_list_price_stands(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        [line] = price_lines(uow, [PriceRequest(c["laptop"].id, Decimal(2), c["plain"].id, DAY)])
    assert line.unit_price == Money("1000.00", "EUR")
    assert line.list_price == Money("1000.00", "EUR")
    assert (line.discount_percent, line.tax_category, line.tax_rate) == (0, "VAT19", Decimal("19.00"))
    assert line.price_list_id is None and [s.kind for s in line.steps] == ["list_price"]


def test_a_segment_list_prices_its_segment_only(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR", segment="retail")
        line = uow.create("price_list_line", price_list_id=retail.id, group_id=c["hardware"].id, priority=10,
                          discount_percent="10")
        uow.commit()
    with crm.unit_of_work() as uow:
        priced = price_lines(uow, [PriceRequest(c["laptop"].id, 1, c["retail"].id, DAY),
                                   PriceRequest(c["laptop"].id, 1, c["plain"].id, DAY),
                                   PriceRequest(c["setup"].id, 1, c["retail"].id, DAY)])
    assert [p.unit_price.amount for p in priced] == [Decimal("900.00"), Decimal("1000.00"), Decimal("90.00")]
    assert (priced[0].price_list_id, priced[0].price_list_line_id) == (retail.id, line.id)


def test_snapshot_round_trips(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR", segment="retail")
        uow.create("price_list_line", price_list_id=retail.id, priority=1, discount_percent="12.5", rounding="5")
        uow.create("customer_discount", account_id=c["retail"].id, percent="3")
        uow.commit()
    with crm.unit_of_work() as uow:
        line = explain_price(uow, c["retail"].id, c["laptop"].id, Decimal(3), DAY)
    assert PricedLine.from_snapshot(line.snapshot()) == line
    assert line.unit_price == Money("875.00", "EUR") and line.discount_percent == Decimal("3.00")
    assert [s.kind for s in line.steps] == ["list_price", "price_list_line", "customer_discount"]


def test_unknown_and_inactive_products_are_named(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        uow.update(c["dock"], active=False)
        uow.commit()
    with crm.unit_of_work() as uow:
        with pytest.raises(NotFoundError, match="product 999"):
            price_lines(uow, [PriceRequest(999, 1, None, DAY)])
        with pytest.raises(ValidationError, match="'DOCK'"):
            price_lines(uow, [PriceRequest(c["dock"].id, 1, None, dt.date(2026, 1, 1))])
