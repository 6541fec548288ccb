"""Queues assign new tickets: round robin, least open tickets, manual; agents or group members."""

from __future__ import annotations

from typing import Any

import pytest
from crmcore import ValidationError
from crmcore import security as admin
from helpdesk_support import MONDAY, get, open_ticket, queue, users

from crm_helpdesk import tickets


def test_round_robin_gives_each_agent_a_turn(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, bob, cid = users(crm, "ann", "bob", "cid")
    queue(crm, agents=(ann, bob, cid))
    got = [open_ticket(crm, f"Ticket {n}").assignee_id for n in range(5)]
    assert got == [ann.user_id, bob.user_id, cid.user_id, ann.user_id, bob.user_id]


def test_least_open_gives_the_ticket_to_the_agent_with_the_fewest_unfinished(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, bob = users(crm, "ann", "bob")
    billing = queue(crm, "Billing", agents=(ann, bob), assignment="least_open")
    first = open_ticket(crm, "One", queue_id=billing)
    second = open_ticket(crm, "Two", queue_id=billing)
    assert (first.assignee_id, second.assignee_id) == (ann.user_id, bob.user_id)
    with crm.unit_of_work() as uow:  # ann's ticket is done: she has fewer unfinished tickets
        tickets.resolve(uow, first)
        uow.commit()
    assert open_ticket(crm, "Three", queue_id=billing).assignee_id == ann.user_id
    assert open_ticket(crm, "Four", queue_id=billing).assignee_id == bob.user_id


def test_members_of_a_queues_group_are_its_agents(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    with crm.unit_of_work() as uow:
        group = admin.add_group(uow, "second_line", members=["user:ann"])
        queue_id = uow.create("queue", name="Second line").id
        uow.create("queue_group", queue_id=queue_id, group_id=group.id)
        uow.commit()
    assert open_ticket(crm, queue_id=queue_id).assignee_id == ann.user_id


def test_a_manual_queue_leaves_tickets_unassigned(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    desk = queue(crm, "Desk", agents=(ann,), assignment="manual")
    ticket = open_ticket(crm, queue_id=desk)
    assert (ticket.assignee_id, ticket.assigned_at) == (None, None)


def test_inactive_agents_get_nothing(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, bob = users(crm, "ann", "bob")
    queue(crm, agents=(ann, bob))
    with crm.unit_of_work() as uow:
        uow.update("user", ann.user_id, active=False)
        uow.commit()
    assert {open_ticket(crm, f"T{n}").assignee_id for n in range(3)} == {bob.user_id}


def test_a_queue_without_agents_leaves_tickets_unassigned(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    assert open_ticket(crm).assignee_id is None


def test_assigning_without_a_user_takes_the_queues_next_pick(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, bob = users(crm, "ann", "bob")
    queue(crm, agents=(ann, bob))
    ticket = open_ticket(crm, opened_at=MONDAY)
    assert ticket.assignee_id == ann.user_id
    with crm.unit_of_work() as uow:
        moved = tickets.assign(uow, ticket.id)
        uow.commit()
    assert (moved.assignee_id, moved.status) == (bob.user_id, "open")


def test_assigning_in_a_queue_without_other_agents_says_so(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    queue(crm, agents=(ann,))
    ticket = open_ticket(crm)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="no other active agent"):
        tickets.assign(uow, ticket.id)


def test_a_queue_cannot_escalate_to_itself(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    desk = queue(crm, "Desk")
    with (
        crm.unit_of_work() as uow,
        pytest.raises(ValidationError, match="cannot escalate to itself"),
    ):
        uow.update("queue", desk, escalation_queue_id=desk)


def test_an_explicit_assignee_is_kept(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, bob = users(crm, "ann", "bob")
    queue(crm, agents=(ann,))
    assert open_ticket(crm, assignee_id=bob.user_id).assignee_id == bob.user_id
    assert get(crm, "user", bob.user_id).username == "bob"
