"""Orders: from an opportunity, stock, cancellation, supply answers, revenue, expiry, loss."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from crm_catalog.stock import available
from crm_outbox import answer
from crmcore.errors import ValidationError
from crmcore.jobs import run_worker
from orders_support import DAY, seed, settings

from crm_orders.orders import cancel_order, confirm_order, order_from_opportunity, order_from_quote
from crm_orders.quotes import expire_quotes, quote_from_opportunity, reject_quote, send_quote
from crm_orders.revenue import confirmed_revenue


@pytest.fixture
def app(crm_factory, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=settings(tmp_path, won_on="fulfilled"))
    s = seed(crm)
    with crm.unit_of_work() as uow:
        uow.update("product", s["lathe"].id, track_stock=True)
        hall = uow.create("stock_location", name="Hall 1")
        uow.create("stock_level", product_id=s["lathe"].id, location_id=hall.id, on_hand=5)
        uow.commit()
    return crm, s


def test_an_order_straight_from_an_opportunity_reserves_and_releases_stock(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        order = order_from_opportunity(uow, s["opportunity"].id)
        assert order.state == "draft" and order.quote_id is None
        assert uow.query("sales_order_line").where(sales_order_id=order.id).count() == 3
        confirm_order(uow, order.id)
        assert available(uow, [s["lathe"].id])[s["lathe"].id] == (Decimal(5), Decimal(2))
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("opportunity", s["opportunity"].id).stage == "rfp_received"  # won_on = fulfilled
        kinds = sorted(r.kind for r in uow.query("outbox_request").where(source_id=order.id).all())
        assert kinds == ["production", "sales_office_review"]
        cancelled = cancel_order(uow, order.id)
        assert cancelled.state == "cancelled" and cancelled.cancelled_at is not None
        assert available(uow, [s["lathe"].id])[s["lathe"].id] == (Decimal(5), Decimal(0))
        uow.commit()
    with crm.unit_of_work() as uow:  # no live quote nor order left: lost
        assert uow.get("opportunity", s["opportunity"].id).stage == "lost"


def test_an_order_without_lines_is_not_confirmed(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        order = order_from_opportunity(uow, s["opportunity"].id)
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.delete_where("sales_order_line", {"sales_order_id": order.id})
        with pytest.raises(ValidationError, match=f"sales_order {order.id} has no lines"):
            confirm_order(uow, order.id)


def test_the_order_follows_its_supply_and_a_fulfilled_order_wins(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        order = confirm_order(uow, order_from_opportunity(uow, s["opportunity"].id).id)
        uow.commit()
    with crm.unit_of_work() as uow:
        requests = uow.query("outbox_request").where(source_id=order.id).order_by("kind").all()
        answer(uow, requests[1].idempotency_key, "cancelled")
        answer(uow, requests[0].idempotency_key, "accepted")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("sales_order", order.id).state == "in_fulfilment"
        answer(uow, requests[0].idempotency_key, "fulfilled")
        uow.commit()
    with crm.unit_of_work() as uow:
        done = uow.get("sales_order", order.id)
        opportunity = uow.get("opportunity", s["opportunity"].id)
    assert done.state == "fulfilled" and done.fulfilled_at is not None
    assert opportunity.stage == "won" and opportunity.amount == done.net_total


def test_every_request_cancelled_cancels_the_order(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        order = confirm_order(uow, order_from_opportunity(uow, s["opportunity"].id).id)
        for request in uow.query("outbox_request").where(source_id=order.id).all():
            answer(uow, request.idempotency_key, "cancelled")
        assert uow.get("sales_order", order.id).state == "cancelled"
        assert available(uow, [s["lathe"].id])[s["lathe"].id] == (Decimal(5), Decimal(0))


def test_only_an_accepted_current_quote_becomes_an_order_once(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        with pytest.raises(ValidationError, match="is 'draft'; an order comes from an accepted quote"):
            order_from_quote(uow, quote.id)
        send_quote(uow, quote.id)
        uow.move("quote", quote.id, "accepted")
        order = order_from_quote(uow, quote.id)
        with pytest.raises(ValidationError, match=f"already ordered \\(sales_order {order.id}\\)"):
            order_from_quote(uow, quote.id)


def test_confirmed_revenue_per_product_group(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        order = confirm_order(uow, order_from_opportunity(uow, s["opportunity"].id).id)
        uow.commit()
    today = dt.datetime.now(dt.UTC).date()
    with crm.unit_of_work() as uow:
        rows = confirmed_revenue(uow, [s["account"].id], today - dt.timedelta(days=1), today + dt.timedelta(days=1))
        before = confirmed_revenue(uow, [s["account"].id], DAY - dt.timedelta(days=400), DAY - dt.timedelta(days=300))
    groups = {row["product_group_id"]: row["amount"] for row in rows}
    assert groups == {s["lathes"].id: order_lines_net(crm, order.id, 1), s["parts"].id: order_lines_net(crm, order.id, 2),
                      None: order_lines_net(crm, order.id, 3)}
    assert sum((a.amount for a in groups.values()), Decimal(0)) == order.net_total.amount
    assert before == []


def order_lines_net(crm, order_id, position):
    from crm_orders import documents

    with crm.unit_of_work() as uow:
        order = uow.get("sales_order", order_id)
        lines = documents.lines_of(uow, documents.DOCUMENTS["sales_order"], [order_id])[order_id]
        return documents.totals_of(order.values, lines).lines[position - 1].net


def test_quotes_past_their_validity_expire_and_the_deal_is_lost(app):
    crm, s = app
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id, valid_until=DAY)
        send_quote(uow, quote.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert expire_quotes(uow, today=DAY) == []
        uow.commit()
    run_worker(crm, once=True, now=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))  # the seeded expiry job
    with crm.unit_of_work() as uow:
        expired = uow.get("quote", quote.id)
        opportunity = uow.get("opportunity", s["opportunity"].id)
    assert expired.state == "expired" and expired.decided_at is not None
    assert opportunity.stage == "lost"


def test_a_rejected_last_quote_loses_the_deal_unless_configured_otherwise(crm_factory, tmp_path):
    for lose, stage in ((True, "lost"), (False, "quotation_sent")):
        crm = crm_factory(plugins=["orders"], settings=settings(tmp_path / str(lose), lost_when_quotes_closed=lose))
        s = seed(crm)
        with crm.unit_of_work() as uow:
            quote = quote_from_opportunity(uow, s["opportunity"].id)
            send_quote(uow, quote.id)
            reject_quote(uow, quote.id)
            assert uow.get("opportunity", s["opportunity"].id).stage == stage


def test_the_catalog_tier_job_counts_confirmed_orders(app):
    from crm_catalog.tiers import recompute_tiers

    crm, s = app
    with crm.unit_of_work() as uow:
        uow.create("discount_tier", name="Machine buyers", group_id=s["machines"].id, min_revenue="10000.00 EUR", percent="4")
        confirm_order(uow, order_from_opportunity(uow, s["opportunity"].id).id)
        uow.commit()
    with crm.unit_of_work() as uow:
        recompute_tiers(uow)
        tiers = uow.query("customer_discount").where(account_id=s["account"].id, kind="tier").all()
    assert [(t.group_id, t.percent) for t in tiers] == [(s["machines"].id, Decimal("4.00"))]
