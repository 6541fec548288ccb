"""Explanations: every step with its input and output, customer discounts, snapshots."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from catalog_support import DAY, catalog
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_catalog.cli import explain_lines
from crm_catalog.pricing import PricedLine, PriceRequest, PriceStep, explain_price, price_lines


def _setup(crm, c):
    with crm.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR", segment="retail")
        line = uow.create("price_list_line", price_list_id=retail.id, group_id=c["hardware"].id, priority=10,
                          discount_percent="8", rounding="5", min_margin_percent="35")
        uow.create("customer_discount", account_id=c["retail"].id, percent="3", note="loyalty")
        uow.create("customer_discount", account_id=c["retail"].id, percent="5", group_id=c["laptops"].id,
                   valid_from=DAY, valid_to=DAY + dt.timedelta(days=30))
        uow.commit()
    return retail, line


def test_the_explanation_chains_each_step(crm_factory) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    retail, rule = _setup(crm, c)
    with crm.unit_of_work() as uow:
        line = explain_price(uow, c["retail"].id, c["laptop"].id, Decimal(2), DAY)
    kinds = [(s.kind, s.input and s.input.amount, s.output.amount) for s in line.steps]
    assert kinds == [
        ("list_price", None, Decimal("1000.00")),
        ("price_list_line", Decimal("1000.00"), Decimal("920.00")),
        ("clamp", Decimal("920.00"), Decimal("1080.00")),
        ("customer_discount", Decimal("1080.00"), Decimal("1026.00")),
    ]
    for before, after in zip(line.steps, line.steps[1:], strict=False):
        assert after.input == before.output       # each step starts where the one before ended
    assert line.steps[1].source == f"price list 'Retail' line {rule.id} (priority 10)"
    assert line.steps[1].detail == "list price - 8%"
    clamp = next(s for s in line.steps if s.kind == "clamp")
    assert clamp.detail == "minimum margin 35.00% over cost 700.00 EUR"
    assert clamp.output.amount == Decimal("1080")                 # 700 / 0.65 = 1076.92, up to a multiple of 5
    assert line.unit_price == Money("1080.00", "EUR")
    assert (line.price_list_id, line.price_list_line_id) == (retail.id, rule.id)
    discount = line.steps[-1]
    assert (discount.kind, discount.detail) == ("customer_discount", "- 5.00%; best of 2")
    assert (line.discount_percent, line.net_unit_price.amount) == (Decimal("5.00"), Decimal("1026.0000"))
    text = explain_lines(line)
    assert text[0] == "1. list_price: product LAP-14" and text[1] == "   list price: 1000.00 EUR"
    assert text[-1] == "unit price 1080.00 EUR, customer discount 5%, net 1026.00 EUR, tax VAT19 19.00%"


def test_discounts_follow_group_and_validity(crm_factory) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    _setup(crm, c)
    with crm.unit_of_work() as uow:
        later, dock, setup = price_lines(uow, [
            PriceRequest(c["laptop"].id, 1, c["retail"].id, DAY + dt.timedelta(days=31)),
            PriceRequest(c["dock"].id, 1, c["retail"].id, DAY),
            PriceRequest(c["setup"].id, 1, c["retail"].id, DAY)])
    assert later.discount_percent == Decimal("3.00")             # the laptop discount ended
    assert dock.discount_percent == Decimal("3.00")              # not a laptop
    assert setup.discount_percent == Decimal("3.00") and setup.unit_price == Money("90.00", "EUR")


def test_cascaded_discounts_multiply(crm_factory) -> None:
    crm = crm_factory(plugins=["catalog"], settings={"plugins": {"catalog": {"discount_combination": "cascade"}}})
    c = catalog(crm)
    _setup(crm, c)
    with crm.unit_of_work() as uow:
        line = explain_price(uow, c["retail"].id, c["laptop"].id, 1, DAY)
    assert line.discount_percent == Decimal("7.85")              # 1 - 0.95 * 0.97
    assert [s.detail for s in line.steps if s.kind == "customer_discount"] == ["- 5.00% (cascaded)", "- 3.00% (cascaded)"]


def test_a_snapshot_does_not_follow_later_rule_edits(crm_factory) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    _, rule = _setup(crm, c)
    with crm.unit_of_work() as uow:
        kept = explain_price(uow, c["retail"].id, c["dock"].id, 4, DAY).snapshot()
        uow.update("price_list_line", rule.id, discount_percent="20", min_margin_percent=None)
        uow.commit()
    with crm.unit_of_work() as uow:
        now = explain_price(uow, c["retail"].id, c["dock"].id, 4, DAY)
    then = PricedLine.from_snapshot(kept)
    assert then.unit_price == Money("185.00", "EUR") and now.unit_price == Money("160.00", "EUR")
    assert then.snapshot() == kept
    assert kept["steps"][1] == {"kind": "price_list_line", "source": f"price list 'Retail' line {rule.id} (priority 10)",
                                "detail": "list price - 8%", "input": {"amount": "200.00", "currency": "EUR"},
                                "output": {"amount": "184.00", "currency": "EUR"}}
    assert PriceStep.from_snapshot(kept["steps"][1]).output == Money("184.00", "EUR")


def test_a_bad_snapshot_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a priced line's snapshot"):
        PricedLine.from_snapshot({"product_id": 1})


def test_a_quantity_must_be_positive(crm_factory) -> None:
    crm = crm_factory(plugins=["catalog"])
    c = catalog(crm)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="more than 0"):
        explain_price(uow, None, c["dock"].id, 0, DAY)
