"""Who sees quotes and orders, and the discount approval before sending."""

from __future__ import annotations

import pytest
from crmcore.errors import NotFoundError, TransitionError
from crmcore.workflow import approve, reject
from orders_support import seed, settings

from crm_orders.quotes import quote_from_opportunity, send_quote

SECURITY = {
    "no_role_profile": "standard",
    "default_sharing": "public_read",
    "roles": {"sales_manager": {"profiles": ["standard"]}, "sales_rep": {"parent": "sales_manager", "profiles": ["standard"]},
              "clerk": {"profiles": ["standard"]}},
    "entities": {"opportunity": {"sharing": "private"}, "account": {"sharing": "private"}},
}


def secured(tmp_path, *, rules=(), **orders):
    base = settings(tmp_path, **orders)
    return {**base, "security": {**SECURITY, "rules": list(rules)}}


def test_who_cannot_read_the_deal_cannot_read_its_documents(crm_factory, make_user, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=secured(tmp_path))
    rep = make_user(crm, "rep", roles=["sales_rep"])
    clerk = make_user(crm, "clerk", roles=["clerk"])
    s = seed(crm, owner=rep.user_id)
    with crm.unit_of_work(rep) as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        uow.commit()
    with crm.unit_of_work(rep) as uow:
        assert uow.get("quote", quote.id).id == quote.id
        assert uow.query("quote_line").where(quote_id=quote.id).count() == 3
    with crm.unit_of_work(clerk) as uow:  # quotes are public_read, but the deal is private
        assert uow.query("quote").count() == 0
        assert uow.query("quote_line").count() == 0
        with pytest.raises(NotFoundError):
            uow.get("quote", quote.id)


def test_a_sharing_rule_shares_documents_past_their_deal(crm_factory, make_user, tmp_path):
    rule = {"name": "clerks read the reps' quotes", "entity": "quote", "owned_by": "role:sales_rep",
            "shared_with": "role:clerk", "access": "read"}
    crm = crm_factory(plugins=["orders"], settings=secured(tmp_path, rules=[rule]))
    rep = make_user(crm, "rep", roles=["sales_rep"])
    clerk = make_user(crm, "clerk", roles=["clerk"])
    s = seed(crm, owner=rep.user_id)
    with crm.unit_of_work(rep) as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        uow.commit()
    with crm.unit_of_work(clerk) as uow:
        assert [q.id for q in uow.query("quote").all()] == [quote.id]
        assert uow.query("quote_line").where(quote_id=quote.id).count() == 3
        with pytest.raises(NotFoundError):
            uow.get("opportunity", s["opportunity"].id)


def test_a_large_discount_waits_for_a_managers_approval(crm_factory, make_user, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=secured(tmp_path, approval_discount_percent=5))
    manager = make_user(crm, "boss", roles=["sales_manager"])
    rep = make_user(crm, "rep", roles=["sales_rep"])
    s = seed(crm, owner=rep.user_id)
    with crm.unit_of_work(rep) as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        uow.update("quote", quote.id, document_discount="10")
        uow.commit()
    with crm.unit_of_work(rep) as uow:
        held = send_quote(uow, quote.id)
        uow.commit()
    assert held.held and held.quote.state == "draft"
    assert held.approval.role == "sales_manager" and "above 5" in held.approval.message
    with crm.unit_of_work(rep) as uow:
        assert send_quote(uow, quote.id).held  # still waiting: nothing changes
        with pytest.raises(TransitionError, match="discount of 12.70% is above 5% and needs the approval of role 'sales_manager'"):
            uow.move("quote", quote.id, "sent")
    with crm.unit_of_work(manager) as uow:
        approve(uow, held.approval.id)
        uow.commit()
    with crm.unit_of_work(rep) as uow:
        sent = send_quote(uow, quote.id)
        uow.commit()
    assert not sent.held and sent.quote.state == "sent"
    with crm.unit_of_work() as uow:
        assert uow.get("opportunity", s["opportunity"].id).stage == "quotation_sent"


def test_a_rejected_discount_is_not_sent(crm_factory, make_user, tmp_path):
    crm = crm_factory(plugins=["orders"], settings=secured(tmp_path, approval_discount_percent=2))
    manager = make_user(crm, "boss", roles=["sales_manager"])
    s = seed(crm)
    with crm.unit_of_work() as uow:
        quote = quote_from_opportunity(uow, s["opportunity"].id)
        held = send_quote(uow, quote.id)
        uow.commit()
    with crm.unit_of_work(manager) as uow:
        reject(uow, held.approval.id)
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(TransitionError, match="rejected"):
        send_quote(uow, quote.id)
