"""Discount tiers: recomputed from the revenue the catalog_revenue hook reports, by the job,
with their history kept."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from catalog_support import catalog
from crmcore.hookspecs import hookimpl
from crmcore.jobs import run_worker
from crmcore.money import Money
from crmcore.plugins import PluginInfo

from crm_catalog.pricing import explain_price
from crm_catalog.tiers import JOB_KIND, queue_tier_job, recompute_tiers, window


class Revenue:
    """A revenue source standing for orders and invoices: rows per account and group; each
    answer says which window it was asked about."""

    def __init__(self, name: str) -> None:
        self.PLUGIN = PluginInfo(name=name)
        self.rows: list[dict[str, Any]] = []
        self.asked: list[tuple[list[int], dt.date, dt.date]] = []

    @hookimpl
    def catalog_revenue(self, uow, account_ids, since, until):
        self.asked.append((list(account_ids), since, until))
        return [r for r in self.rows if r["account_id"] in account_ids]


def test_the_window_is_the_trailing_months() -> None:
    assert window(dt.date(2026, 6, 15), 12) == (dt.date(2025, 6, 16), dt.date(2026, 6, 15))
    assert window(dt.date(2026, 3, 31), 1) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def _app(crm_factory):
    source, other = Revenue("orders_source"), Revenue("billing_source")
    crm = crm_factory(plugins=["catalog", source, other])
    c = catalog(crm)
    with crm.unit_of_work() as uow:
        c["bronze"] = uow.create("discount_tier", name="Bronze", min_revenue="10000 EUR", percent="5")
        c["silver"] = uow.create("discount_tier", name="Silver", min_revenue="50000 EUR", percent="8")
        c["laptop_tier"] = uow.create("discount_tier", name="Laptop buyer", group_id=c["hardware"].id,
                                      min_revenue="20000 EUR", percent="10")
        uow.create("customer_discount", account_id=c["retail"].id, percent="2", note="manual, kept")
        uow.commit()
    return crm, c, source, other


def test_the_job_sums_every_answer_and_keeps_the_history(crm_factory) -> None:
    crm, c, source, other = _app(crm_factory)
    retail = c["retail"].id
    source.rows = [{"account_id": retail, "product_group_id": c["laptops"].id, "amount": Money("30000", "EUR")},
                   {"account_id": c["plain"].id, "product_group_id": None, "amount": Money("9000", "EUR")}]
    other.rows = [{"account_id": retail, "product_group_id": c["services"].id, "amount": Money("25000", "EUR")}]
    at = dt.datetime(2026, 6, 1, 3, 0, tzinfo=dt.UTC)
    with crm.unit_of_work() as uow:  # the job the seed queued, moved to that night
        assert uow.query("job").where(kind=JOB_KIND, status="queued").count() == 1
        queue_tier_job(uow, at)
        uow.commit()
    run_worker(crm, once=True, now=at)
    assert source.asked[0][1:] == (dt.date(2025, 6, 2), dt.date(2026, 6, 1))
    with crm.unit_of_work() as uow:
        tiers = uow.query("customer_discount").where(kind="tier").order_by("id").all()
        assert [(d.account_id, d.group_id, d.percent, d.revenue, d.valid_from, d.valid_to) for d in tiers] == [
            (retail, None, Decimal("8.00"), Money("55000.00", "EUR"), dt.date(2026, 6, 1), None),
            (retail, c["hardware"].id, Decimal("10.00"), Money("30000.00", "EUR"), dt.date(2026, 6, 1), None),
        ]
        line = explain_price(uow, retail, c["laptop"].id, 1, dt.date(2026, 6, 2))
        assert line.discount_percent == Decimal("10.00")
        assert uow.query("job").where(kind=JOB_KIND, status="queued").first().run_at.date() == dt.date(2026, 6, 2)
    other.rows = []  # the services revenue was cancelled: silver falls to bronze
    with crm.unit_of_work() as uow:
        report = recompute_tiers(uow, today=dt.date(2026, 7, 1))
        uow.commit()
    assert (report.started, report.closed, report.kept) == (1, 1, 1)
    with crm.unit_of_work() as uow:
        history = uow.query("customer_discount").where(kind="tier", group_id=None).order_by("id").all()
        assert [(d.tier_id, d.valid_from, d.valid_to) for d in history] == [
            (c["silver"].id, dt.date(2026, 6, 1), dt.date(2026, 6, 30)),
            (c["bronze"].id, dt.date(2026, 7, 1), None),
        ]
        assert uow.query("customer_discount").where(kind="manual").count() == 1
        assert explain_price(uow, retail, c["dock"].id, 1, dt.date(2026, 6, 15)).discount_percent == Decimal("10.00")
        assert explain_price(uow, retail, c["setup"].id, 1, dt.date(2026, 7, 2)).discount_percent == Decimal("5.00")


def test_recomputing_twice_a_day_keeps_one_row(crm_factory) -> None:
    crm, c, source, _ = _app(crm_factory)
    source.rows = [{"account_id": c["plain"].id, "product_group_id": None, "amount": Money("12000", "EUR")}]
    with crm.unit_of_work() as uow:
        recompute_tiers(uow, today=dt.date(2026, 6, 1))
        source.rows[0]["amount"] = Money("60000", "EUR")
        second = recompute_tiers(uow, today=dt.date(2026, 6, 1))
        third = recompute_tiers(uow, today=dt.date(2026, 6, 1))
        uow.commit()
    assert (second.started, second.closed, third.kept) == (1, 1, 1)
    with crm.unit_of_work() as uow:
        [row] = uow.query("customer_discount").where(kind="tier").all()
        assert (row.tier_id, row.revenue) == (c["silver"].id, Money("60000.00", "EUR"))
