"""Agents see the tickets of their queues and those tickets' accounts, read-only; assignees and
queue managers may change tickets; unpublished articles stay with their authors."""

from __future__ import annotations

from typing import Any

import pytest
from crmcore import NotFoundError, PermissionDeniedError
from crmcore import security as admin
from helpdesk_support import SECURITY, account, open_ticket, queue, users


def _desk(crm_factory: Any) -> Any:
    crm = crm_factory(plugins=["helpdesk"], security=SECURITY)
    ann, bob, cid = users(crm, "ann", "bob", "cid", roles=("support_agent",))
    (lee,) = users(crm, "lee", roles=("support_lead",))
    first = queue(crm, "First line", agents=(ann, bob), manager_id=lee.user_id, assignment="manual")
    billing = queue(crm, "Billing", agents=(cid,), assignment="manual")
    acme, globex = account(crm, "Acme"), account(crm, "Globex")
    in_first = open_ticket(crm, "Printer", queue_id=first, account_id=acme)
    in_billing = open_ticket(crm, "Invoice", queue_id=billing, account_id=globex)
    return crm, (ann, bob, cid, lee), (in_first, in_billing), (acme, globex)


def test_agents_see_the_tickets_of_their_queues_only(crm_factory: Any) -> None:
    crm, (ann, _, cid, lee), (in_first, in_billing), _ = _desk(crm_factory)
    with crm.unit_of_work(ann) as uow:
        assert [t.subject for t in uow.query("ticket")] == ["Printer"]
        with pytest.raises(NotFoundError):
            uow.get("ticket", in_billing.id)
    with crm.unit_of_work(cid) as uow:
        assert [t.subject for t in uow.query("ticket")] == ["Invoice"]
    with crm.unit_of_work(lee) as uow:  # the manager of First line
        assert [t.subject for t in uow.query("ticket")] == ["Printer"]
    assert (
        crm.explain(ann, "ticket", in_first.id).chain[-1]
        == "matched: the ticket is in a queue the actor works"
    )


def test_agents_read_the_accounts_of_their_queues_tickets_but_cannot_change_them(
    crm_factory: Any,
) -> None:
    crm, (ann, _, _, _), _, (acme, globex) = _desk(crm_factory)
    with crm.unit_of_work(ann) as uow:
        assert [a.name for a in uow.query("account")] == ["Acme"]
        assert uow.get("account", acme).name == "Acme"
        with pytest.raises(NotFoundError):
            uow.get("account", globex)
        with pytest.raises(PermissionDeniedError):
            uow.update("account", acme, name="Acme Corp")


def test_a_queue_member_reads_a_ticket_but_only_its_assignee_or_manager_changes_it(
    crm_factory: Any,
) -> None:
    crm, (ann, bob, _, lee), (in_first, _), _ = _desk(crm_factory)
    with crm.unit_of_work(bob) as uow, pytest.raises(PermissionDeniedError):
        uow.update("ticket", in_first.id, category="hardware")
    with crm.unit_of_work(lee) as uow:
        uow.update("ticket", in_first.id, assignee_id=ann.user_id)
        uow.commit()
    with crm.unit_of_work(ann) as uow:
        assert uow.update("ticket", in_first.id, category="hardware").category == "hardware"
        uow.commit()
    with crm.unit_of_work(bob) as uow, pytest.raises(PermissionDeniedError):
        uow.update("ticket", in_first.id, category="printers")


def test_members_of_a_queues_group_see_its_tickets(crm_factory: Any) -> None:
    crm, (_, _, cid, _), (in_first, _), _ = _desk(crm_factory)
    with crm.unit_of_work() as uow:
        group = admin.find_by_name(uow, "group", "second_line")
        admin.add_group_members(uow, "second_line", ["user:cid"])
        uow.create("queue_group", queue_id=in_first.queue_id, group_id=group.id)
        uow.commit()
    with crm.unit_of_work(cid) as uow:
        assert sorted(t.subject for t in uow.query("ticket")) == ["Invoice", "Printer"]


def test_drafts_are_seen_by_their_author_and_publishers_published_articles_by_everybody(
    crm_factory: Any,
) -> None:
    crm, (ann, bob, _, lee), _, _ = _desk(crm_factory)
    with crm.unit_of_work(ann) as uow:
        draft = uow.create("kb_article", title="Toner", body="Replace the toner cartridge.")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert uow.query("kb_article").count() == 0
        with pytest.raises(NotFoundError):
            uow.get("kb_article", draft.id)
    with crm.unit_of_work(lee) as uow:
        assert uow.get("kb_article", draft.id).title == "Toner"
    with crm.unit_of_work() as uow:
        uow.update("kb_article", draft.id, owner_id=lee.user_id)
        uow.commit()
    with crm.unit_of_work(lee) as uow:
        published = uow.move("kb_article", draft.id, "published")
        uow.commit()
    assert published.published_at is not None
    with crm.unit_of_work(bob) as uow:
        assert [a.title for a in uow.query("kb_article")] == ["Toner"]


def test_publishing_needs_its_permission(crm_factory: Any) -> None:
    from crmcore import TransitionError

    crm, (ann, _, _, _), _, _ = _desk(crm_factory)
    with crm.unit_of_work(ann) as uow:
        draft = uow.create("kb_article", title="Toner", body="Replace the toner cartridge.")
        with pytest.raises(TransitionError, match="helpdesk.kb_article.publish"):
            uow.move(draft, "published")
