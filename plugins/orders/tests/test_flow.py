"""The seed's flow end to end: an opportunity reaches quotation, its quote is priced by a
segment price list and a customer discount, sent, revised, accepted; the order is confirmed,
its fulfilment request delivered to the production file sink, and the opportunity is won."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from crm_outbox import answer, deliver
from crmcore.errors import ValidationError
from orders_support import seed, settings

from crm_orders.orders import confirm_order
from crm_orders.quotes import accept_quote, quote_from_opportunity, revise_quote, send_quote


def test_the_seed_flow_end_to_end(crm_factory, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=settings(tmp_path, order_on_accept=True))
    s = seed(crm)
    opportunity_id = s["opportunity"].id
    with crm.unit_of_work() as uow:
        first = quote_from_opportunity(uow, opportunity_id)
        sent = send_quote(uow, first.id)
        uow.commit()
    assert not sent.held and sent.quote.state == "sent" and sent.quote.sent_at is not None
    with crm.unit_of_work() as uow:
        assert uow.get("opportunity", opportunity_id).stage == "quotation_sent"
        line = uow.query("quote_line").where(quote_id=first.id, position=1).first()
        with pytest.raises(ValidationError, match=f"quote {first.id} is 'sent': its lines are frozen"):
            uow.update(line, quantity=1)
    with crm.unit_of_work() as uow:  # the customer wants one lathe only: a second version
        second = revise_quote(uow, first.id)
        lathe = uow.query("quote_line").where(quote_id=second.id, position=1).first()
        uow.update(lathe, quantity=1)
        uow.commit()
    with crm.unit_of_work() as uow:
        second = uow.get("quote", second.id)
        assert (second.version_number, second.supersedes_id, second.root_id, second.state) == (2, first.id, first.id, "draft")
        assert uow.get("quote", first.id).is_current is False
        assert second.subtotal.amount == first.subtotal.amount - Decimal("9215.00")  # one lathe at 9500 less 3%
        assert uow.get("opportunity", opportunity_id).amount == second.net_total
        send_quote(uow, second.id)
        with pytest.raises(ValidationError, match="superseded by quote"):
            accept_quote(uow, first.id)
        accepted = accept_quote(uow, second.id)
        uow.commit()
    assert accepted.state == "accepted"
    with crm.unit_of_work() as uow:
        order = uow.query("sales_order").where(quote_id=second.id).first()
        assert order.state == "draft"
        assert (order.net_total, order.tax_total, order.grand_total) == (second.net_total, second.tax_total, second.grand_total)
        lines = uow.query("sales_order_line").where(sales_order_id=order.id).order_by("position").all()
        quote_lines = uow.query("quote_line").where(quote_id=second.id).order_by("position").all()
        assert [(x.quote_id, x.quote_line_id) for x in lines] == [(second.id, q.id) for q in quote_lines]
        assert [x.price_snapshot for x in lines] == [q.price_snapshot for q in quote_lines]
        order = confirm_order(uow, order.id)
        uow.commit()
    assert order.state == "confirmed" and order.confirmed_at is not None
    with crm.unit_of_work() as uow:
        requests = uow.query("outbox_request").where(source_entity="sales_order", source_id=order.id).order_by("kind").all()
        opportunity = uow.get("opportunity", opportunity_id)
    assert [(r.kind, r.sink) for r in requests] == [("production", "production"), ("sales_office_review", "sales_office_review")]
    assert opportunity.stage == "won" and opportunity.amount == order.net_total and opportunity.close_date is not None
    stats = deliver(crm)
    assert stats.delivered == 2
    dropped = [json.loads(p.read_text()) for p in sorted((tmp_path / "production").glob("*.json"))]
    assert len(dropped) == 1
    payload = dropped[0]["payload"] if "payload" in dropped[0] else dropped[0]
    assert [(line["description"], line["quantity"]) for line in payload["lines"]] == [("Lathe L1", "1.0000")]
    with crm.unit_of_work() as uow:
        answer(uow, requests[0].idempotency_key, "accepted")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("sales_order", order.id).state == "in_fulfilment"
        for request in requests:
            answer(uow, request.idempotency_key, "fulfilled")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("sales_order", order.id).state == "fulfilled"
