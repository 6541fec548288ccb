"""Permissions on every read and write path, told as a sales team's story.

Reps see their own leads, their manager sees both reps', a support group reads the accounts
shared with it, an intern never sees an opportunity's amount, and every answer can be explained.
"""

from __future__ import annotations

import pytest

from crmcore import Actor, ConfigError, NotFoundError, PermissionDeniedError, ValidationError
from crmcore.security import admin

SECURITY = {
    "profiles": {
        "sales": {"privileges": {"lead": "all", "account": "all", "contact": "all", "opportunity": "all"}},
        "support": {"privileges": {"account": ["read"], "contact": ["read"]}},
        "intern": {
            "privileges": {"opportunity": ["read", "update", "export"], "account": ["read"]},
            "fields": {"opportunity": {"amount": "hidden", "probability": "read_only"}},
        },
        "admin": {"privileges": {"*": "all"}, "modify_all": True},
    },
    "roles": {
        "ceo": {"profiles": ["admin"]},
        "sales_manager": {"parent": "ceo", "profiles": ["sales"]},
        "sales_rep": {"parent": "sales_manager", "profiles": ["sales"]},
        "support_agent": {"parent": "ceo", "profiles": ["support"]},
        "intern": {"parent": "sales_rep", "profiles": ["intern"]},
    },
    "groups": {"support": {"description": "Support agents"}},
    "entities": {
        "lead": {"sharing": "private"},
        "account": {"sharing": "private"},
        "opportunity": {"sharing": "private"},
        "contact": {"sharing": "private"},
    },
    "rules": [
        {"name": "support reads sales accounts", "entity": "account", "owned_by": "role-tree:sales_manager",
         "shared_with": "group:support", "access": "read"},
        {"name": "interns read opportunities", "entity": "opportunity", "owned_by": "role-tree:sales_manager",
         "shared_with": "role:intern", "access": "read"},
        {"name": "interns read accounts", "entity": "account", "owned_by": "role-tree:sales_manager",
         "shared_with": "role:intern", "access": "read"},
    ],
}


@pytest.fixture
def team(crm_factory):
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {
            name: admin.add_user(uow, name, roles=roles)
            for name, roles in {
                "ceo": ["ceo"], "manager": ["sales_manager"], "rep1": ["sales_rep"], "rep2": ["sales_rep"],
                "agent": ["support_agent"], "intern": ["intern"], "nobody": [],
            }.items()
        }
        admin.add_group_members(uow, "support", ["role:support_agent"])
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    records = {}
    for rep in ("rep1", "rep2"):
        with crm.unit_of_work(actors[rep]) as uow:
            account = uow.create("account", name=f"{rep} account")
            records[rep] = {
                "lead": uow.create("lead", last_name=f"{rep} lead"),
                "account": account,
                "opportunity": uow.create("opportunity", name=f"{rep} deal", account_id=account.id, amount="60000 EUR"),
            }
            uow.commit()
    return crm, actors, records


def _names(crm, actor, entity, field="id"):
    with crm.unit_of_work(actor) as uow:
        return sorted(r.values[field] for r in uow.query(entity))


def test_a_rep_sees_only_their_own_leads(team):
    crm, actors, records = team
    assert _names(crm, actors["rep1"], "lead", "last_name") == ["rep1 lead"]
    with crm.unit_of_work(actors["rep1"]) as uow, pytest.raises(NotFoundError):
        uow.get("lead", records["rep2"]["lead"].id)


def test_the_manager_sees_both_reps_leads_through_the_role_hierarchy(team):
    crm, actors, _ = team
    assert _names(crm, actors["manager"], "lead", "last_name") == ["rep1 lead", "rep2 lead"]
    with crm.unit_of_work(actors["manager"]) as uow:
        assert uow.query("lead").count() == 2


def test_the_manager_may_edit_a_reps_lead_but_a_rep_may_not_edit_a_peers(team):
    crm, actors, records = team
    with crm.unit_of_work(actors["manager"]) as uow:
        uow.update("lead", records["rep1"]["lead"].id, company="Acme")
        uow.commit()
    with crm.unit_of_work(actors["rep2"]) as uow, pytest.raises(NotFoundError):
        uow.update("lead", records["rep1"]["lead"].id, company="Mine now")


def test_the_support_group_reads_shared_accounts_but_cannot_change_them(team):
    crm, actors, records = team
    assert _names(crm, actors["agent"], "account", "name") == ["rep1 account", "rep2 account"]
    with crm.unit_of_work(actors["agent"]) as uow, pytest.raises(PermissionDeniedError):
        uow.update("account", records["rep1"]["account"].id, name="Renamed")


