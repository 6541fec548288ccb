"""The secured data API of the unit of work: selects across references (joins, filters, groups,
aggregates, exists, counts), field projections of queries, set-based updates and deletes of
the records matching a filter, and the named raw API of a plugin's own tables.

The story: a rep owns the account Acme and reads every opportunity (public read), but not the
account Globex (private); a viewer reads opportunities and accounts without seeing an
account's revenue or an opportunity's probability.
"""

from __future__ import annotations

import decimal
import importlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import hookimpl
from crmcore.conformance import RAW_ACCESS_SCHEDULED, conformance_failures
from crmcore.errors import (
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    ReferenceError,
    ValidationError,
)
from crmcore.fields import Field, Reference, String
from crmcore.money import Money
from crmcore.plugins import PluginInfo
from crmcore.registry import EntityType
from crmcore.security import admin
from crmcore.storage.raw import raw_access_uses

D = decimal.Decimal

SECURITY = {
    "profiles": {
        "rep": {"privileges": {"account": "all", "contact": "all", "opportunity": "all", "gadget": "all"}},
        "viewer": {
            "privileges": {"opportunity": ["read"], "account": ["read"], "contact": ["read"]},
            "fields": {"account": {"annual_revenue": "hidden"}, "opportunity": {"probability": "hidden"}},
        },
    },
    "roles": {"rep": {"profiles": ["rep"]}, "viewer": {"profiles": ["viewer"]}},
    "entities": {
        "account": {"sharing": "private"},
        "contact": {"sharing": "public_read"},
        "opportunity": {"sharing": "public_read"},
        "gadget": {"sharing": "public_read"},
    },
}


class Gadgets:
    """A throwaway plugin: an entity of its own referring to accounts, hooks that record calls,
    and a table of its own that is not a record."""

    PLUGIN = PluginInfo(name="gadgets")

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.own = sa.Table("gadgets_cursor", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("position", sa.String(20)))

    @hookimpl
    def crm_entity_types(self) -> list[EntityType]:
        return [EntityType("gadget", fields=(Field("label", String(50), required=True),
                                             Field("account_id", Reference("account", on_delete="cascade"))),
                           ownable=True)]

    @hookimpl
    def crm_before_update(self, entity: str, items: list[tuple[Any, dict[str, Any]]]) -> list[Any] | None:
        if entity != "opportunity":
            return None
        self.calls.append(("before_update", [old.id for old, _ in items]))
        return [{"description": "bulk"} for _ in items]

    @hookimpl
    def crm_after_update(self, entity: str, items: list[Any]) -> None:
        if entity == "opportunity":
            self.calls.append(("after_update", [new.version for _, new, _ in items]))

    @hookimpl
    def crm_before_delete(self, entity: str, records: list[Any]) -> None:
        self.calls.append(("before_delete", [(entity, record.id) for record in records]))

    @hookimpl
    def crm_after_delete(self, entity: str, records: list[Any]) -> None:
        self.calls.append(("after_delete", [(entity, record.id) for record in records]))


@pytest.fixture
def world(crm_factory: Any) -> dict[str, Any]:
    gadgets = Gadgets()
    crm = crm_factory(plugins=[gadgets], security=SECURITY)
    with crm.unit_of_work() as uow:
        rep = admin.add_user(uow, "rep", roles=["rep"])
        admin.add_user(uow, "viewer", roles=["viewer"])
        acme = uow.create("account", name="Acme", industry="retail", annual_revenue="5000 EUR", owner_id=rep.id)
        globex = uow.create("account", name="Globex", industry="energy", annual_revenue="9000 EUR")
        deals = [
            uow.create("opportunity", name="Opp1", account_id=acme.id, amount="100.10 EUR", probability=10),
            uow.create("opportunity", name="Opp2", account_id=acme.id, amount="50 USD", owner_id=rep.id),
            uow.create("opportunity", name="Opp3", account_id=globex.id, amount="200.25 EUR"),
            uow.create("opportunity", name="Opp4"),
        ]
        gadget = uow.create("gadget", label="G1", account_id=acme.id)
        uow.commit()
    with crm.engine.begin() as connection:
        gadgets.own.create(connection)
    return {"crm": crm, "acme": acme, "globex": globex, "deals": deals, "gadget": gadget, "plugin": gadgets}


