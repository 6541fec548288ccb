"""Quotes from opportunities: catalog pricing, snapshots, totals, versions, sending."""

from __future__ import annotations

from decimal import Decimal

import pytest
from crmcore.errors import ValidationError
from crmcore.money import Money
from orders_support import seed, settings

from crm_orders.quotes import quote_from_opportunity, quotes_from_opportunities, revise_quote, send_quote


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


def test_later_price_list_edits_never_reprice_an_existing_quote(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        line = uow.query("price_list_line").where(price_list_id=s["price_list"].id).first()
        uow.update(line, discount_percent="20")
        uow.commit()
    with crm.unit_of_work() as uow:
        kept = revise_quote(uow, send_quote(uow, quote.id).quote.id)
        assert uow.get("quote", quote.id).grand_total == quote.grand_total
        assert kept.grand_total == quote.grand_total
        lathe = uow.query("quote_line").where(quote_id=kept.id, position=1).first()
        assert lathe.unit_price == eur("9500.00")
        uow.commit()
    with crm.unit_of_work() as uow:
        repriced = revise_quote(uow, send_quote(uow, kept.id).quote.id, reprice=True)
        lathe = uow.query("quote_line").where(quote_id=repriced.id, position=1).first()
    assert lathe.unit_price == eur("8000.00") and lathe.price_snapshot["unit_price"]["amount"] == "8000.00"
    assert repriced.version_number == 3 and repriced.grand_total != quote.grand_total


def test_a_draft_recomputes_its_totals_when_lines_or_its_discount_change(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.update("quote", quote.id, document_discount="10")
        training = uow.query("quote_line").where(quote_id=quote.id, position=3).first()
        uow.delete(training)
        uow.commit()
    with crm.unit_of_work() as uow:
        changed = uow.get("quote", quote.id)
        opportunity = uow.get("opportunity", s["opportunity"].id)
    assert changed.subtotal == eur("18871.35")
    assert changed.discount_total == eur("1887.14")
    assert changed.net_total == eur("16984.21")
    assert opportunity.amount == changed.net_total


def test_a_quote_without_lines_is_not_sent_and_bad_lines_are_refused(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        empty = uow.create("quote", title="Nothing yet", currency="EUR", account_id=s["account"].id)
        with pytest.raises(ValidationError, match=f"quote {empty.id} has no lines"):
            send_quote(uow, empty.id)
        with pytest.raises(ValidationError, match="a discount is a percentage such as"):
            uow.create("quote_line", quote_id=empty.id, description="x", quantity=1, unit_price="1 EUR", discounts=["lots"])
        with pytest.raises(ValidationError, match="is not in EUR"):
            uow.create("quote_line", quote_id=empty.id, description="x", quantity=1, unit_price="1 USD")
        with pytest.raises(ValidationError, match="must be more than 0"):
            uow.create("quote_line", quote_id=empty.id, description="x", quantity=0, unit_price="1 EUR")


def test_a_quote_for_an_account_gets_its_lines_priced_as_they_are_added(app):
    crm, s = app
    from crm_orders.pricing import Wanted
    from crm_orders.quotes import add_lines, new_quote

    with crm.unit_of_work() as uow:
        quote = new_quote(uow, account_id=s["account"].id, currency="EUR")
        assert (quote.title, quote.subtotal) == ("Quote for Acme Metalworks", eur("0.00"))
        quote = add_lines(uow, quote.id, [Wanted(quantity=Decimal(1), product_id=s["install"].id),
                                          Wanted(quantity=Decimal(2), description="Freight", unit_price=eur("150.00"),
                                                 discounts=(Decimal(10),))])
        lines = uow.query("quote_line").where(quote_id=quote.id).order_by("position").all()
        with pytest.raises(ValidationError, match="names no catalog product; give it a unit price"):
            add_lines(uow, quote.id, [Wanted(quantity=Decimal(1), description="Something")])
    assert [(x.position, x.description, x.discounts) for x in lines] == [(1, "Installation", ["3.00"]), (2, "Freight", ["10"])]
    assert quote.subtotal == eur("776.00") + eur("270.00")
    assert quote.opportunity_id is None


def test_quotes_sharing_a_priced_line_each_keep_and_audit_its_snapshot(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        first, second = quotes_from_opportunities(uow, [s["opportunity"].id, s["opportunity"].id])
        made = {q.id: uow.query("quote_line").where(quote_id=q.id).order_by("position").all() for q in (first, second)}
        uow.commit()
    with crm.unit_of_work() as uow:
        stored = {q: uow.query("quote_line").where(quote_id=q).order_by("position").all() for q in made}
        trail = {line.id: uow.history("quote_line", line.id)[0].changes["price_snapshot"][1]
                 for lines in stored.values() for line in lines if line.price_snapshot is not None}
    one, two = (stored[q.id] for q in (first, second))
    assert [line.price_snapshot for line in one] == [line.price_snapshot for line in two] == [
        line.price_snapshot for line in made[first.id]]
    assert one[0].price_snapshot["price_list_id"] == s["price_list"].id
    assert all(trail[line.id] == line.price_snapshot for lines in stored.values() for line in lines if line.id in trail)
    assert len(trail) == 4
