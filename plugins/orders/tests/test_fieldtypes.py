"""The plugin's field types, without an app."""

from __future__ import annotations

import decimal
import json

import pytest
from crm_catalog.pricing import PricedLine, PriceStep
from crmcore.fields import FieldValueError
from crmcore.money import Money

from crm_orders import fieldtypes
from crm_orders.fieldtypes import Currency, Discounts, PriceSnapshot


def test_a_snapshot_is_kept_as_the_catalog_made_it():
    snapshot = PriceSnapshot().sample(1)
    parsed = PriceSnapshot().parse(snapshot)
    assert parsed == snapshot and parsed is not snapshot
    assert PricedLine.from_snapshot(parsed).snapshot() == snapshot


def test_a_priced_line_is_stored_as_its_snapshot_checked_once_and_frozen():
    line = PricedLine.from_snapshot(PriceSnapshot().sample(1))
    parsed = PriceSnapshot().parse(line)
    assert parsed == line.snapshot() and json.dumps(parsed) == json.dumps(line.snapshot())
    assert PriceSnapshot().parse(line) is parsed  # lines sharing a priced line share its snapshot
    assert PriceSnapshot().parse(parsed) is parsed
    with pytest.raises(TypeError, match="a price snapshot is a value and cannot change"):
        parsed["unit_price"]["amount"] = "0.01"
    with pytest.raises(TypeError, match="cannot change"):
        parsed["steps"].append({})
    with pytest.raises(TypeError, match="cannot change"):
        parsed.update(product_id=2)
    copied = dict(parsed)
    copied["product_id"] = 2  # a copy is an ordinary dict
    assert PriceSnapshot().parse(copied)["product_id"] == 2 and parsed["product_id"] == 1
    key = id(line)
    assert key in fieldtypes._CHECKED
    del line
    assert key not in fieldtypes._CHECKED  # nothing is kept once the priced line is gone


def test_a_priced_line_with_a_nul_in_a_text_is_refused():
    price = Money(decimal.Decimal("10.00"), "USD")
    line = PricedLine(1, decimal.Decimal(1), price, price, decimal.Decimal(0), None, decimal.Decimal(0), None, None,
                      (PriceStep("list_price", "product \x00", "list price", None, price),))
    with pytest.raises(FieldValueError, match="NUL character"):
        PriceSnapshot().parse(line)


@pytest.mark.parametrize(("change", "message"), [
    ({"extra": 1}, "its keys are"),
    ({"quantity": "many"}, "quantity is not a decimal: 'many'"),
    ({"unit_price": {"amount": "1", "currency": "XXX"}}, "unknown currency 'XXX'"),
    ({"steps": [{"kind": "list_price"}]}, "step 1 is not a price step"),
    ({"tax_category": "VAT\x00"}, "NUL character"),
])
def test_anything_else_is_refused(change, message):
    with pytest.raises(FieldValueError, match=message):
        PriceSnapshot().parse({**PriceSnapshot().sample(1), **change})


def test_discounts_and_currency():
    assert Discounts().parse(["10", "2.5", 3]) == ["10", "2.5", "3"]
    assert Discounts().parse('["5"]') == ["5"] and Discounts().parse(None) == []
    with pytest.raises(FieldValueError, match="from 0 to 100, got '120'"):
        Discounts().parse(["120"])
    with pytest.raises(FieldValueError, match="a percentage such as"):
        Discounts().parse([1.5])
    bound = Currency().bind(currency="EUR", timezone=None)
    assert bound.sample(1) == "EUR" and bound.parse("usd") == "USD"
