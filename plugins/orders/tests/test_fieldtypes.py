"""The plugin's field types, without an app."""

from __future__ import annotations

import pytest
from crm_catalog.pricing import PricedLine
from crmcore.fields import FieldValueError

from crm_orders.fieldtypes import Currency, Discounts, PriceSnapshot


def test_a_snapshot_is_kept_as_the_catalog_made_it():
    snapshot = PriceSnapshot().sample(1)
    parsed = PriceSnapshot().parse(snapshot)
    assert parsed == snapshot and parsed is not snapshot
    assert PricedLine.from_snapshot(parsed).snapshot() == snapshot


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
