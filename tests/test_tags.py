"""Tags: shared and private taggings, the tag cloud, and tags in the query language.

Two reps with private accounts, a reader who may only read them (a sharing rule), and the
system actor. Shared taggings are seen by every reader of a record; a user's private ones by
that user alone; counts and the cloud cover only records the actor may read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import Actor, PermissionDeniedError, ValidationError
from crmcore.cli import main
from crmcore.records import Record
from crmcore.security import admin
from crmcore.storage import TagWeight

SECURITY = {
    "profiles": {
        "sales": {"privileges": {"account": "all", "contact": "all", "tag": ["create", "read"]}},
        "reader": {"privileges": {"account": ["read"], "tag": ["create", "read"]}},
    },
    "roles": {"rep_a": {"profiles": ["sales"]}, "rep_b": {"profiles": ["sales"]}, "reader": {"profiles": ["reader"]}},
    "entities": {"account": {"sharing": "private"}},
    "rules": [{"name": "readers read rep1's accounts", "entity": "account", "owned_by": "role:rep_a",
               "shared_with": "role:reader", "access": "read"}],
}


@pytest.fixture
def world(crm_factory: Any) -> tuple[Any, dict[str, Actor], dict[str, Record]]:
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {name: admin.add_user(uow, name, roles=roles)
                 for name, roles in {"rep1": ["rep_a"], "rep2": ["rep_b"], "reader": ["reader"]}.items()}
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    accounts: dict[str, Record] = {}
    for rep in ("rep1", "rep2"):
        with crm.unit_of_work(actors[rep]) as uow:
            for n in range(3):
                accounts[f"{rep}-{n}"] = uow.create("account", name=f"{rep} account {n}")
            uow.commit()
    return crm, actors, accounts


def test_a_private_tagging_is_seen_by_its_user_alone(world: Any) -> None:
    crm, actors, accounts = world
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.tag(accounts["rep1-0"], "vip")
        uow.tag(accounts["rep1-0"], "golf", private=True)
        assert uow.tags(accounts["rep1-0"]) == ["golf", "vip"]
        uow.commit()
    with crm.unit_of_work(actors["reader"]) as uow:
        assert uow.tags(accounts["rep1-0"]) == ["vip"]
        assert uow.tag_counts("account") == [("vip", 1)]
        assert uow.query("account").where(("tags", "=", "golf")).all() == []
    with crm.unit_of_work() as uow:  # the system actor sees every tagging
        assert uow.tags(accounts["rep1-0"]) == ["golf", "vip"]


def test_a_private_tag_needs_read_access_and_a_shared_one_update_access(world: Any) -> None:
    crm, actors, accounts = world
    with crm.unit_of_work(actors["reader"]) as uow:
        with pytest.raises(PermissionDeniedError):
            uow.tag(accounts["rep1-1"], "shared-by-reader")
        uow.tag(accounts["rep1-1"], "to-call", private=True)
        assert uow.tags(accounts["rep1-1"]) == ["to-call"]
        uow.commit()
    with crm.unit_of_work(actors["rep1"]) as uow:
        assert uow.tags(accounts["rep1-1"]) == []


def test_private_taggings_write_no_audit_entry_and_untag_removes_only_ones_own(world: Any) -> None:
    crm, actors, accounts = world
    record = accounts["rep1-2"]
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.tag(record, "hot")
        uow.tag(record, "hot", private=True)
        uow.commit()
    with crm.unit_of_work(actors["rep1"]) as uow:
        actions = [entry.action for entry in uow.history("account", record.id)]
        assert actions.count("tagged") == 1
        uow.untag(record, "hot", private=True)
        assert uow.tags(record) == ["hot"]  # the shared tagging stays
        uow.untag(record, "hot")
        assert uow.tags(record) == []
        uow.commit()


def test_the_system_actors_tags_are_shared(world: Any) -> None:
    crm, _, accounts = world
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="system actor's tags are shared"):
        uow.tag(accounts["rep1-0"], "mine", private=True)


def test_the_private_tags_setting_makes_a_users_tags_private_by_default(crm_factory: Any) -> None:
    crm = crm_factory(plugin_settings={"core": {"private_tags": True}})
    with crm.unit_of_work() as uow:
        one = admin.add_user(uow, "one")
        two = admin.add_user(uow, "two")
        account = uow.create("account", name="Shared account")
        uow.tag(account, "by-system")  # the system's tags stay shared
        uow.commit()
    with crm.unit_of_work(Actor(one.id, "one")) as uow:
        uow.tag(account, "mine")
        assert uow.tags(account) == ["by-system", "mine"]
        uow.commit()
    with crm.unit_of_work(Actor(two.id, "two")) as uow:
        assert uow.tags(account) == ["by-system"]
        uow.tag(account, "shared-anyway", private=False)
        uow.commit()
    with crm.unit_of_work(Actor(one.id, "one")) as uow:
        assert uow.tags(account) == ["by-system", "mine", "shared-anyway"]


def test_the_tag_cloud_weighs_tags_over_the_records_the_actor_may_read(world: Any) -> None:
    crm, actors, accounts = world
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.tag_many([accounts[f"rep1-{n}"] for n in range(3)], "customer")
        uow.tag(accounts["rep1-0"], "vip")
        uow.commit()
    with crm.unit_of_work(actors["rep2"]) as uow:
        uow.tag_many([accounts[f"rep2-{n}"] for n in range(3)], "customer", "prospect")
        uow.commit()
    with crm.unit_of_work(actors["rep1"]) as uow:
        assert uow.tag_cloud("account") == [TagWeight("customer", 3, 5), TagWeight("vip", 1, 1)]
        assert uow.tag_cloud(top=1) == [TagWeight("customer", 3, 5)]
    with crm.unit_of_work() as uow:
        cloud = uow.tag_cloud()
        assert [(t.name, t.count) for t in cloud] == [("customer", 6), ("prospect", 3), ("vip", 1)]
        assert [t.weight for t in cloud] == [5, 3, 1]
        with pytest.raises(ValidationError, match="top takes a whole number"):
            uow.tag_cloud(top=0)


def test_tags_filter_queries_as_a_pseudo_field(world: Any) -> None:
    crm, actors, accounts = world
    with crm.unit_of_work(actors["rep1"]) as uow:
        uow.tag(accounts["rep1-0"], "vip")
        uow.tag(accounts["rep1-1"], "partner")
        uow.tag(accounts["rep1-1"], "golf", private=True)
        uow.commit()

    def names(*condition: Any) -> list[str]:
        return [r.values["name"] for r in uow.query("account").where(*condition).order_by("name")]

    with crm.unit_of_work(actors["rep1"]) as uow:
        assert names(("tags", "=", "vip")) == ["rep1 account 0"]
        assert names(("tags", "in", ["vip", "partner"])) == ["rep1 account 0", "rep1 account 1"]
        assert names("tags in vip,golf") == ["rep1 account 0", "rep1 account 1"]
        assert names(("tags", "!=", "vip")) == ["rep1 account 1", "rep1 account 2"]
        assert names(("tags", "is null")) == ["rep1 account 2"]
        assert names("tags=golf") == ["rep1 account 1"]
        assert [r.values["name"] for r in uow.tagged("account", "partner")] == ["rep1 account 1"]
        assert uow.select("account", fields=("name",)).where(("tags", "is not null")).count() == 2
        with pytest.raises(ValidationError, match="does not apply to tags"):
            names(("tags", ">", "vip"))
    with crm.unit_of_work(actors["reader"]) as uow:  # rep1's private tag is not the reader's
        assert names("tags=golf") == []
        assert names(("tags", "=", "partner")) == ["rep1 account 1"]
        assert names(("tags", "is null")) == ["rep1 account 2"]


# -- crm tags and crm list --tag -------------------------------------------------------------------

CLI_SETTINGS = """
[crm]
database = "{url}"

