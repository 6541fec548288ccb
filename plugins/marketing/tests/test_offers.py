"""Special offers: a draft quote per member through the orders plugin when it is enabled (the
offered product priced by the catalog, the offer's discount, the member's owner), a planned
task otherwise and for members without an account."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from crmcore.security import add_user

from crm_marketing.campaigns import run_campaign
from crm_marketing.errors import CampaignError

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _members(uow: Any, product_code: str | None = "PUMP") -> dict[str, Any]:
    ann = add_user(uow, "ann")
    bob = add_user(uow, "bob")
    made = {"ann": ann, "bob": bob}
    for name, owner in (("Acme", ann), ("Globex", bob)):
        made[name] = uow.create("account", name=name, industry="Retail", owner_id=owner.id)
    made["lead"] = uow.create("lead", last_name="Lovelace", company="Analytical", owner_id=bob.id)
    accounts = uow.create("segment", name="Retailers", member_entity="account", conditions=["industry=Retail"])
    leads = uow.create("segment", name="Leads", member_entity="lead", conditions=["last_name=Lovelace"])
    for code, segment in (("SPRING", accounts), ("LEADS", leads)):
        made[code] = uow.create("campaign", name=f"Spring offer {code}", code=code, channel="offer",
                                segment_id=segment.id, product_code=product_code, offer_discount="15",
                                message="15 % off pumps until Easter", starts_on=dt.date(2026, 3, 2),
                                ends_on=dt.date(2026, 4, 5), budget="500 EUR")
    return made


def test_offers_become_quotes_with_orders_enabled(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing", "orders"])
    with crm.unit_of_work() as uow:
        uow.create("product", code="PUMP", name="Pump P1", list_price="200.00 EUR")
        made = _members(uow)
        uow.commit()
    with crm.unit_of_work() as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        again = run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    assert result.counts == {"quoted": 2} and result.reached == 2
    assert again.counts == {"already_sent": 2}
    with crm.unit_of_work() as uow:
        quotes = {q.account_id: q for q in uow.query("quote").all()}
        touches = uow.query("campaign_touch").where(kind="offer").order_by("account_id").all()
        lines = uow.query("quote_line").all()
    assert sorted(quotes) == [made["Acme"].id, made["Globex"].id]
    acme = quotes[made["Acme"].id]
    assert (acme.state, acme.title, acme.valid_until, acme.notes) == (
        "draft", "Offer: Spring offer SPRING", dt.date(2026, 4, 5), "15 % off pumps until Easter")
    assert acme.owner_id == made["ann"].id and quotes[made["Globex"].id].owner_id == made["bob"].id
    assert acme.net_total.amount == Decimal("170.00") and acme.net_total.currency == "EUR"
    assert [[Decimal(d) for d in line.discounts] for line in lines] == [[Decimal(15)]] * 2
    assert [t.quote_id for t in touches] == [quotes[made["Acme"].id].id, quotes[made["Globex"].id].id]
    assert all(t.activity_id is None for t in touches)


def test_a_lead_without_an_account_gets_a_task_even_with_orders(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing", "orders"])
    with crm.unit_of_work() as uow:
        uow.create("product", code="PUMP", name="Pump P1", list_price="200.00 EUR")
        made = _members(uow)
        uow.commit()
    with crm.unit_of_work() as uow:
        result = run_campaign(uow, "LEADS", now=NOW)
        task, = uow.query("activity").all()
        assert uow.query("quote").count() == 0
    assert result.counts == {"planned": 1}
    assert (task.kind, task.lead_id, task.owner_id) == ("task", made["lead"].id, made["bob"].id)


def test_an_offer_of_an_unknown_product_is_refused(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing", "orders"])
    with crm.unit_of_work() as uow:
        _members(uow, product_code="NOPE")
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(CampaignError, match="'NOPE', which the catalog does not have"):
        run_campaign(uow, "SPRING", now=NOW)


def test_offers_without_a_product_discount_the_whole_quote(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing", "orders"])
    with crm.unit_of_work() as uow:
        _members(uow, product_code=None)
        uow.commit()
    with crm.unit_of_work() as uow:
        run_campaign(uow, "SPRING", now=NOW)
        quotes = uow.query("quote").all()
    assert len(quotes) == 2 and {q.document_discount for q in quotes} == {Decimal("15")}


def test_offers_become_tasks_without_orders(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        made = _members(uow)
        uow.commit()
    with crm.unit_of_work() as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        tasks = uow.query("activity").order_by("account_id").all()
        touches = uow.query("campaign_touch").where(kind="offer").all()
    assert result.counts == {"planned": 2}
    assert [(t.kind, t.account_id, t.owner_id) for t in tasks] == [
        ("task", made["Acme"].id, made["ann"].id), ("task", made["Globex"].id, made["bob"].id)]
    assert {t.activity_id for t in touches} == {t.id for t in tasks} and {t.quote_id for t in touches} == {None}
