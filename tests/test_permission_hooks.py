"""Plugins add grants and restrictions through hooks; both compile into the one predicate."""

from __future__ import annotations

import sqlalchemy as sa

from crmcore import Actor, EntityType, Field, PluginInfo, hookimpl
from crmcore.fields import Reference, String
from crmcore.security import FieldEquals, FieldIn, Grant, IdSet, Not, Restriction, admin

SECURITY = {
    "profiles": {"sales": {"privileges": {"account": "all", "territory": "all"}}},
    "roles": {"rep": {"profiles": ["sales"]}},
    "entities": {"account": {"sharing": "private"}},
}


class Territories:
    """A plugin: reps see the accounts of their territories; nobody sees blocked accounts."""

    PLUGIN = PluginInfo(name="territories")

    @hookimpl
    def crm_entity_types(self):
        return [EntityType("territory", fields=(
            Field("name", String(50), required=True),
            Field("user_id", Reference("user"), required=True),
            Field("account_id", Reference("account"), required=True),
        ))]

    @hookimpl
    def crm_entity_fields(self, entity_type):
        if entity_type == "account":
            return [Field("status", String(20))]
        return None

    @hookimpl
    def crm_access_grants(self, context, entity, action):
        if entity != "account" or action != "read":
            return None
        table = context.table("territory")
        mine = sa.select(table.c.account_id).where(table.c.user_id == context.actor.user_id)
        return [Grant("read", FieldIn("id", IdSet(query=mine)), "account in the user's territory")]

    @hookimpl
    def crm_access_restrictions(self, context, entity, action):
        if entity == "account":
            blocked = FieldEquals("territories_status", "blocked")
            return [Restriction(Not(blocked), "blocked accounts are hidden")]
        return None


def _setup(crm_factory):
    crm = crm_factory(plugins=[Territories()], security=SECURITY)
    with crm.unit_of_work() as uow:
        ann = admin.add_user(uow, "ann", roles=["rep"])
        bob = admin.add_user(uow, "bob", roles=["rep"])
        north = uow.create("account", name="North", owner_id=bob.id)
        south = uow.create("account", name="South", owner_id=bob.id)
        blocked = uow.create("account", name="Blocked", owner_id=ann.id, status="blocked")
        uow.create("territory", name="N", user_id=ann.id, account_id=north.id)
        uow.commit()
    return crm, Actor(ann.id, "ann"), Actor(bob.id, "bob"), (north, south, blocked)


def test_a_plugin_grant_adds_records_in_sql_and_in_memory(crm_factory):
    crm, ann, _, (north, south, _) = _setup(crm_factory)
    with crm.unit_of_work(ann) as uow:
        assert [a.name for a in uow.query("account").order_by("name")] == ["North"]
        assert uow.get("account", north.id).name == "North"
    decision = crm.explain(ann, "account", north.id)
    assert decision.allowed and decision.chain[-1] == "matched: account in the user's territory"
    assert not crm.explain(ann, "account", south.id).allowed


def test_a_plugin_grant_gives_only_the_level_it_names(crm_factory):
    crm, ann, _, (north, _, _) = _setup(crm_factory)
    assert not crm.explain(ann, "account", north.id, "update").allowed


def test_a_plugin_restriction_hides_records_even_from_their_owner(crm_factory):
    crm, ann, bob, (_, _, blocked) = _setup(crm_factory)
    with crm.unit_of_work(ann) as uow:
        assert "Blocked" not in [a.name for a in uow.query("account")]
    decision = crm.explain(ann, "account", blocked.id)
    assert not decision.allowed
    assert "restricted by plugin: blocked accounts are hidden" in decision.chain
    with crm.unit_of_work(bob) as uow:
        assert sorted(a.name for a in uow.query("account")) == ["North", "South"]