[security.profiles.sales]
privileges = {{ account = "all", tag = ["create", "read"] }}

[security.roles]
rep = {{ profiles = ["sales"] }}
"""


def test_crm_tags_adds_lists_removes_filters_and_draws_the_cloud(
    crm_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    config = tmp_path / "crm.toml"
    config.write_text(CLI_SETTINGS.format(url=crm_factory.database_url(file=True).replace("\\", "\\\\")))

    def crm(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.stdout if code == 0 else result.stderr

    crm("db", "upgrade")
    crm("user", "add", "ann", "--role", "rep")
    for name in ("Acme", "Globex", "Initech"):
        crm("--as", "ann", "create", "account", f"name={name}")
    assert crm("--as", "ann", "tags", "add", "account", "1", "vip", "customer") == "account 1: customer, vip\n"
    crm("--as", "ann", "tags", "add", "account", "2", "customer")
    assert crm("--as", "ann", "tags", "add", "account", "3", "golf", "--private") == "account 3: golf\n"
    assert crm("tags", "list", "account", "3") == "golf\n"  # the system actor sees every tag
    assert crm("--as", "ann", "tags", "remove", "account", "1", "vip") == "account 1: customer\n"
    assert json.loads(crm("--as", "ann", "tags", "list", "account", "1", "--json")) == ["customer"]
    listed = json.loads(crm("--as", "ann", "list", "account", "--tag", "customer", "--json"))
    assert [r["name"] for r in listed] == ["Acme", "Globex"]
    assert crm("--as", "ann", "tags", "cloud", "--entity", "account").splitlines() == [
        "customer        2  *****",
        "golf            1  *",
    ]
    chart = tmp_path / "cloud.png"
    cloud = json.loads(crm("--as", "ann", "tags", "cloud", "--top", "1", "--json", "--chart", str(chart)))
    assert cloud == [{"name": "customer", "count": 2, "weight": 5}]
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "account 9 not found" in crm("--as", "ann", "tags", "add", "account", "9", "x", code=1)
