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


def _list(uow, name, lines, **values):
    price_list = uow.create("price_list", name=name, currency=values.pop("currency", "EUR"), **values)
    made = [uow.create("price_list_line", price_list_id=price_list.id, **line) for line in lines]
    return price_list, made


def _unit(crm, account, product, quantity=1, on=DAY, **kw) -> Decimal:
    with crm.unit_of_work() as uow:
        line = explain_price(uow, account.id if account is not None else None, product.id, quantity, on, **kw)
    return line.unit_price.amount


def test_audiences_take_precedence_account_then_group_then_segment_then_everyone(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        group = uow.create("customer_group", name="Key accounts")
        uow.update("account", c["retail"].id, customer_group_id=group.id)
        _list(uow, "Everyone", [{"priority": 1, "discount_percent": "1"}], priority=99)
        _list(uow, "Retail", [{"priority": 1, "discount_percent": "2"}], segment="retail")
        _list(uow, "Key", [{"priority": 1, "discount_percent": "3"}], customer_group_id=group.id)
        own, _ = _list(uow, "Own", [{"priority": 1, "discount_percent": "4", "min_quantity": "5"}],
                       account_id=c["retail"].id)
        uow.commit()
    assert _unit(crm, c["retail"], c["laptop"], 5) == Decimal("960.00")     # its own list
    assert _unit(crm, c["retail"], c["laptop"], 1) == Decimal("970.00")     # own list has no line below 5
    assert _unit(crm, c["plain"], c["laptop"]) == Decimal("990.00")         # everyone
    assert _unit(crm, None, c["laptop"]) == Decimal("990.00")
    with crm.unit_of_work() as uow:
        uow.update("price_list", own.id, active=False)
        uow.update("account", c["retail"].id, customer_group_id=None)
        uow.commit()
    assert _unit(crm, c["retail"], c["laptop"], 5) == Decimal("980.00")     # segment


def test_list_priority_then_line_priority_decide(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        _list(uow, "Low", [{"priority": 1, "discount_percent": "50"}], priority=1)
        _list(uow, "High", [{"priority": 5, "group_id": c["laptops"].id, "discount_percent": "10"},
                            {"priority": 9, "product_id": c["laptop"].id, "discount_percent": "20"},
                            {"priority": 7, "product_id": c["laptop"].id, "min_quantity": "10",
                             "discount_percent": "30"}], priority=2)
        uow.commit()
    assert _unit(crm, c["plain"], c["laptop"], 1) == Decimal("800.00")    # priority 9 beats 7 and 5
    assert _unit(crm, c["plain"], c["laptop"], 10) == Decimal("800.00")   # still 9 first (exclusive)
    assert _unit(crm, c["plain"], c["dock"], 1) == Decimal("100.00")      # High has no line: Low applies


def test_quantity_breaks_by_priority(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        _list(uow, "Breaks", [{"priority": 1, "product_id": c["dock"].id, "discount_percent": "5"},
                              {"priority": 2, "product_id": c["dock"].id, "min_quantity": "10", "discount_percent": "10"},
                              {"priority": 3, "product_id": c["dock"].id, "min_quantity": "50", "discount_percent": "20"}])
        uow.commit()
    with crm.unit_of_work() as uow:
        priced = price_lines(uow, [PriceRequest(c["dock"].id, q, None, DAY) for q in (1, 9, 10, "49.5", 50, 500)])
    assert [p.unit_price.amount for p in priced] == [Decimal(x) for x in ("190.00", "190.00", "180.00", "180.00",
                                                                          "160.00", "160.00")]


def test_bases_cost_fixed_and_another_list(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        base, _ = _list(uow, "Base", [{"priority": 1, "discount_percent": "10"}], segment="nobody")
        _list(uow, "Derived", [
            {"priority": 1, "product_id": c["laptop"].id, "base": "price_list", "base_price_list_id": base.id,
             "discount_percent": "5"},
            {"priority": 1, "product_id": c["dock"].id, "base": "cost", "surcharge": "30.00 EUR"},
            {"priority": 1, "product_id": c["setup"].id, "base": "fixed", "fixed_price": "75.5 EUR"},
        ])
        uow.commit()
    with crm.unit_of_work() as uow:
        laptop = explain_price(uow, None, c["laptop"].id, 1, DAY)
    assert laptop.unit_price.amount == Decimal("855.00")                  # 1000 - 10% - 5%
    assert [s.kind for s in laptop.steps] == ["list_price", "price_list_line", "price_list_line"]
    assert laptop.steps[2].detail == "price list 'Base' - 5%"
    assert _unit(crm, None, c["dock"]) == Decimal("150.00")                # cost 120 + 30
    assert _unit(crm, None, c["setup"]) == Decimal("75.50")


def test_validity_dates_and_currency(app) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        _list(uow, "Summer", [{"priority": 1, "discount_percent": "10"}],
              valid_from=dt.date(2026, 6, 1), valid_to=dt.date(2026, 8, 31))
        _list(uow, "Dollars", [{"priority": 1, "base": "fixed", "fixed_price": "1100 USD"}], currency="USD")
        uow.commit()
    assert _unit(crm, None, c["laptop"], on=dt.date(2026, 5, 31)) == Decimal("1000.00")
    assert _unit(crm, None, c["laptop"], on=dt.date(2026, 6, 1)) == Decimal("900.00")
    assert _unit(crm, None, c["laptop"], on=dt.date(2026, 9, 1)) == Decimal("1000.00")
    with crm.unit_of_work() as uow:
        line = explain_price(uow, None, c["laptop"].id, 1, DAY, currency="USD")
        assert line.unit_price == Money("1100.00", "USD")
        with pytest.raises(ValidationError, match="no price list prices product 'LAP-14' in GBP"):
            explain_price(uow, None, c["laptop"].id, 1, DAY, currency="GBP")


@pytest.mark.parametrize(("stacking", "expected", "line_index"), [
    ("exclusive", "900.00", 0),            # the first by priority: product line -10%
    ("cumulative", "749.70", 2),           # -10%, then -2% and -15% each on the price before
    ("best_for_customer", "850.00", 2),    # the lowest of 900, 980, 850
])
def test_stacking_policies(app, stacking: str, expected: str, line_index: int) -> None:
    crm, c = app
    with crm.unit_of_work() as uow:
        _, lines = _list(uow, "Stack", [
            {"priority": 9, "product_id": c["laptop"].id, "discount_percent": "10"},
            {"priority": 5, "discount_percent": "2"},
            {"priority": 1, "group_id": c["hardware"].id, "discount_percent": "15"},
        ], stacking=stacking)
        uow.commit()
    with crm.unit_of_work() as uow:
        line = explain_price(uow, None, c["laptop"].id, 1, DAY)
    assert line.unit_price.amount == Decimal(expected)
    assert line.price_list_line_id == lines[line_index].id
    if stacking == "cumulative":
        assert [s.output.amount for s in line.steps[1:4]] == [Decimal("900.00"), Decimal("882.00"), Decimal("749.70")]
        assert line.steps[2].detail == "previous price - 2%"
    if stacking == "best_for_customer":
        assert line.steps[-1].detail.startswith(f"lowest of line {lines[2].id} and line {lines[0].id}: 900.00 EUR")


def test_pricing_sends_the_same_few_statements_for_3_or_300_lines(app) -> None:
    import sqlalchemy as sa

    crm, c = app
    with crm.unit_of_work() as uow:
        made = uow.create_many("product", [{"code": f"X{i}", "name": f"X {i}", "list_price": "10 EUR",
                                            "group_id": c["laptops"].id} for i in range(100)])
        accounts = uow.create_many("account", [{"name": f"A{i}", "segment": "retail"} for i in range(30)])
        _list(uow, "Retail", [{"priority": 1, "group_id": c["hardware"].id, "discount_percent": "5"}], segment="retail")
        own, _ = _list(uow, "Own", [{"priority": 1, "product_id": made[0].id, "discount_percent": "9"}],
                       account_id=accounts[0].id)
        uow.create("customer_discount", account_id=accounts[1].id, percent="1")
        uow.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(crm.engine, "before_cursor_execute", count)
    try:
        with crm.unit_of_work() as uow:
            few = price_lines(uow, [PriceRequest(made[i].id, 1, accounts[i].id, DAY) for i in range(3)])
        sent_for_few = len(statements)
        statements.clear()
        with crm.unit_of_work() as uow:
            many = price_lines(uow, [PriceRequest(made[i % 100].id, 1 + i % 7, accounts[i % 30].id, DAY)
                                     for i in range(300)])
        sent_for_many = len(statements)
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", count)
    assert sent_for_many == sent_for_few <= 15
    assert few[0].unit_price == Money("9.10", "EUR") and few[1].discount_percent == Decimal("1.00")
    assert many[3].unit_price == Money("9.50", "EUR") and many[3].price_list_id != own.id
