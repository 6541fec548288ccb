"""Lead tracking and ROI: leads carry their campaign, conversion carries it onto the deal, won
revenue is attributed by the chosen model, and a campaign's cost counts once."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from crm_sales import convert_lead
from crmcore import Money, ValidationError

from crm_marketing.attribution import attribute, campaign_results, capture_lead, link_opportunity, split

D = decimal.Decimal
T0 = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)


def _eur(value: str) -> Money:
    return Money(D(value), "EUR")


def test_split_shares_sum_exactly() -> None:
    shares = split(_eur("100.00"), 3)
    assert [s.amount for s in shares] == [D("33.34"), D("33.33"), D("33.33")]
    assert sum(s.amount for s in shares) == D("100.00")


def test_models_pick_first_last_or_share_evenly() -> None:
    deals = [{"id": 1, "amount": _eur("90"), "account_id": 7, "close_date": dt.date(2026, 3, 1)}]
    touches = [
        {"campaign_id": 20, "kind": "sent", "at": T0 + dt.timedelta(days=2), "opportunity_id": None, "account_id": 7},
        {"campaign_id": 10, "kind": "sent", "at": T0, "opportunity_id": None, "account_id": 7},
        {"campaign_id": 30, "kind": "visit", "at": T0 + dt.timedelta(days=3), "opportunity_id": None, "account_id": 7},
        {"campaign_id": 40, "kind": "sent", "at": T0 + dt.timedelta(days=90), "opportunity_id": None, "account_id": 7},
        {"campaign_id": 50, "kind": "opt_out", "at": T0, "opportunity_id": None, "account_id": 7},
    ]
    assert attribute(deals, touches, "first_touch") == {10: [(1, _eur("90"))]}
    assert attribute(deals, touches, "last_touch") == {30: [(1, _eur("90"))]}  # 40 came after the close
    assert attribute(deals, touches, "linear") == {c: [(1, _eur("30"))] for c in (10, 20, 30)}
    on_deal = [*touches, {"campaign_id": 60, "kind": "linked", "at": T0 + dt.timedelta(days=5),
                          "opportunity_id": 1, "account_id": 7}]
    assert attribute(deals, on_deal, "first_touch") == {60: [(1, _eur("90"))]}  # the deal's own touches win
    with pytest.raises(ValidationError, match="unknown attribution model"):
        attribute(deals, touches, "u_shaped")


def _campaign(uow: Any, code: str = "WEB", **values: Any) -> Any:
    return uow.create("campaign", name=f"Campaign {code}", code=code, channel="email", **values)


def test_a_lead_with_a_campaign_code_records_its_first_touch(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        campaign = _campaign(uow)
        lead = capture_lead(uow, {"last_name": "Lovelace", "email": "ada@acme.test"}, campaign="WEB")
        assert lead.campaign_id == campaign.id and lead.source == "campaign"
        touches = uow.query("campaign_touch").all()
        assert [(t.kind, t.lead_id, t.campaign_id) for t in touches] == [("lead", lead.id, campaign.id)]
        with pytest.raises(ValidationError, match="no campaign has the code 'NOPE'"):
            capture_lead(uow, {"last_name": "Babbage"}, campaign="NOPE")


def test_a_campaign_adopts_the_leads_imported_with_its_code_before_it(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        early = uow.create("lead", last_name="Early", campaign_code="FLYER")
        assert early.campaign_id is None
        campaign = _campaign(uow, "FLYER")
        assert uow.get("lead", early.id).campaign_id == campaign.id
        assert [(t.kind, t.lead_id) for t in uow.query("campaign_touch").all()] == [("lead", early.id)]
        late = uow.create("lead", last_name="Late", campaign_code="FLYER")
        assert late.campaign_id == campaign.id


def test_conversion_carries_the_campaign_to_the_won_deal(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        campaign = _campaign(uow)
        uow.create("campaign_cost", campaign_id=campaign.id, description="Ads", amount="500 EUR")
        lead = capture_lead(uow, {"last_name": "Lovelace", "company": "Acme", "email": "ada@acme.test",
                                  "status": "qualified"}, campaign="WEB")
        conversion = convert_lead(uow, lead, opportunity={"amount": "2000 EUR", "close_date": "2026-03-01",
                                                             "stage": "final_stage"})
        uow.move(conversion.opportunity, "won")
        uow.commit()
    with crm.unit_of_work() as uow:
        touch = uow.query("campaign_touch").first()
        assert touch.lead_id is None
        assert (touch.contact_id, touch.account_id, touch.opportunity_id) == (
            conversion.contact.id, conversion.account.id, conversion.opportunity.id)
        (result,) = campaign_results(uow)
    assert (result.leads, result.conversions, result.won) == (1, 1, 1)
    assert result.revenue == {"EUR": _eur("2000")}
    assert result.cost == _eur("500")
    assert result.roi == D("3")


def test_cost_counts_once_whatever_the_number_of_won_deals(crm_factory: Any) -> None:
    """The SugarCRM family's ROI counts a campaign's cost once per won deal; here it counts once."""
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        campaign = _campaign(uow, budget="1500 EUR")
        uow.create_many("campaign_cost", [
            {"campaign_id": campaign.id, "description": "Print", "amount": "600 EUR"},
            {"campaign_id": campaign.id, "description": "Postage", "amount": "400 EUR"},
        ])
        account = uow.create("account", name="Acme")
        for n in range(3):
            deal = uow.create("opportunity", name=f"Deal {n}", account_id=account.id, amount="1000 EUR",
                              close_date="2026-03-01", stage="won")
            link_opportunity(uow, deal, campaign, at=T0)
        link_opportunity(uow, deal, campaign, at=T0)  # linking twice is one link
        open_deal = uow.create("opportunity", name="Open", account_id=account.id, amount="9000 EUR")
        link_opportunity(uow, open_deal, campaign, at=T0)
        uow.commit()
    with crm.unit_of_work() as uow:
        (result,) = campaign_results(uow, [campaign.id])
        assert uow.query("campaign_touch").count() == 4
    assert result.won == 3
    assert result.revenue == {"EUR": _eur("3000")}
    assert result.cost == _eur("1000")  # not 3 × 1000
    assert result.roi == D("2")


def test_roi_uses_the_configured_model(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"], settings={"plugins": {"marketing": {"attribution": "linear"}}})
    with crm.unit_of_work() as uow:
        first, second = _campaign(uow, "A"), _campaign(uow, "B")
        deal = uow.create("opportunity", name="Deal", amount="1000 EUR", close_date="2026-03-01", stage="won")
        link_opportunity(uow, deal, first, at=T0)
        link_opportunity(uow, deal, second, at=T0 + dt.timedelta(days=1))
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [r.revenue for r in campaign_results(uow)] == [{"EUR": _eur("500")}] * 2
        assert [r.revenue for r in campaign_results(uow, model="last_touch")] == [{}, {"EUR": _eur("1000")}]


def test_an_unknown_model_in_settings_stops_start_up(crm_factory: Any) -> None:
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match="unknown model 'u_shaped'"):
        crm_factory(plugins=["marketing"], settings={"plugins": {"marketing": {"attribution": "u_shaped"}}})
