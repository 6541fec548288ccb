"""Plan lines by segment and owner (user or team) beside product group, geography and period;
the measures beyond revenue and won deals; revenue from orders through the catalog's revenue
hook; overlapping periods in one plan."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pytest
from crmcore import Money, ValidationError
from crmcore.security import add_user
from marketing_support import world

from crm_marketing.plans import plan_report

D = decimal.Decimal
TODAY = dt.datetime.now(dt.UTC).date()
YEAR = (dt.date(TODAY.year, 1, 1), dt.date(TODAY.year, 12, 31))


def _eur(value: str | int) -> Money:
    return Money(D(value), "EUR")


def _office(uow: Any) -> dict[str, Any]:
    """Two teams (north: ann, bob; south: cyd), accounts in Munich and Paris, some in Retail,
    won and open deals owned by each."""
    geo = world(uow)
    north = uow.create("team", name="North")
    south = uow.create("team", name="South")
    users = {name: add_user(uow, name) for name in ("ann", "bob", "cyd")}
    uow.update("user", users["ann"].id, team_id=north.id)
    uow.update("user", users["bob"].id, team_id=north.id)
    uow.update("user", users["cyd"].id, team_id=south.id)
    retail = uow.create("segment", name="Retail", member_entity="account", conditions=["industry=Retail"])
    made = {"geo": geo, "north": north, "south": south, "retail": retail, **users}
    for name, city, industry, owner, amount, stage in (
        ("Aldi", "DE-BY-MUC", "Retail", "ann", "100", "won"),
        ("BMW", "DE-BY-MUC", "Cars", "bob", "200", "won"),
        ("Carrefour", "FR-PAR", "Retail", "cyd", "400", "won"),
        ("Dior", "FR-PAR", "Fashion", "ann", "800", "won"),
        ("Edeka", "DE-BY-MUC", "Retail", "ann", "1600", "final_stage"),
    ):
        account = uow.create("account", name=name, industry=industry, geography_id=geo[city].id,
                             owner_id=users[owner].id)
        made[name] = uow.create("opportunity", name=name, account_id=account.id, amount=f"{amount} EUR",
                                product_group="PUMPS", close_date=YEAR[0] + dt.timedelta(days=40), stage=stage,
                                owner_id=users[owner].id)
        made[f"{name} account"] = account
    return made


def _plan(uow: Any, name: str = "Plan", **values: Any) -> Any:
    return uow.create("market_plan", name=name, starts_on=YEAR[0], ends_on=YEAR[1], currency="EUR", **values)


def _target(uow: Any, plan: Any, **values: Any) -> Any:
    return uow.create("plan_target", plan_id=plan.id, starts_on=values.pop("starts_on", YEAR[0]),
                      ends_on=values.pop("ends_on", YEAR[1]), **values)


def _everywhere(report: Any, **key: Any) -> Any:
    lines = [line for line in report.lines if line.geography_id is None
             and all(getattr(line, k) == v for k, v in key.items())]
    assert len(lines) == 1, lines
    return lines[0]


def test_lines_by_owner_user_and_team(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _office(uow)
        plan = _plan(uow)
        _target(uow, plan, user_id=made["ann"].id, amount="1000 EUR")
        _target(uow, plan, team_id=made["north"].id, amount="1000 EUR")
        _target(uow, plan, team_id=made["south"].id, amount="1000 EUR", geography_id=made["geo"]["FR-PAR"].id)
        uow.commit()
    with crm.unit_of_work() as uow:
        report = plan_report(uow, "Plan")
    assert _everywhere(report, user_id=made["ann"].id).actual_amount == _eur(900)  # Aldi and Dior, not Edeka
    assert _everywhere(report, team_id=made["north"].id).actual_amount == _eur(1100)
    assert _everywhere(report, team_id=made["north"].id).actual_count == 3
    south = {line.geography: line for line in report.lines if line.team_id == made["south"].id}
    assert list(south) == ["France", "Paris"]
    assert south["Paris"].actual_amount == _eur(400) and south["Paris"].target_amount == _eur(1000)
    assert south["France"].actual_amount == _eur(400) and south["France"].attainment == D("40.00")


def test_lines_by_segment_count_its_accounts_only(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _office(uow)
        plan = _plan(uow)
        for city in ("DE-BY-MUC", "FR-PAR"):
            _target(uow, plan, segment_id=made["retail"].id, geography_id=made["geo"][city].id, amount="300 EUR",
                    product_group="PUMPS")
        _target(uow, plan, segment_id=made["retail"].id, user_id=made["ann"].id, count=5)
        _target(uow, plan, amount="9000 EUR")
        uow.commit()
    with crm.unit_of_work() as uow:
        report = plan_report(uow, "Plan")
    retail = {line.geography: line for line in report.lines
              if line.segment_id == made["retail"].id and line.user_id is None}
    assert retail["Munich"].actual_amount == _eur(100)  # Aldi (Edeka is open, BMW is no retailer)
    assert retail["Paris"].actual_amount == _eur(400)
    assert retail["Germany"].actual_amount + retail["France"].actual_amount == _eur(500)
    assert _everywhere(report, segment_id=made["retail"].id, user_id=made["ann"].id).actual_count == 1
    assert _everywhere(report, segment_id=None).actual_amount == _eur(1500)


def test_other_measures_roll_up_from_records(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _office(uow)
        for deal, quantity in (("Aldi", 3), ("Dior", 2), ("Edeka", 50)):
            uow.create("opportunity_line", opportunity_id=made[deal].id, product="Pump", quantity=quantity,
                       unit_price="10 EUR")
        munich = made["Aldi account"].id
        when = dt.datetime.combine(TODAY, dt.time(10), dt.UTC)
        for kind, status in (("meeting", "done"), ("meeting", "done"), ("meeting", "planned"), ("call", "done")):
            uow.create("activity", kind=kind, subject="Visit", status=status, due_at=when, account_id=munich,
                       owner_id=made["ann"].id)
        uow.create("lead", last_name="Lovelace", geography_id=made["geo"]["DE-BY-MUC"].id, owner_id=made["ann"].id)
        plan = _plan(uow)
        _target(uow, plan, geography_id=made["geo"]["DE-BY-MUC"].id, quantity=10, new_accounts=2, leads=4,
                visits=2, calls=3)
        _target(uow, plan, geography_id=made["geo"]["FR-PAR"].id, quantity=1)
        uow.commit()
    with crm.unit_of_work() as uow:
        lines = {line.geography: line for line in plan_report(uow, "Plan").lines}
    munich = lines["Munich"]
    assert munich.targets == {"quantity": D(10), "new_accounts": 2, "leads": 4, "visits": 2, "calls": 3}
    assert munich.actuals == {"quantity": D(3), "new_accounts": 3, "leads": 1, "visits": 2, "calls": 1}
    assert munich.attainment_of("quantity") == D("30.00") and munich.attainment_of("leads") == D("25.00")
    assert lines["Paris"].actuals["quantity"] == D(2) and lines["Paris"].targets == {"quantity": D(1)}
    assert lines["Germany"].actuals["new_accounts"] == 3 and lines["France"].actuals["new_accounts"] == 2


def test_a_yearly_target_beside_quarterly_ones_counts_every_deal_once_in_each(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        _office(uow)
        plan = _plan(uow)
        _target(uow, plan, amount="4000 EUR")
        first = dt.date(TODAY.year, 3, 31)
        _target(uow, plan, amount="1000 EUR", ends_on=first)
        _target(uow, plan, amount="1000 EUR", starts_on=first + dt.timedelta(days=1))
        uow.commit()
    with crm.unit_of_work() as uow:
        report = plan_report(uow, "Plan")
    amounts = [(line.starts_on.month, line.ends_on.month, line.actual_amount) for line in report.lines]
    assert sorted(amounts) == [(1, 3, _eur(1500)), (1, 12, _eur(1500)), (4, 12, _eur(0))]


def test_goals_have_a_score_and_evidence(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        plan = _plan(uow)
        uow.create("plan_goal", plan_id=plan.id, text="Known in Bavaria", status="on_track", score=60,
                   evidence=["https://example.com/fair-2026"])
        with pytest.raises(ValidationError, match="score"):
            uow.create("plan_goal", plan_id=plan.id, text="Too good", score=101)
        uow.commit()
    with crm.unit_of_work() as uow:
        goal, = plan_report(uow, "Plan").goals
    assert (goal.score, goal.evidence) == (60, ["https://example.com/fair-2026"])


def test_revenue_from_orders_needs_the_orders_plugin(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        _target(uow, _plan(uow, revenue_from="orders"), amount="10 EUR")
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="enable orders"):
        plan_report(uow, "Plan")


def test_revenue_from_confirmed_orders_along_the_catalog_group_tree(crm_factory: Any, tmp_path: Path) -> None:
    from crm_orders.orders import confirm_order, order_from_opportunity

    sinks = {kind: {"type": "file", "path": str(tmp_path / kind)}
             for kind in ("production", "delivery", "sales_office_review")}
    crm = crm_factory(plugins=["marketing", "orders"], settings={"outbox": {"sinks": sinks}})
    with crm.unit_of_work() as uow:
        geo = world(uow)
        machines = uow.create("product_group", name="Machines", code="MAC")
        lathes = uow.create("product_group", name="Lathes", code="LAT", parent_id=machines.id)
        parts = uow.create("product_group", name="Parts", code="PAR")
        lathe = uow.create("product", code="LATHE", name="Lathe", group_id=lathes.id, list_price="1000.00 EUR")
        belt = uow.create("product", code="BELT", name="Belt", group_id=parts.id, list_price="10.00 EUR")
        account = uow.create("account", name="Acme", geography_id=geo["DE-BY-MUC"].id)
        deal = uow.create("opportunity", name="Lathes", account_id=account.id, amount="1.00 EUR", product_group="MAC")
        uow.create("opportunity_line", opportunity_id=deal.id, product="Lathe", product_id=lathe.id, quantity=2,
                   unit_price="1000.00 EUR")
        uow.create("opportunity_line", opportunity_id=deal.id, product="Belt", product_id=belt.id, quantity=3,
                   unit_price="10.00 EUR")
        for name, source in (("From orders", "orders"), ("From deals", "won_deals")):
            plan = _plan(uow, name, revenue_from=source)
            _target(uow, plan, product_group="MAC", geography_id=geo["DE"].id, amount="5000 EUR")
        uow.commit()
    with crm.unit_of_work() as uow:
        confirm_order(uow, order_from_opportunity(uow, deal.id).id)
        uow.commit()
    with crm.unit_of_work() as uow:
        orders = {line.geography: line for line in plan_report(uow, "From orders").lines}
        deals = {line.geography: line for line in plan_report(uow, "From deals").lines}
    assert orders["Germany"].actual_amount == _eur("2000.00")  # the lathes (a subgroup of MAC), not the belts
    assert orders["Germany"].attainment == D("40.00")
    assert deals["Germany"].actual_amount == _eur("2030.00")  # confirming won the deal at the order's net total


def test_add_targets_spreads_every_measure_for_a_segment_and_owner(crm_factory: Any) -> None:
    from crm_marketing.plans import add_targets

    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _office(uow)
        plan = _plan(uow)
        made_targets = add_targets(uow, plan, by="quarter", profile={1: D(1), 2: D(1), 3: D(2)}, leads=10,
                                   quantity=D("1.01"), segment_id=made["retail"].id, user_id=made["ann"].id)
        assert [t.leads for t in made_targets] == [3, 2, 5, 0]
        assert [t.quantity for t in made_targets] == [D("0.25"), D("0.25"), D("0.51"), D(0)]
        assert {(t.segment_id, t.user_id) for t in made_targets} == {(made["retail"].id, made["ann"].id)}
        with pytest.raises(ValidationError, match="unknown measure 'visitz'"):
            add_targets(uow, plan, by="plan", visitz=3)