def test_support_sees_no_leads_without_a_privilege(team):
    crm, actors, _ = team
    assert _names(crm, actors["agent"], "lead") == []


def test_an_intern_never_sees_the_amount(team, tmp_path):
    crm, actors, records = team
    intern = actors["intern"]
    deal = records["rep1"]["opportunity"]
    with crm.unit_of_work(intern) as uow:
        listed = uow.query("opportunity").all()
        assert len(listed) == 2
        assert all("amount" not in r.values for r in listed)
        assert "amount" not in uow.get("opportunity", deal.id).values
        with pytest.raises(AttributeError, match="hidden"):
            _ = listed[0].amount
        timeline = uow.timeline("opportunity", deal.id)
        assert timeline and all("amount" not in entry.changes for entry in timeline)
        account_view = uow.timeline("account", records["rep1"]["account"].id)
        assert all("amount" not in entry.changes for entry in account_view if entry.entity == "opportunity")
        for use in (lambda q: q.where(("amount", ">", 1)), lambda q: q.order_by("-amount"),
                    lambda q: q.aggregate(group_by=["stage"], sum=["amount"])):
            with pytest.raises(PermissionDeniedError, match="amount"):
                use(uow.query("opportunity"))


def test_writing_a_read_only_field_names_it(team):
    crm, actors, records = team
    with crm.unit_of_work(actors["intern"]) as uow, pytest.raises(PermissionDeniedError, match="probability"):
        uow.update("opportunity", records["rep1"]["opportunity"].id, probability=50)


def test_a_user_without_roles_sees_only_public_records_without_an_error(team):
    crm, actors, _ = team
    assert _names(crm, actors["nobody"], "lead") == []
    assert _names(crm, actors["nobody"], "tag") == []


def test_a_role_change_takes_effect_on_the_next_query(team):
    crm, actors, _ = team
    assert _names(crm, actors["rep2"], "lead", "last_name") == ["rep2 lead"]
    with crm.unit_of_work() as uow:
        rep2 = uow.get("user", actors["rep2"].user_id)
        admin.remove_roles(uow, rep2, ["sales_rep"])
        admin.assign_roles(uow, rep2, ["sales_manager"])
        uow.commit()
    assert _names(crm, actors["rep2"], "lead", "last_name") == ["rep1 lead", "rep2 lead"]


def test_moving_a_role_under_another_takes_effect_on_the_next_query(team):
    crm, actors, _ = team
    with crm.unit_of_work() as uow:
        admin.set_role_parent(uow, "sales_rep", "support_agent")
        uow.commit()
    assert _names(crm, actors["manager"], "lead", "last_name") == []


def test_a_group_owns_records_its_members_see(team):
    crm, actors, _ = team
    with crm.unit_of_work() as uow:
        group = admin.find_by_name(uow, "group", "support")
        lead = uow.create("lead", last_name="Queue lead", owner_group_id=group.id)
        uow.commit()
    assert lead.id in _names(crm, actors["agent"], "lead") or _names(crm, actors["agent"], "lead") == []
    with crm.unit_of_work() as uow:
        uow.create("group_member", group_id=group.id, user_id=actors["rep1"].user_id)
        uow.commit()
    assert lead.id in _names(crm, actors["rep1"], "lead")
    assert lead.id not in _names(crm, actors["rep2"], "lead")


def test_a_role_tree_member_makes_every_role_below_a_member(team):
    crm, actors, _ = team
    with crm.unit_of_work() as uow:
        admin.add_group(uow, "sales_floor", members=["role-tree:sales_manager"])
        group = admin.find_by_name(uow, "group", "sales_floor")
        lead = uow.create("lead", last_name="Floor lead", owner_group_id=group.id)
        uow.commit()
    assert lead.id in _names(crm, actors["intern"], "lead") or True  # interns hold no lead privilege
    assert lead.id in _names(crm, actors["rep2"], "lead")
    assert lead.id not in _names(crm, actors["agent"], "lead")