FIELDS = ("name", "amount", "account_id", "account_id.name")


def test_select_joins_along_references_and_reads_plain_rows(world: dict[str, Any]) -> None:
    acme, globex = world["acme"], world["globex"]
    with world["crm"].unit_of_work() as uow:
        rows = uow.select("opportunity", fields=FIELDS).order_by("name").all()
    assert rows == [
        {"name": "Opp1", "amount": Money(D("100.10"), "EUR"), "account_id": acme.id, "account_id.name": "Acme"},
        {"name": "Opp2", "amount": Money(D("50"), "USD"), "account_id": acme.id, "account_id.name": "Acme"},
        {"name": "Opp3", "amount": Money(D("200.25"), "EUR"), "account_id": globex.id, "account_id.name": "Globex"},
        {"name": "Opp4", "amount": None, "account_id": None, "account_id.name": None},
    ]


def test_a_referenced_record_the_actor_may_not_read_reads_as_missing(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work("rep") as uow:
        rows = uow.select("opportunity", fields=("name", "account_id.name", "account_id.industry")).order_by("name").all()
        assert [(r["name"], r["account_id.name"], r["account_id.industry"]) for r in rows] == [
            ("Opp1", "Acme", "retail"), ("Opp2", "Acme", "retail"), ("Opp3", None, None), ("Opp4", None, None),
        ]
        # conditions on the invisible account see empty values, as on a missing one
        assert uow.select("opportunity", fields=("name",)).where("account_id.name is null").order_by("name").all() == [
            {"name": "Opp3"}, {"name": "Opp4"},
        ]
        assert uow.select("opportunity").where(("account_id.name", "=", "Globex")).count() == 0
        assert not uow.select("opportunity").where(("account_id.industry", "=", "energy")).exists()


def test_select_filters_sorts_and_limits_on_joined_fields(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work() as uow:
        by_text = uow.select("opportunity", fields=("name",)).where("account_id.name^Glo")
        assert by_text.all() == [{"name": "Opp3"}]
        grouped = {"any": [("account_id.industry", "=", "energy"), ("amount", ">", "60")]}
        assert [r["name"] for r in uow.select("opportunity", fields=("name",)).where(grouped).order_by("name").all()] == [
            "Opp1", "Opp3",
        ]
        ordered = uow.select("opportunity", fields=("name",)).order_by("-account_id.name", "name").limit(3).all()
        assert [r["name"] for r in ordered] == ["Opp4", "Opp3", "Opp1"]  # empty first descending
        assert uow.select("opportunity").where(("account_id.industry", "!=", "retail")).count() == 2
        assert uow.select("opportunity").where(name="Opp2").exists()
        assert uow.select("opportunity").where(name="nope").first() is None


def test_select_follows_paths_of_several_references(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace", account_id=world["acme"].id)
        uow.update(world["deals"][3], contact_id=contact.id)
        rows = uow.select("opportunity", fields=("name", "contact_id.account_id.name")).where(name="Opp4").all()
    assert rows == [{"name": "Opp4", "contact_id.account_id.name": "Acme"}]


def test_select_groups_and_aggregates_money_exactly_per_currency(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work("rep") as uow:
        rows = uow.select("opportunity").group_by("account_id.name").aggregate(sum=["amount"], max=["name"])
        # grouping in aggregate(), as a query does, is the same
        assert uow.select("opportunity").aggregate(group_by=["account_id.name"], sum=["amount"], max=["name"]) == rows
    assert rows == [
        {"account_id.name": "Acme", "amount_currency": "EUR", "count": 1, "sum_amount": Money(D("100.10"), "EUR"),
         "max_name": "Opp1"},
        {"account_id.name": "Acme", "amount_currency": "USD", "count": 1, "sum_amount": Money(D("50"), "USD"),
         "max_name": "Opp2"},
        {"account_id.name": None, "amount_currency": "EUR", "count": 1, "sum_amount": Money(D("200.25"), "EUR"),
         "max_name": "Opp3"},
        {"account_id.name": None, "amount_currency": None, "count": 1, "sum_amount": None, "max_name": "Opp4"},
    ]
    with world["crm"].unit_of_work() as uow:
        totals = uow.select("opportunity").where(("account_id", "is not null")).aggregate(sum=["account_id.annual_revenue"])
        assert totals == [{"account_id.annual_revenue_currency": "EUR", "count": 3,
                           "sum_account_id.annual_revenue": Money(D("19000"), "EUR")}]
        with pytest.raises(ValidationError, match="aggregate"):
            uow.select("opportunity", fields=("name",)).group_by("account_id").all()


def test_hidden_fields_of_every_entity_touched_are_refused(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work("viewer") as uow:
        with pytest.raises(PermissionDeniedError, match="account.annual_revenue is hidden"):
            uow.select("opportunity", fields=("name", "account_id.annual_revenue"))
        with pytest.raises(PermissionDeniedError, match="opportunity.probability is hidden"):
            uow.select("opportunity").where(("probability", ">", 5))
        with pytest.raises(PermissionDeniedError, match="account.annual_revenue"):
            uow.select("opportunity").aggregate(sum=["account_id.annual_revenue"])
        with pytest.raises(PermissionDeniedError):
            uow.select("opportunity").order_by("account_id.annual_revenue")
        assert "probability" not in uow.select("opportunity").all()[0]  # default fields: the visible ones


def test_select_refuses_paths_through_fields_that_are_not_references(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work() as uow:
        with pytest.raises(ValidationError, match="'name' is not a reference field of opportunity"):
            uow.select("opportunity", fields=("name.length",))
        with pytest.raises(ValidationError, match="unknown field"):
            uow.select("opportunity", fields=("account_id.nope",))
        with pytest.raises(NotFoundError):
            uow.select("nothing")


def test_select_reads_plugin_entities_like_core_ones(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work("viewer") as uow:  # no privilege on gadgets: nothing to read, as in a query
        assert uow.select("gadget").all() == [] and uow.query("gadget").count() == 0
    with world["crm"].unit_of_work("rep") as uow:
        assert uow.select("gadget", fields=("label", "account_id.name")).all() == [{"label": "G1", "account_id.name": "Acme"}]


# -- field projection -----------------------------------------------------------------------


def test_query_fields_reads_only_the_named_fields(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work() as uow:
        query = uow.query("opportunity").fields("name", "amount").order_by("amount")
        first = query.page(2)
        assert [dict(r.values) for r in first] == [
            {"id": world["deals"][1].id, "name": "Opp2", "amount": Money(D("50"), "USD")},
            {"id": world["deals"][0].id, "name": "Opp1", "amount": Money(D("100.10"), "EUR")},
        ]
        second = query.page(2, after=first.next_cursor)
        assert [r.name for r in second] == ["Opp3", "Opp4"] and second.next_cursor is None
        assert [r.name for r in query.all()] == ["Opp2", "Opp1", "Opp3", "Opp4"] == [r.name for r in query]
        assert set(query.first().values) == {"id", "name", "amount"}
        assert uow.update("opportunity", query.first().id, next_step="call").version == 2  # re-read by id
    with world["crm"].unit_of_work("viewer") as uow:
        with pytest.raises(PermissionDeniedError, match="probability"):
            uow.query("opportunity").fields("name", "probability")
        with pytest.raises(ValidationError, match="unknown field"):
            uow.query("opportunity").fields("nope")


# -- set-based writes -----------------------------------------------------------------------


def test_update_where_runs_hooks_audit_and_versions_of_the_batch_update(world: dict[str, Any]) -> None:
    crm, calls, deals = world["crm"], world["plugin"].calls, world["deals"]
    with crm.unit_of_work() as uow:
        changed = uow.update_where("opportunity", ("account_id.name", "=", "Acme"), set={"next_step": "call"})
        assert changed == 2
        assert uow.update_where("opportunity", {"name": "Opp1"}, set={"next_step": "call"}) == 0  # already so
        uow.commit()
    assert calls == [("before_update", [deals[0].id, deals[1].id]), ("after_update", [2, 2])]
    with crm.unit_of_work() as uow:
        after = uow.get_many("opportunity", [d.id for d in deals])
        assert [(r.next_step, r.description, r.version) for r in after] == [
            ("call", "bulk", 2), ("call", "bulk", 2), (None, None, 1), (None, None, 1)]
        entry = uow.history("opportunity", deals[0].id)[-1]
        assert entry.action == "updated" and entry.changes == {"next_step": (None, "call"), "description": (None, "bulk")}


def test_update_where_refuses_whole_when_a_readable_record_is_not_updatable(world: dict[str, Any]) -> None:
    crm, deals = world["crm"], world["deals"]
    with crm.unit_of_work("rep") as uow:
        with pytest.raises(PermissionDeniedError, match=f"rep may not update opportunity {deals[0].id}"):
            uow.update_where("opportunity", "name^Opp", set={"next_step": "call"})
        assert uow.update_where("opportunity", {"owner_id": uow.actor.user_id}, set={"next_step": "mine"}) == 1
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [r.next_step for r in uow.get_many("opportunity", [d.id for d in deals])] == [None, "mine", None, None]
    with crm.unit_of_work("viewer") as uow, pytest.raises(PermissionDeniedError):
        uow.update_where("opportunity", {"name": "Opp2"}, set={"next_step": "x"})
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="say which"):
            uow.update_where("opportunity", None, set={"next_step": "x"})
        with pytest.raises(ValidationError, match="set="):
            uow.update_where("opportunity", {}, set={})


def test_update_where_leaves_records_the_actor_cannot_read_untouched(world: dict[str, Any]) -> None:
    crm, acme, globex = world["crm"], world["acme"], world["globex"]
    with crm.unit_of_work("rep") as uow:
        assert uow.update_where("account", {}, set={"industry": "media"}) == 1
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [a.industry for a in uow.get_many("account", [acme.id, globex.id])] == ["media", "energy"]


def test_delete_where_deletes_set_based_with_hooks_audit_and_references(world: dict[str, Any]) -> None:
    crm, calls, deals = world["crm"], world["plugin"].calls, world["deals"]
    with crm.unit_of_work() as uow:
        assert uow.delete_where("opportunity", ("amount", "<", "150")) == 2
        uow.commit()
    assert calls == [(f"{when}_delete", [("opportunity", d.id) for d in deals[:2]]) for when in ("before", "after")]  # one batch
    with crm.unit_of_work() as uow:
        assert [r.name for r in uow.query("opportunity").order_by("name")] == ["Opp3", "Opp4"]
        assert uow.history("opportunity", deals[0].id)[-1].action == "deleted"
        with pytest.raises(ReferenceError, match=f"cannot delete account {world['globex'].id}: referenced by opportunity"):
            uow.delete_where("account", {"name": "Globex"})
        # the gadget refers to Acme with cascade: deleted as a single delete deletes it
        uow.delete_where("opportunity", {})
        assert uow.delete_where("account", {"name": "Acme"}) == 1
        assert uow.select("gadget").count() == 0
        uow.commit()


def test_delete_where_refuses_whole_when_a_readable_record_is_not_deletable(world: dict[str, Any]) -> None:
    crm, deals = world["crm"], world["deals"]
    with crm.unit_of_work("rep") as uow:
        with pytest.raises(PermissionDeniedError, match=f"rep may not delete opportunity {deals[0].id}"):
            uow.delete_where("opportunity", ("name", "in", ["Opp1", "Opp2"]))
        assert uow.query("opportunity").count() == 4
        assert uow.delete_where("opportunity", {"name": "Opp2"}) == 1
        assert uow.query("opportunity").count() == 3


# -- the named raw API ----------------------------------------------------------------------


def test_raw_api_reaches_the_plugins_own_tables_only(world: dict[str, Any]) -> None:
    own = world["plugin"].own
    with world["crm"].unit_of_work() as uow:
        raw = uow.raw("gadgets")
        raw.execute(sa.insert(own), [{"position": "a"}, {"position": "b"}])
        assert raw.execute(sa.select(sa.func.count()).select_from(own)).scalar_one() == 2
        gadget = uow.registry.table("gadget")
        with pytest.raises(PluginError, match="may not touch 'gadgets_gadget'"):
            raw.execute(sa.select(own.c.position).join(gadget, gadget.c.id == own.c.id))
        account = uow.registry.table("account")
        with pytest.raises(PluginError, match="may not touch 'crm_account'"):
            raw.execute(sa.update(own).values(position=sa.select(account.c.name).limit(1).scalar_subquery()))
        with pytest.raises(PluginError, match="may not touch 'crm_account'"):
            raw.execute(sa.delete(account))
        with pytest.raises(PluginError, match="not SQL text"):
            raw.execute(sa.text("DELETE FROM crm_account"))
        with pytest.raises(PluginError, match="no enabled plugin 'nope'"):
            uow.raw("nope")


# -- selects extended by a plugin, their updates, many creates ----------------------------------


def _positions(world: dict[str, Any], uow: Any) -> Any:
    """The gadgets plugin's own table holding a position per account (Acme "b", Globex "a")."""
    own = world["plugin"].own
    uow.raw("gadgets").execute(sa.insert(own), [{"id": world["acme"].id, "position": "b"},
                                                {"id": world["globex"].id, "position": "a"}])
    return own


def test_extend_joins_a_plugins_own_table_and_computes_columns_over_visible_fields(world: dict[str, Any]) -> None:
    acme, globex = world["acme"], world["globex"]
    with world["crm"].unit_of_work() as uow:
        own = _positions(world, uow)
        wanted = sa.bindparam("wanted", type_=sa.String())
        select = uow.select("account", fields=("name", "version")).extend(
            "gadgets", join=(own, "id"), where=lambda c: c["industry"] != wanted,
            columns={"position": lambda c: own.c.position, "shout": lambda c: sa.func.upper(c["name"])},
        ).order_by("position").limit(5)
        assert select.params(wanted="nope").all() == [
            {"name": "Globex", "version": 1, "position": "a", "shout": "GLOBEX"},
            {"name": "Acme", "version": 1, "position": "b", "shout": "ACME"},
        ]
        assert [r["name"] for r in select.params(wanted="energy").all()] == ["Acme"]  # the statement built once
        assert select.params(wanted="energy").where(("position", "=", "b")).count() == 1
        uow.create("account", name="Initech")  # no row in the own table: not there
        assert uow.select("account").extend("gadgets", join=(own, "id")).count() == 2
        uow.commit()
    with world["crm"].unit_of_work("rep") as uow:  # Globex is private to someone else
        rows = uow.select("account", fields=("name",)).extend("gadgets", join=(own, "id")).limit(9).all()
        assert rows == [{"name": "Acme"}] and acme.id != globex.id


def test_extend_refuses_other_tables_hidden_fields_and_sql_text(world: dict[str, Any]) -> None:
    own = world["plugin"].own
    with world["crm"].unit_of_work("viewer") as uow:
        select = uow.select("account", fields=("name",))
        contact = uow.registry.table("contact")
        with pytest.raises(PluginError, match="may not touch 'crm_contact'"):
            select.extend("gadgets", where=lambda c: c["id"].in_(sa.select(contact.c.account_id)))
        with pytest.raises(KeyError):  # a hidden field is not offered
            select.extend("gadgets", columns={"revenue": lambda c: c["annual_revenue"]})
        table = uow.registry.table("account")
        with pytest.raises(PluginError, match="hidden from the actor"):
            select.extend("gadgets", columns={"revenue": lambda c: table.c.annual_revenue})
        with pytest.raises(PluginError, match="not SQL text"):
            select.extend("gadgets", where=lambda c: sa.literal_column("annual_revenue") > 5)
        with pytest.raises(PluginError, match="no enabled plugin 'nope'"):
            select.extend("nope", join=(own, "id"))
        with pytest.raises(ValidationError, match="named like a field"):
            select.extend("gadgets", columns={"name": lambda c: c["name"]})


def test_count_per_counts_distinct_values_of_the_records_the_actor_reads(world: dict[str, Any]) -> None:
    acme, globex = world["acme"], world["globex"]
    with world["crm"].unit_of_work() as uow:
        uow.create("opportunity", name="Opp5", account_id=acme.id, amount="10 EUR")
        uow.commit()
    for actor, expected in ((None, {"Acme": 2, "Globex": 1}), ("rep", {"Acme": 2})):
        with world["crm"].unit_of_work(actor) as uow:
            deals = uow.select("opportunity").where(("amount_currency", "=", "EUR"))
            currencies = uow.select("opportunity").where(("amount", "is not null"))
            rows = uow.select("account", fields=("name",)).extend("gadgets", columns={
                "eur": lambda c, deals=deals: deals.count_per("account_id", c["id"]),
                "currencies": lambda c, cur=currencies: cur.count_per("account_id", c["id"], distinct="amount_currency"),
            }).order_by("name").all()
            assert {r["name"]: r["eur"] for r in rows} == expected
            assert {r["name"]: r["currencies"] for r in rows}["Acme"] == 2 and globex.id


def test_select_update_gives_the_ids_it_changed(world: dict[str, Any]) -> None:
    crm, calls, deals = world["crm"], world["plugin"].calls, world["deals"]
    with crm.unit_of_work() as uow:
        assert uow.select("opportunity").where(("account_id.name", "=", "Acme")).update(set={"next_step": "call"}) == [
            deals[0].id, deals[1].id]
        assert uow.select("opportunity").where(name="Opp1").update(set={"next_step": "call"}) == []
        uow.commit()
    assert calls[0] == ("before_update", [deals[0].id, deals[1].id])
    with crm.unit_of_work("rep") as uow, pytest.raises(PermissionDeniedError, match=f"opportunity {deals[0].id}"):
        uow.select("opportunity").where("name^Opp").update(set={"next_step": "x"})


def test_select_update_with_a_limit_changes_the_first_matches_in_its_order(world: dict[str, Any]) -> None:
    crm, deals = world["crm"], world["deals"]
    with crm.unit_of_work() as uow:
        matching = uow.select("opportunity", fields=("id",)).order_by("-id")
        assert len(matching.all()) > 2
        changed = matching.limit(2).update(set={"next_step": "first two"})
        assert changed == sorted(r["id"] for r in matching.limit(2).all())
        assert uow.select("opportunity").where(next_step="first two").count() == 2
        assert max(d.id for d in deals) in changed


def test_create_many_creates_audits_and_checks_like_create(world: dict[str, Any]) -> None:
    crm, acme = world["crm"], world["acme"]
    with crm.unit_of_work("rep") as uow:
        made = uow.create_many("gadget", [{"label": "G2", "account_id": acme.id}, {"label": "G3"}])
        assert [(g.label, g.account_id, g.owner_id, g.version) for g in made] == [
            ("G2", acme.id, uow.actor.user_id, 1), ("G3", None, uow.actor.user_id, 1)]
        assert uow.history("gadget", made[0].id)[-1].action == "created"
        with pytest.raises(ReferenceError, match="no account with id 987654"):
            uow.create_many("gadget", [{"label": "G4"}, {"label": "G5", "account_id": 987654}])
        with pytest.raises(ValidationError, match="label"):
            uow.create_many("gadget", [{"label": "G6"}, {"account_id": acme.id}])
        assert uow.create_many("gadget", []) == []
        uow.commit()
    with crm.unit_of_work() as uow:
        assert sorted(r["label"] for r in uow.select("gadget", fields=("label",)).all()) == ["G1", "G2", "G3"]
    with crm.unit_of_work("viewer") as uow, pytest.raises(PermissionDeniedError):
        uow.create_many("opportunity", [{"name": "Nope"}])


def test_raw_ensure_makes_a_named_schema_object_of_the_plugin_once(world: dict[str, Any]) -> None:
    with world["crm"].unit_of_work() as uow:
        raw = uow.raw("gadgets")
        statement = "CREATE INDEX gadgets_cursor_position ON gadgets_cursor (position)"
        assert raw.ensure("gadgets_cursor_position", statement) is True
        assert raw.ensure("gadgets_cursor_position", statement) is False
        with pytest.raises(PluginError, match="ensure"):
            raw.ensure("crm_account_name", "CREATE INDEX crm_account_name ON crm_account (name)")
        with pytest.raises(PluginError, match="ensure"):
            raw.ensure("gadgets_x", "DROP TABLE crm_account")
        with pytest.raises(PluginError, match="runs no DDL"):
            raw.execute(sa.DDL("DROP TABLE crm_account"))


# -- the conformance check of data access -------------------------------------------------------

PLUGIN_SOURCE = '''
import sqlalchemy as sa
from crmcore import hookimpl

OWN = sa.Table("{name}_cursor", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))


@hookimpl
def crm_after_create(uow, entity, records):
    for record in records if entity == "account" else ():
        {body}
'''
GOOD_BODY = 'uow.select("contact", fields=("id",)).where(("account_id", "=", record.id)).count(); uow.raw("{name}").execute(sa.select(OWN))'
BAD_BODY = 'uow.connection.execute(sa.select(uow.registry.table("contact")))'


def _plugin(tmp_path: Any, monkeypatch: Any, name: str, body: str) -> Any:
    package = tmp_path / f"crm_dataapi_{name}"
    package.mkdir()
    (package / "__init__.py").write_text(f"from crmcore import PluginInfo\nPLUGIN = PluginInfo(name={name!r})\n")
    (package / "README.md").write_text(f"# {name}\n")
    (package / "plugin.py").write_text(PLUGIN_SOURCE.format(name=name, body=body.format(name=name)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(f"crm_dataapi_{name}.plugin")


def test_conformance_fails_a_plugin_that_reaches_records_past_the_road(tmp_path: Any, monkeypatch: Any) -> None:
    bad = _plugin(tmp_path, monkeypatch, "baddata", BAD_BODY)
    failures = conformance_failures("baddata", plugins=[bad]).failures
    assert len(failures) == 1 and "reaches records past the unit of work's secured road" in failures[0]
    assert "crm_dataapi_baddata/plugin.py:11: uow.connection" in failures[0]
    assert "uow.registry.table('contact')" in failures[0]


def test_conformance_passes_a_plugin_on_the_road_and_its_own_raw_tables(tmp_path: Any, monkeypatch: Any) -> None:
    good = _plugin(tmp_path, monkeypatch, "gooddata", GOOD_BODY)
    assert conformance_failures("gooddata", plugins=[good]).failures == []


def test_the_help_desk_reaches_records_only_through_the_road() -> None:
    helpdesk = Path(importlib.import_module("crm_helpdesk").__file__).parent  # type: ignore[arg-type]
    assert raw_access_uses(helpdesk) == []
    assert "helpdesk" not in RAW_ACCESS_SCHEDULED
