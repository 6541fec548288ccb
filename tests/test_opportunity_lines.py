"""Opportunities in detail: products of interest (lines with exact totals), key participants
and their roles, milestones, the customer's budget, team, probability from the stage, and the
access of these records, which follows their opportunity's."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import (
    Actor,
    EntityType,
    Field,
    NotFoundError,
    PermissionDeniedError,
    PluginInfo,
    ValidationError,
    hookimpl,
)
from crmcore.builtin.opportunities import line_totals
from crmcore.fields import Reference, String
from crmcore.money import Money
from crmcore.security import FieldIn, IdSet, Restriction, admin
from crmcore.security.predicate import ALWAYS

SECURITY = {
    "profiles": {
        "sales": {"privileges": {"opportunity": "all", "account": "all", "contact": "all", "opportunity_line": "all",
                                 "opportunity_contact": "all", "opportunity_milestone": "all"}},
        "viewer": {"privileges": {"*": ["read"]}},
    },
    "roles": {
        "manager": {"profiles": ["sales"]},
        "rep": {"parent": "manager", "profiles": ["sales"]},
        "viewer": {"profiles": ["viewer"]},
    },
    "entities": {"opportunity": {"sharing": "private", "hierarchy": "read"}},
    "rules": [{"name": "viewers read deals", "entity": "opportunity", "owned_by": "role-tree:manager",
               "shared_with": "role:viewer", "access": "read"}],
}


@pytest.fixture
def deal(crm_factory):
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        record = uow.create("opportunity", name="Engines", account_id=account.id, amount="50000 EUR")
        uow.commit()
    return crm, record


# -- lines -----------------------------------------------------------------------------------


def test_a_line_total_is_quantity_times_unit_price_exactly(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        line = uow.create("opportunity_line", opportunity_id=opportunity.id, product="Gear", quantity="2.75", unit_price="19.99 EUR")
    assert line.line_total == Money(decimal.Decimal("54.9725"), "EUR")
    assert line.quantity == decimal.Decimal("2.75") and line.unit_price == Money("19.99", "EUR")


def test_the_total_follows_changes_of_quantity_and_price(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        line = uow.create("opportunity_line", opportunity_id=opportunity.id, description="Installation", unit_price="100 USD")
        assert (line.quantity, line.line_total) == (decimal.Decimal("1.00"), Money("100.0000", "USD"))
        line = uow.update(line, quantity="3")
        assert line.line_total == Money("300", "USD")
        line = uow.update(line, unit_price="0.33 USD")
        assert line.line_total == Money("0.99", "USD")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("opportunity_line", line.id).line_total == Money("0.9900", "USD")


def test_a_line_names_a_product_or_a_description(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="names a product or describes"):
        uow.create("opportunity_line", opportunity_id=opportunity.id, unit_price="1 EUR")


def test_a_quantity_must_be_positive(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="quantity: must be more than 0, got 0.00"):
        uow.create("opportunity_line", opportunity_id=opportunity.id, product="Gear", quantity="0", unit_price="1 EUR")


def test_the_line_total_is_computed_not_written(deal, make_user):
    crm, opportunity = deal
    ada = make_user(crm, "ada")
    with crm.unit_of_work(ada) as uow, pytest.raises(PermissionDeniedError, match="read-only"):
        uow.create("opportunity_line", opportunity_id=opportunity.id, product="Gear", unit_price="1 EUR", line_total="5 EUR")


def test_line_totals_add_up_per_currency(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        for quantity, price in (("2", "10.01 EUR"), ("1", "0.01 EUR"), ("4", "2.50 USD")):
            uow.create("opportunity_line", opportunity_id=opportunity.id, product="x", quantity=quantity, unit_price=price)
        assert line_totals(uow, opportunity.id) == [Money("20.03", "EUR"), Money("10.00", "USD")]


def test_lines_go_with_their_opportunity(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        uow.create("opportunity_line", opportunity_id=opportunity.id, product="Gear", unit_price="1 EUR")
        uow.create("opportunity_milestone", opportunity_id=opportunity.id, name="Demo", due_on="2026-04-01")
        uow.delete("opportunity", opportunity.id)
        assert uow.query("opportunity_line").count() == uow.query("opportunity_milestone").count() == 0


# -- participants and milestones -------------------------------------------------------------


def test_contacts_take_part_with_a_role_once_per_opportunity(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        ada = uow.create("contact", last_name="Lovelace")
        grace = uow.create("contact", last_name="Hopper")
        boss = uow.create("opportunity_contact", opportunity_id=opportunity.id, contact_id=ada.id, role="decision_maker")
        helper = uow.create("opportunity_contact", opportunity_id=opportunity.id, contact_id=grace.id)
        assert (boss.role, helper.role) == ("decision_maker", "other")
        with pytest.raises(ValidationError, match=f"contact {ada.id} already takes part in opportunity {opportunity.id}"):
            uow.create("opportunity_contact", opportunity_id=opportunity.id, contact_id=ada.id, role="influencer")
        with pytest.raises(ValidationError, match="already takes part"):
            uow.update(helper, contact_id=ada.id)
        assert uow.update(boss, role="economic_buyer").role == "economic_buyer"
        roles = uow.query("opportunity_contact").where(opportunity_id=opportunity.id).aggregate(group_by=["role"])
        assert [(r["role"], r["count"]) for r in roles] == [("economic_buyer", 1), ("other", 1)]


def test_an_unknown_role_is_refused(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace")
        with pytest.raises(ValidationError, match="role: expected one of 'decision_maker'"):
            uow.create("opportunity_contact", opportunity_id=opportunity.id, contact_id=contact.id, role="fan")


def test_milestones_have_dates(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        demo = uow.create("opportunity_milestone", opportunity_id=opportunity.id, name="Demo", due_on="2026-04-01")
        uow.create("opportunity_milestone", opportunity_id=opportunity.id, name="Signature", due_on="2026-06-30")
        uow.update(demo, done_on="2026-04-02")
        ahead = uow.query("opportunity_milestone").where(("done_on", "is null")).order_by("due_on").all()
        assert [m.name for m in ahead] == ["Signature"]
        with pytest.raises(ValidationError, match="due_on: is required"):
            uow.create("opportunity_milestone", opportunity_id=opportunity.id, name="Someday")


# -- the opportunity's own fields ------------------------------------------------------------


def test_budget_team_and_probability_from_the_stage_overridable(deal):
    crm, opportunity = deal
    with crm.unit_of_work() as uow:
        team = uow.create("team", name="North")
        record = uow.update(opportunity, customer_budget="60000 EUR", team_id=team.id)
        assert (record.customer_budget, record.team_id, record.probability) == (Money("60000.00", "EUR"), team.id, 10)
        record = uow.move(record, "identification")
        assert record.probability == 20
        record = uow.move(record, "qualification", probability=45)
        assert record.probability == 45
        record = uow.update(record, probability=55)
        assert uow.move(record, "rfp_received").probability == 50


def test_an_account_keeps_its_domain_from_website_or_email(crm_factory):
    crm = crm_factory()
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme", email="sales@acme.org")
        assert acme.domain == "acme.org"
        acme = uow.update(acme, website="https://www.acme.com")
        assert acme.domain == "acme.com"
        acme = uow.update(acme, domain="acme.net")
        assert uow.update(acme, website="https://acme.io").domain == "acme.net"  # set by hand: kept
        assert uow.create("account", name="Solo", email="me@gmail.com").domain is None


# -- access ----------------------------------------------------------------------------------


@pytest.fixture
def team(crm_factory):
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {name: admin.add_user(uow, name, roles=[role]) for name, role in
                 (("boss", "manager"), ("rep1", "rep"), ("rep2", "rep"), ("viewer", "viewer"))}
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    deals = {}
    for name in ("rep1", "rep2"):
        with crm.unit_of_work(actors[name]) as uow:
            record = uow.create("opportunity", name=f"{name} deal", amount="1000 EUR")
            contact = uow.create("contact", last_name=name)
            uow.create("opportunity_line", opportunity_id=record.id, product=f"{name} gear", unit_price="10 EUR")
            uow.create("opportunity_contact", opportunity_id=record.id, contact_id=contact.id, role="champion")
            uow.create("opportunity_milestone", opportunity_id=record.id, name=f"{name} demo", due_on="2026-05-01")
            uow.commit()
            deals[name] = record
    return crm, actors, deals


@pytest.mark.parametrize("entity", ["opportunity_line", "opportunity_contact", "opportunity_milestone"])
def test_details_are_read_with_their_opportunity(team, entity):
    crm, actors, deals = team
    expected = {"rep1": [deals["rep1"].id], "rep2": [deals["rep2"].id], "boss": sorted(d.id for d in deals.values()),
                "viewer": sorted(d.id for d in deals.values())}
    for name, ids in expected.items():
        with crm.unit_of_work(actors[name]) as uow:
            assert sorted(r.opportunity_id for r in uow.query(entity)) == ids, name
            assert uow.query(entity).count() == len(ids)


def test_a_rep_cannot_touch_the_details_of_anothers_deal(team):
    crm, actors, deals = team
    with crm.unit_of_work(actors["rep1"]) as uow:
        with pytest.raises(NotFoundError):
            uow.create("opportunity_line", opportunity_id=deals["rep2"].id, product="Sneaky", unit_price="1 EUR")
        with pytest.raises(NotFoundError):
            uow.create("opportunity_milestone", opportunity_id=deals["rep2"].id, name="x", due_on="2026-01-01")
    with crm.unit_of_work() as uow:
        other = uow.query("opportunity_line").where(opportunity_id=deals["rep2"].id).first()
    with crm.unit_of_work(actors["rep1"]) as uow, pytest.raises(NotFoundError):
        uow.update("opportunity_line", other.id, quantity="2")


def test_a_manager_who_reads_a_deal_cannot_change_its_lines(team):
    crm, actors, deals = team
    with crm.unit_of_work(actors["boss"]) as uow:
        line = uow.query("opportunity_line").where(opportunity_id=deals["rep1"].id).first()
        with pytest.raises(PermissionDeniedError):
            uow.update(line, quantity="2")
        with pytest.raises(PermissionDeniedError):
            uow.create("opportunity_line", opportunity_id=deals["rep1"].id, product="More", unit_price="1 EUR")
    with crm.unit_of_work(actors["rep1"]) as uow:
        assert uow.update("opportunity_line", line.id, quantity="2").line_total == Money("20", "EUR")


def test_a_restriction_may_follow_another_entitys_predicate(crm_factory):
    class Follow:
        PLUGIN = PluginInfo(name="follow")

        @hookimpl
        def crm_access_restrictions(self, context, entity, action):
            if entity != "note" or context.is_system:
                return None
            predicate = context.predicate("account", "read")
            if predicate == ALWAYS:
                return None
            table = context.table("account")
            return [Restriction(FieldIn("account_id", IdSet(query=sa.select(table.c.id).where(predicate.sql(table)))),
                                "a note follows its account")]

    security = {"profiles": {"p": {"privileges": {"account": "all", "note": "all"}}}, "roles": {"r": {"profiles": ["p"]}},
                "entities": {"account": {"sharing": "private"}}}
    crm = crm_factory([Follow()], security=security)
    with crm.unit_of_work() as uow:
        ada, bob = (admin.add_user(uow, n, roles=["r"]) for n in ("ada", "bob"))
        uow.commit()
    notes: dict[str, Any] = {}
    for user in (ada, bob):
        with crm.unit_of_work(Actor(user.id, user.username)) as uow:
            notes[user.username] = uow.create("note", body="x", account_id=uow.create("account", name=user.username).id).id
            uow.commit()
    with crm.unit_of_work(Actor(ada.id, "ada")) as uow:
        assert [n.id for n in uow.query("note")] == [notes["ada"]]
        with pytest.raises(NotFoundError):
            uow.get("note", notes["bob"])


class ProductLink:
    """A throwaway catalog: lines may name a product by reference."""

    PLUGIN = PluginInfo(name="product_link")

    @hookimpl
    def crm_entity_types(self) -> list[EntityType]:
        return [EntityType("gadget", fields=(Field("code", String(20)),))]

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
        return [Field("gadget_id", Reference("gadget"))] if entity_type == "opportunity_line" else None


def test_a_product_reference_a_plugin_adds_names_the_lines_product(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[ProductLink()])
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name="Deal")
        gadget = uow.create("gadget", code="G-1")
        line = uow.create("opportunity_line", opportunity_id=deal.id, gadget_id=gadget.id, quantity=2, unit_price="10")
        assert line.values["gadget_id"] == gadget.id
        with pytest.raises(ValidationError, match=r"names a product \(product or gadget_id\)"):
            uow.create("opportunity_line", opportunity_id=deal.id, quantity=1, unit_price="10")