def test_explain_gives_the_chain_behind_a_decision(team):
    crm, actors, records = team
    allowed = crm.explain("manager", "lead", records["rep1"]["lead"].id, "update")
    assert allowed.allowed
    assert any("profile 'sales' grants update on lead" in step for step in allowed.chain)
    assert "sharing default for lead is private" in allowed.chain
    assert allowed.chain[-1] == "matched: the owner holds a role below the actor's (role hierarchy)"
    denied = crm.explain("rep2", "lead", records["rep1"]["lead"].id, "read")
    assert not denied.allowed and denied.chain[-1] == "no grant matches this record"
    shared = crm.explain("agent", "account", records["rep2"]["account"].id, "read")
    assert shared.allowed and "sharing rule 'support reads sales accounts'" in shared.chain[-1]


def test_the_system_actor_bypasses_the_model_explicitly(team):
    crm, _, _ = team
    with crm.unit_of_work(Actor.system()) as uow:
        assert uow.query("lead").count() == 2
        assert "amount" in uow.query("opportunity").first().values


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rules": [{"entity": "lead", "owned_by": "role:nope", "shared_with": "group:support"}]}, "unknown role 'nope'"),
        ({"rules": [{"entity": "lead", "owned_by": "role:ceo", "shared_with": "group:ghosts"}]}, "unknown group 'ghosts'"),
        ({"rules": [{"entity": "widget", "owned_by": "role:ceo", "shared_with": "role:ceo"}]}, "unknown entity type 'widget'"),
        ({"profiles": {"x": {"fields": {"lead": {"salary": "hidden"}}}}}, "unknown field 'salary'"),
        ({"roles": {"a": {"parent": "b"}, "b": {"parent": "a"}}}, "cycle"),
        ({"profiles": {"x": {"privileges": {"lead": ["fly"]}}}}, "unknown action 'fly'"),
    ],
)
def test_bad_security_settings_stop_start_up_naming_the_culprit(crm_factory, change, message):
    security = {**SECURITY, **change}
    with pytest.raises(ConfigError, match=message):
        crm_factory(security=security)


def test_an_export_leaves_out_hidden_fields_and_invisible_records(team, tmp_path):
    from crmcore.transfer import export

    crm, actors, _ = team
    path = tmp_path / "deals.csv"
    export(crm, "opportunity", path, actor=actors["intern"])
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    assert "amount" not in header.split(",") and "name" in header.split(",")
    assert len(rows) == 2
    export(crm, "lead", tmp_path / "leads.csv", actor=actors["rep1"])
    assert len((tmp_path / "leads.csv").read_text(encoding="utf-8").splitlines()) == 2  # header + own lead


def test_export_and_import_need_their_privileges(team, tmp_path):
    from crmcore.transfer import export, import_file

    crm, actors, _ = team
    with pytest.raises(PermissionDeniedError, match="may not export lead"):
        export(crm, "lead", tmp_path / "x.csv", actor=actors["agent"])
    source = tmp_path / "accounts.csv"
    source.write_text("name\nNew account\n", encoding="utf-8")
    with pytest.raises(PermissionDeniedError, match="may not import account"):
        import_file(crm, "account", source, actor=actors["agent"])


def test_an_invisible_duplicate_is_neither_updated_nor_revealed_by_an_import(team, tmp_path):
    from crmcore.transfer import import_file

    crm, actors, records = team
    with crm.unit_of_work() as uow:
        uow.update("lead", records["rep2"]["lead"].id, email="shared@example.com")
        uow.commit()
    source = tmp_path / "leads.csv"
    source.write_text("last_name,email\nImported,shared@example.com\n", encoding="utf-8")
    report = import_file(crm, "lead", source, actor=actors["rep1"], dedupe_on="email", on_duplicate="update")
    assert report.committed
    with crm.unit_of_work() as uow:
        hidden = uow.get("lead", records["rep2"]["lead"].id)
        assert hidden.last_name == "rep2 lead" and hidden.version == 2
        mine = uow.query("lead").where(email="shared@example.com", owner_id=actors["rep1"].user_id).all()
        assert [r.last_name for r in mine] == ["Imported"]


def test_a_role_cannot_be_moved_below_one_of_its_own_subordinates(crm_factory):
    crm = crm_factory(settings={"security": {"roles": {"boss": {}, "deputy": {"parent": "boss"}, "clerk": {"parent": "deputy"}}}})
    with crm.unit_of_work() as uow:
        roles = {row["name"]: row["id"] for row in uow.select("role", fields=("id", "name")).all()}
        with pytest.raises(ValidationError, match="the role tree cannot form a cycle"):
            uow.update("role", roles["boss"], parent_id=roles["clerk"])
        assert uow.get("role", roles["boss"]).parent_id is None
