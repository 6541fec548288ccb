"""Market plans: targets per product group × geography × period against actuals from won
deals (or from a plugin answering marketing_actuals), rolled up the geography tree exactly."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from crmcore import Money, ValidationError, hookimpl
from hypothesis import given
from hypothesis import strategies as st
from marketing_support import world

from crm_marketing.geography import Tree
from crm_marketing.plans import add_targets, periods, plan_report

D = decimal.Decimal


def _eur(value: str | int) -> Money:
    return Money(D(value), "EUR")


@st.composite
def _trees(draw: Any) -> tuple[Tree, dict[int, int]]:
    size = draw(st.integers(1, 25))
    parents: dict[int, int | None] = {1: None}
    for node in range(2, size + 1):
        parents[node] = draw(st.one_of(st.none(), st.integers(1, node - 1)))
    values = draw(st.dictionaries(st.integers(1, size), st.integers(-10**6, 10**6)))
    return Tree(parents), values


@given(_trees())
def test_each_node_totals_its_own_value_plus_its_childrens_totals(case: tuple[Tree, dict[int, int]]) -> None:
    tree, values = case
    totals = tree.roll_up(values, 0)
    kids = tree.children
    for node in tree.parents:
        assert totals[node] == values.get(node, 0) + sum(totals[c] for c in kids.get(node, ()))
        assert totals[node] == sum(values.get(n, 0) for n in tree.subtree(node))
    assert sum(totals[r] for r in kids.get(None, ())) == sum(values.values())


@given(st.integers(0, 10**9), st.lists(st.integers(0, 1000), min_size=1, max_size=12).filter(any))
def test_distribution_shares_sum_to_the_total_exactly(total: int, weights: list[int]) -> None:
    from crm_marketing.plans import distribute

    shares = distribute(total, [D(w) for w in weights])
    assert sum(shares) == total
    whole = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        assert abs(share - D(total) * weight / whole) < 1  # each within a unit of its exact share
        assert weight or share == 0


@given(st.decimals(min_value=0, max_value=10**9, places=2), st.integers(1, 50))
def test_linear_attribution_splits_sum_to_the_amount(amount: decimal.Decimal, parts: int) -> None:
    from crm_marketing.attribution import split

    shares = split(Money(amount, "EUR"), parts)
    assert sum(s.amount for s in shares) == amount
    assert max(s.amount for s in shares) - min(s.amount for s in shares) <= D("0.01")


def test_periods_cut_a_year_into_quarters_and_months() -> None:
    quarters = periods(dt.date(2026, 1, 1), dt.date(2026, 12, 31), "quarter")
    assert quarters[1] == (dt.date(2026, 4, 1), dt.date(2026, 6, 30)) and len(quarters) == 4
    assert len(periods(dt.date(2026, 1, 1), dt.date(2026, 12, 31), "month")) == 12
    with pytest.raises(ValidationError, match="unknown period 'week'"):
        periods(dt.date(2026, 1, 1), dt.date(2026, 12, 31), "week")


def _plan(uow: Any) -> dict[str, Any]:
    geo = world(uow)
    plan = uow.create("market_plan", name="2026", period="year", starts_on="2026-01-01", ends_on="2026-12-31",
                      currency="EUR")
    for code, amount, count in (("DE-BY-MUC", "1000", 2), ("DE-HE-FRA", "500", 1), ("FR-PAR", "700", None)):
        uow.create("plan_target", plan_id=plan.id, product_group="PUMPS", geography_id=geo[code].id,
                   starts_on="2026-01-01", ends_on="2026-12-31", amount=f"{amount} EUR", count=count)
    uow.create("plan_goal", plan_id=plan.id, text="Be known in Bavaria", status="on_track", assessment="2 fairs")
    for name, city, amount, group, close, stage in (
        ("Munich 1", "DE-BY-MUC", "600", "PUMPS", "2026-02-01", "won"),
        ("Munich 2", "DE-BY-MUC", "300", "PUMPS", "2026-05-01", "won"),
        ("Bavaria", "DE-BY", "50", "PUMPS", "2026-05-01", "won"),
        ("Frankfurt", "DE-HE-FRA", "800", "PUMPS", "2026-07-01", "won"),
        ("Valves", "DE-HE-FRA", "999", "VALVES", "2026-07-01", "won"),
        ("Open", "DE-HE-FRA", "999", "PUMPS", "2026-07-01", "final_stage"),
        ("Last year", "DE-HE-FRA", "999", "PUMPS", "2025-07-01", "won"),
        ("Dollars", "FR-PAR", "10", "PUMPS", "2026-07-01", "won"),
    ):
        account = uow.create("account", name=name, geography_id=geo[city].id)
        currency = "USD" if name == "Dollars" else "EUR"
        uow.create("opportunity", name=name, account_id=account.id, amount=f"{amount} {currency}", product_group=group,
                   close_date=close, stage=stage)
    return {"plan": plan, **geo}


def test_report_rolls_targets_and_actuals_up_the_tree(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _plan(uow)
        uow.commit()
    with crm.unit_of_work() as uow:
        report = plan_report(uow, "2026")
    lines = {line.geography: line for line in report.lines}
    assert list(lines) == ["Germany", "Bavaria", "Munich", "Hesse", "Frankfurt", "France", "Paris"]
    assert (lines["Munich"].target_amount, lines["Munich"].actual_amount, lines["Munich"].actual_count) == (
        _eur(1000), _eur(900), 2)
    assert lines["Munich"].attainment == D("90.00") and lines["Munich"].variance == _eur(-100)
    assert (lines["Bavaria"].target_amount, lines["Bavaria"].actual_amount) == (_eur(1000), _eur(950))
    assert (lines["Germany"].target_amount, lines["Germany"].actual_amount) == (_eur(1500), _eur(1750))
    assert lines["Germany"].target_count == 3 and lines["Germany"].actual_count == 4
    assert lines["France"].target_count is None and lines["France"].actual_count == 1  # the USD deal counts
    assert lines["Paris"].actual_amount == _eur(0) and report.other_currencies == {"USD": Money(D("10"), "USD")}
    for parent, children in (("Germany", ("Bavaria", "Hesse")), ("Bavaria", ("Munich",))):
        own = _eur(50) if parent == "Bavaria" else _eur(0)  # the deal placed in Bavaria itself
        assert lines[parent].actual_amount == sum((lines[c].actual_amount for c in children), own)
    assert [(g.text, g.status) for g in report.goals] == [("Be known in Bavaria", "on_track")]
    assert made["plan"].id == report.plan.id


class _Orders:
    """A plugin answering the actuals hook (as orders or billing would)."""

    @hookimpl
    def marketing_actuals(self, uow: Any, period: Any, dimensions: Any) -> list[dict[str, Any]]:
        munich = uow.query("geography").where(code="DE-BY-MUC").first()
        return [{"product_group": "PUMPS", "geography_id": munich.id, "amount": _eur(4242), "count": 7}]


def test_a_plugin_answering_actuals_replaces_won_deals(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing", _Orders()])
    with crm.unit_of_work() as uow:
        _plan(uow)
        uow.commit()
    with crm.unit_of_work() as uow:
        lines = {line.geography: line for line in plan_report(uow, "2026").lines}
    assert (lines["Germany"].actual_amount, lines["Germany"].actual_count) == (_eur(4242), 7)
    assert lines["Hesse"].actual_amount == _eur(0)


def test_add_targets_spreads_a_year_exactly(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        plan = uow.create("market_plan", name="P", starts_on="2026-01-01", ends_on="2026-12-31", currency="EUR")
        made = add_targets(uow, plan, amount=_eur("1000.00"), count=10, product_group="PUMPS", by="quarter",
                           profile=[D(1), D(2), D(2), D(1)])
        assert [t.amount.amount for t in made] == [D("166.67"), D("333.33"), D("333.33"), D("166.67")]
        assert sum(t.amount.amount for t in made) == D("1000.00")
        assert sum(t.count for t in made) == 10
        with pytest.raises(ValidationError, match="expected 12 non-negative weights"):
            add_targets(uow, plan, amount=_eur(1), profile=[D(1)])
