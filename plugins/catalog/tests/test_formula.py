"""The formula of a price list line, as pure functions (no app, no database)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from crm_catalog.formula import Formula, margin_bounds, round_to


def test_discount_then_surcharge() -> None:
    formula = Formula(discount_percent=D("10"), surcharge=D("2.50"))
    assert formula.adjust(D("100.00")) == D("92.50")


def test_rounding_is_half_up_to_a_multiple() -> None:
    assert round_to(D("1056.00"), D("5")) == D("1055")
    assert round_to(D("1057.50"), D("5")) == D("1060")
    assert round_to(D("19.975"), D("0.05")) == D("20.00")
    assert Formula(rounding=D("0.05")).round(D("19.97")) == D("19.95")
    assert Formula().round(D("19.97")) == D("19.97")


def test_margin_bounds_follow_the_margin_on_the_price() -> None:
    low, high = margin_bounds(D("75"), D("25"), D("50"))
    assert (low, high) == (D("100"), D("150"))
    assert margin_bounds(D("75"), None, None) == (None, None)


@pytest.mark.parametrize(("value", "expected", "bound"), [
    (D("90"), D("100"), "min"),     # below the minimum margin: raised
    (D("120"), D("120"), None),      # within: stands
    (D("200"), D("150"), "max"),     # above the maximum margin: lowered
])
def test_clamp_between_margins(value: D, expected: D, bound: str | None) -> None:
    formula = Formula(min_margin_percent=D("25"), max_margin_percent=D("50"))
    assert formula.clamp(value, D("75")) == (expected, bound)


def test_a_clamped_price_keeps_the_rounding_and_the_bound() -> None:
    formula = Formula(rounding=D("5"), min_margin_percent=D("30"), max_margin_percent=D("40"))
    low, bound = formula.clamp(D("100"), D("71"))      # 71 / 0.7 = 101.43 -> up to 105
    assert (low, bound) == (D("105"), "min")
    high, bound = formula.clamp(D("200"), D("71"))     # 71 / 0.6 = 118.33 -> down to 115
    assert (high, bound) == (D("115"), "max")


def test_without_cost_no_clamp() -> None:
    assert Formula(min_margin_percent=D("25")).clamp(D("10"), None) == (D("10"), None)


def test_describe_names_the_parts() -> None:
    formula = Formula(discount_percent=D("12.5000"), surcharge=D("-1.50"))
    assert formula.describe("list price", "EUR") == "list price - 12.5% - 1.5 EUR"


def test_formula_of_a_line_row() -> None:
    from crmcore.money import Money

    formula = Formula.of({"base": "cost", "discount_percent": D("0"), "surcharge": Money("3.00", "EUR"),
                          "rounding": None, "min_margin_percent": D("10"), "max_margin_percent": None})
    assert formula == Formula(base="cost", surcharge=D("3.00"), min_margin_percent=D("10"))
