"""The revenue estimate: history with child accounts, run-rate, weighted pipeline, each with
its sources; the back-test; prospects against effort."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from billing_support import settings
from crmcore import hookimpl
from crmcore.money import Money

from crm_billing.estimate import backtest, estimate, prospects
from crm_billing.invoices import credit_invoice, new_invoice, post_invoices

ON = dt.date(2026, 7, 1)


def eur(text: str) -> Money:
    return Money(Decimal(text), "EUR")


@pytest.fixture
def crm(crm_factory, tmp_path):
    return crm_factory(plugins=["billing"], settings=settings(tmp_path))


def invoice(uow, account_id, day, amount):
    made = new_invoice(uow, account_id=account_id, currency="EUR", invoice_date=day,
                       lines=[{"description": "Work", "unit_price": f"{amount} EUR"}])
    return post_invoices(uow, [made.id])[0]


def test_history_children_run_rate_and_weighted_pipeline(crm):
    with crm.unit_of_work() as uow:
        parent = uow.create("account", name="Group")
        child = uow.create("account", name="Subsidiary", parent_id=parent.id)
        a = invoice(uow, parent.id, dt.date(2026, 2, 10), "1000.00")
        b = invoice(uow, child.id, dt.date(2026, 5, 3), "200.00")
        invoice(uow, parent.id, dt.date(2024, 5, 3), "999.00")  # outside the trailing year
        post_invoices(uow, [credit_invoice(uow, a.id, invoice_date=dt.date(2026, 3, 1)).id])
        deal = uow.create("opportunity", name="Expansion", account_id=child.id, amount="10000.00 EUR", probability=30,
                          close_date=dt.date(2026, 10, 1), stage="rfp_received")
        uow.create("opportunity", name="Far away", account_id=parent.id, amount="5000.00 EUR", probability=50,
                   close_date=dt.date(2028, 1, 1), stage="rfp_received")
        uow.commit()
    with crm.unit_of_work() as uow:
        (found,) = estimate(uow, ON, account_ids=[parent.id], horizon=6)
    assert found.history == eur("200.00") and found.history_by_month == {
        "2026-02": eur("1000.00"), "2026-03": eur("-1000.00"), "2026-05": eur("200.00")}
    assert b.id in found.history_sources and a.id in found.history_sources
    assert found.run_rate == eur("100.00") and found.pipeline == eur("3000.00") and found.pipeline_sources == (deal.id,)
    assert found.total == eur("3100.00")


def test_the_backtest_compares_a_past_estimate_with_what_was_invoiced(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        for month in range(1, 13):
            invoice(uow, account.id, dt.date(2025, month, 15), "100.00")
        for month in range(1, 7):
            invoice(uow, account.id, dt.date(2026, month, 15), "150.00")
        uow.commit()
    with crm.unit_of_work() as uow:
        (row,) = backtest(uow, dt.date(2026, 1, 1), horizon=6)
    assert (row.estimated, row.actual, row.error) == (eur("600.00"), eur("900.00"), eur("300.00"))


def test_prospects_show_pipeline_against_effort(crm):
    with crm.unit_of_work() as uow:
        customer = uow.create("account", name="Customer")
        invoice(uow, customer.id, dt.date(2026, 2, 1), "10.00")
        prospect = uow.create("account", name="Prospect")
        uow.create("opportunity", name="First deal", account_id=prospect.id, amount="2000.00 EUR", probability=25,
                   close_date=dt.date(2026, 9, 1), stage="rfp_received")
        for n in range(3):
            uow.create("activity", kind="call", subject=f"Call {n}", account_id=prospect.id, status="done")
        uow.commit()
    with crm.unit_of_work() as uow:
        (found,) = prospects(uow, ON)
    assert (found.account_id, found.pipeline, found.activities) == (prospect.id, eur("500.00"), 3)


class Contracts:
    """A plugin reporting every account's contract through the billing hook."""

    @hookimpl
    def billing_recurring_revenue(self, uow, account_ids, since, until):
        assert (since, until) == (ON, dt.date(2027, 1, 1))
        return [{"account_id": r["id"], "amount": eur("600.00"), "source": f"contract:{r['id']}"}
                for r in uow.select("account", fields=("id",)).all()]


def test_recurring_revenue_comes_from_the_hook(crm_factory, tmp_path):
    crm = crm_factory(plugins=["billing", Contracts()], settings=settings(tmp_path))
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Subscriber")
        uow.commit()
    with crm.unit_of_work() as uow:
        (found,) = estimate(uow, ON, horizon=6)
    assert (found.recurring, found.recurring_sources, found.total) == (eur("600.00"), (f"contract:{account.id}",), eur("600.00"))


def test_the_chart_draws_history_and_estimate(crm, tmp_path):
    pytest.importorskip("matplotlib")
    from crm_billing.chart import render_chart

    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        invoice(uow, account.id, dt.date(2026, 2, 10), "1000.00")
        uow.commit()
    with crm.unit_of_work() as uow:
        (found,) = estimate(uow, ON, horizon=6)
    svg = render_chart(found, ON, horizon=6)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert render_chart(found, ON, horizon=6, fmt="png").startswith(b"\x89PNG")


def test_prospects_show_the_campaign_costs_attributed_to_them(crm_factory, tmp_path):
    crm = crm_factory(plugins=["billing", "marketing"], settings=settings(tmp_path))
    at = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
    with crm.unit_of_work() as uow:
        first, second, gone = (uow.create("account", name=n) for n in ("First", "Second", "Opted out"))
        fair = uow.create("campaign", name="Trade fair", channel="visit")
        mailing = uow.create("campaign", name="Mailing", channel="email")
        uow.create_many("campaign_cost", [
            {"campaign_id": fair.id, "description": "Booth", "amount": "1000.01 EUR"},
            {"campaign_id": mailing.id, "description": "Postage", "amount": "90.00 EUR"}])
        uow.create_many("campaign_touch", [
            {"campaign_id": fair.id, "kind": "visit", "at": at, "account_id": first.id},
            {"campaign_id": fair.id, "kind": "visit", "at": at, "account_id": first.id},
            {"campaign_id": fair.id, "kind": "visit", "at": at, "account_id": second.id},
            {"campaign_id": mailing.id, "kind": "sent", "at": at, "account_id": second.id},
            {"campaign_id": mailing.id, "kind": "opt_out", "at": at, "account_id": gone.id}])
        uow.commit()
    with crm.unit_of_work() as uow:
        found = {p.account_id: p for p in prospects(uow, ON)}
    assert found[first.id].campaign_costs == (eur("500.01"),) and found[first.id].campaigns == (fair.id,)
    assert found[second.id].campaign_costs == (eur("590.00"),) and found[second.id].campaigns == (fair.id, mailing.id)
    assert gone.id not in found
