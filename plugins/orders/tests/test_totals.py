"""The totals engine, without an app: examples, then properties over random documents."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from crmcore.errors import ValidationError
from crmcore.money import Money
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_orders.documents import copy_lines, copy_pricing, totals_of
from crm_orders.totals import LineInput, Rounding, compute_totals, discount_factor, rounding_for


def eur(text: str) -> Money:
    return Money(D(text), "EUR")


def test_cascading_discounts_multiply():
    assert discount_factor([D(10), D(5)]) == D("0.855")
    totals = compute_totals([LineInput(D(2), D("100.00"), (D(10), D(5)))], currency="EUR")
    assert totals.lines[0].gross == eur("200.00")
    assert totals.lines[0].subtotal == eur("171.00")
    assert totals.line_discount == eur("29.00")


def test_the_document_discount_is_spread_by_largest_remainder():
    lines = [LineInput(D(1), D("10.00")) for _ in range(3)]
    totals = compute_totals(lines, document_discount=eur("0.10"), currency="EUR")
    shares = [line.document_discount.amount for line in totals.lines]
    assert shares == [D("0.04"), D("0.03"), D("0.03")]
    assert sum(shares) == D("0.10")
    assert totals.net == eur("29.90")


def test_a_percentage_document_discount_is_rounded_once():
    lines = [LineInput(D(1), D("33.33")), LineInput(D(1), D("66.67"))]
    totals = compute_totals(lines, document_discount=D("12.5"), currency="EUR")
    assert totals.document_discount == eur("12.50")
    assert sum(line.document_discount.amount for line in totals.lines) == D("12.50")


def test_line_and_global_tax_rounding_differ_and_both_add_up():
    lines = [LineInput(D(1), D("0.05"), tax_code="std", tax_rate=D(19)) for _ in range(10)]
    per_line = compute_totals(lines, rounding=Rounding("line"), currency="EUR")
    overall = compute_totals(lines, rounding=Rounding("global"), currency="EUR")
    assert per_line.tax == eur("0.10")       # 0.0095 rounds to 0.01 on each line
    assert overall.tax == eur("0.10")        # 0.095 rounds to 0.10 once
    half_even = compute_totals(lines, rounding=Rounding("line", "half_even"), currency="EUR")
    assert half_even.tax == eur("0.10")
    lines = [LineInput(D(1), D("0.10"), tax_code="low", tax_rate=D(5)) for _ in range(5)]
    assert compute_totals(lines, rounding=Rounding("line"), currency="EUR").tax == eur("0.05")
    assert compute_totals(lines, rounding=Rounding("line", "half_even"), currency="EUR").tax == eur("0.00")
    assert compute_totals(lines, rounding=Rounding("global"), currency="EUR").tax == eur("0.03")
    assert sum(line.tax.amount for line in compute_totals(lines, rounding=Rounding("global"), currency="EUR").lines) == D("0.03")


def test_taxes_per_category():
    lines = [LineInput(D(1), D("100"), tax_code="std", tax_rate=D(19)),
             LineInput(D(2), D("10"), tax_code="red", tax_rate=D(7)),
             LineInput(D(1), D("50"), tax_code="std", tax_rate=D(19))]
    totals = compute_totals(lines, currency="EUR")
    assert [(t.code, t.base, t.tax) for t in totals.taxes] == [
        ("red", eur("20.00"), eur("1.40")), ("std", eur("150.00"), eur("28.50"))]
    assert totals.total == eur("199.90")


def test_currency_places():
    assert rounding_for("JPY").places == 0
    assert rounding_for("KWD").places == 3
    assert rounding_for("CHF", methods={"CHF": "half_even"}).method == "half_even"
    totals = compute_totals([LineInput(D(3), D("333.5"))], currency="JPY", rounding=rounding_for("JPY"))
    assert totals.subtotal == Money(D(1001), "JPY")


@pytest.mark.parametrize(("discount", "message"), [
    (D(120), "from 0 to 100"),
    (Money(D("5"), "USD"), "in USD but the document in EUR"),
    (Money(D("500"), "EUR"), "between 0 and the subtotal"),
])
def test_bad_document_discounts_are_refused(discount, message):
    with pytest.raises(ValidationError, match=message):
        compute_totals([LineInput(D(1), D("10"))], document_discount=discount, currency="EUR")


def test_negative_amounts_and_bad_line_discounts_are_refused():
    with pytest.raises(ValidationError, match="line 1: quantity and unit price must not be negative"):
        compute_totals([LineInput(D(-1), D("10"))], currency="EUR")
    with pytest.raises(ValidationError, match="from 0 to 100, got 101"):
        compute_totals([LineInput(D(1), D("10"), (D(101),))], currency="EUR")


# -- properties ----------------------------------------------------------------------------------

amounts = st.decimals(min_value=0, max_value=100000, places=4, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False)
taxes = st.sampled_from([(None, D(0)), ("std", D(19)), ("red", D(7)), ("low", D("5.5")), ("zero", D(0))])


@st.composite
def quote_lines(draw):
    count = draw(st.integers(min_value=0, max_value=12))
    lines = []
    for position in range(count):
        code, rate = draw(taxes)
        lines.append({
            "id": position + 100, "position": position, "product_id": draw(st.integers(1, 50)),
            "description": f"item {position}", "quantity": draw(quantities),
            "unit_price": Money(draw(amounts), "EUR"),
            "discounts": [str(d) for d in draw(st.lists(percents, max_size=3))],
            "tax_code": code, "tax_rate": rate, "price_snapshot": {"unit_price": "1"},
        })
    return lines


@st.composite
def quotes(draw):
    currency = draw(st.sampled_from(["EUR", "JPY", "KWD"]))
    rounding = rounding_for(currency, mode=draw(st.sampled_from(["line", "global"])),
                            default_method=draw(st.sampled_from(["half_up", "half_even"])))
    return {"currency": currency, "document_discount": draw(st.one_of(st.none(), percents)),
            "rounding_mode": rounding.mode, "rounding_method": rounding.method,
            "rounding_places": rounding.places, "pricing_date": None}


@settings(max_examples=300, deadline=None)
@given(quotes(), quote_lines())
def test_a_quote_its_order_and_an_invoice_have_identical_totals(quote, lines):
    lines = [{**line, "unit_price": Money(line["unit_price"].amount, quote["currency"])} for line in lines]
    quoted = totals_of(quote, lines)
    order = copy_pricing(quote)
    order_lines = [{**values, "id": 1000 + n} for n, values in enumerate(copy_lines(lines, quote_id=7))]
    assert [line["quote_line_id"] for line in order_lines] == [line["id"] for line in lines]
    ordered = totals_of(order, order_lines)
    invoiced = totals_of(copy_pricing(order), copy_lines(order_lines))
    assert quoted == ordered == invoiced


@settings(max_examples=300, deadline=None)
@given(quotes(), quote_lines())
def test_lines_always_add_up(quote, lines):
    lines = [{**line, "unit_price": Money(line["unit_price"].amount, quote["currency"])} for line in lines]
    totals = totals_of(quote, lines)
    quantum = totals.rounding.quantum

    def total(name):
        return sum((getattr(line, name).amount for line in totals.lines), D(0))

    assert total("net") == totals.net.amount
    assert total("tax") == totals.tax.amount
    assert total("document_discount") == totals.document_discount.amount
    assert total("subtotal") == totals.subtotal.amount
    assert totals.total.amount == totals.net.amount + totals.tax.amount
    assert sum((t.tax.amount for t in totals.taxes), D(0)) == totals.tax.amount
    assert sum((t.base.amount for t in totals.taxes), D(0)) == totals.net.amount
    for line in totals.lines:
        assert line.net.amount >= 0
        assert line.net.amount % quantum == 0 and line.tax.amount % quantum == 0
    if totals.lines and totals.subtotal.amount > 0:
        # no line's share of the document discount is more than one quantum off its exact share
        for line in totals.lines:
            exact = totals.document_discount.amount * line.subtotal.amount / totals.subtotal.amount
            assert abs(line.document_discount.amount - exact) < quantum
