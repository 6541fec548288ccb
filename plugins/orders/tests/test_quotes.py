"""Quotes from opportunities: catalog pricing, snapshots, totals, versions, sending."""

from __future__ import annotations

from decimal import Decimal

import pytest
from crmcore.money import Money
from orders_support import seed, settings

from crm_orders.quotes import quote_from_opportunity


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


@pytest.fixture
def app(crm_factory, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=settings(tmp_path))
    return crm, seed(crm)


def test_a_quote_from_an_opportunity_is_priced_by_the_catalog(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        uow.commit()
    with crm.unit_of_work() as uow:
        lines = uow.query("quote_line").where(quote_id=quote.id).order_by("position").all()
        opportunity = uow.get("opportunity", s["opportunity"].id)
    assert [(line.description, line.unit_price, line.discounts, line.tax_code) for line in lines] == [
        ("Lathe L1", eur("9500.00"), ["3.00"], "VAT19"),
        ("Drive belt", eur("45.50"), ["3.00"], "VAT7"),
        ("Training day", eur("600.00"), [], None),
    ]
    assert lines[0].price_snapshot["price_list_id"] == s["price_list"].id
    assert lines[2].price_snapshot is None
    # 2 x 9500 less 3% = 18430.00; 10 x 45.50 less 3% = 441.35; 600.00
    assert quote.subtotal == eur("19471.35")
    assert quote.tax_total == eur("3501.70") + eur("30.89")
    assert quote.grand_total == eur("19471.35") + eur("3532.59")
    assert (quote.state, quote.version_number, quote.is_current, quote.account_id) == ("draft", 1, True, s["account"].id)
    assert opportunity.amount == quote.net_total
