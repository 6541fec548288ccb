"""``crm user``, ``crm group``, ``crm access explain``, ``--as`` and ``owner=`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmcore.testing import crm_ok, run_crm

SETTINGS = """
[crm]
database = "{url}"

[security.profiles.sales]
privileges = {{ lead = "all", account = "all" }}

[security.roles]
manager = {{ profiles = ["sales"] }}
rep = {{ parent = "manager", profiles = ["sales"] }}

[security.groups.support]
description = "Support agents"

[security.entities.lead]
sharing = "private"
"""


@pytest.fixture
def config(crm_factory: Any, crm_workdir: Path) -> str:
    url = crm_factory.database_url(file=True)
    path = crm_workdir / "crm.toml"
    path.write_text(SETTINGS.format(url=url.replace("\\", "\\\\")))
    run_crm("--config", str(path), "db", "upgrade")
    return str(path)


def test_users_get_roles_and_groups_and_are_listed(config: str) -> None:
    assert "user boss created" in crm_ok("--config", config, "user", "add", "boss", "--role", "manager")
    crm_ok("--config", config, "user", "add", "ann", "--role", "rep", "--group", "support")
    listed = json.loads(crm_ok("--config", config, "user", "list", "--json"))
    assert [(u["username"], u["roles"], u["groups"]) for u in listed] == [
        ("ann", ["rep"], ["support"]), ("boss", ["manager"], []),
    ]
    assert crm_ok("--config", config, "user", "list").splitlines()[0] == "ann   roles: rep  groups: support"


def test_a_user_without_roles_is_told_what_it_sees(config: str) -> None:
    assert "without roles (sees only public records)" in crm_ok("--config", config, "user", "add", "guest")


def test_records_created_with_as_are_owned_by_that_user_unless_owner_is_given(config: str) -> None:
    crm_ok("--config", config, "user", "add", "ann", "--role", "rep")
    crm_ok("--config", config, "user", "add", "bob", "--role", "rep")
    mine = crm_ok("--config", config, "--as", "ann", "create", "lead", "last_name=Mine").strip()
    given = crm_ok("--config", config, "--as", "ann", "create", "lead", "last_name=Bobs", "owner=bob").strip()
    grouped = crm_ok("--config", config, "create", "lead", "last_name=Shared", "owner=group:support").strip()
    shown = {i: json.loads(crm_ok("--config", config, "show", "lead", i, "--json")) for i in (mine, given, grouped)}
    users = {u["username"]: u["id"] for u in json.loads(crm_ok("--config", config, "user", "list", "--json"))}
    assert shown[mine]["owner_id"] == users["ann"]
    assert shown[given]["owner_id"] == users["bob"]
    assert shown[grouped]["owner_group_id"] is not None


def test_as_a_rep_list_shows_only_own_leads(config: str) -> None:
    crm_ok("--config", config, "user", "add", "ann", "--role", "rep")
    crm_ok("--config", config, "user", "add", "bob", "--role", "rep")
    crm_ok("--config", config, "--as", "ann", "create", "lead", "last_name=Annslead")
    crm_ok("--config", config, "--as", "bob", "create", "lead", "last_name=Bobslead")
    listed = json.loads(crm_ok("--config", config, "--as", "ann", "list", "lead", "--json"))
    assert [r["last_name"] for r in listed] == ["Annslead"]


def test_groups_take_users_roles_and_role_trees(config: str) -> None:
    crm_ok("--config", config, "user", "add", "ann", "--role", "rep")
    out = crm_ok("--config", config, "group", "add", "emea", "--member", "user:ann", "--member", "role-tree:manager")
    assert out.strip() == "group emea created; members: user:ann, role-tree:manager"
    out = crm_ok("--config", config, "group", "add", "emea", "--member", "role:rep")
    assert out.strip() == "group emea updated; members: user:ann, role-tree:manager, role:rep"


def test_a_malformed_member_is_one_clear_error(config: str) -> None:
    result = run_crm("--config", config, "group", "add", "emea", "--member", "ann")
    assert result.exit_code != 0
    assert "expected 'user:NAME', 'role:NAME' or 'role-tree:NAME', got 'ann'" in result.stderr
    assert "Traceback" not in result.output


def test_access_explain_names_the_rules_behind_a_decision(config: str) -> None:
    crm_ok("--config", config, "user", "add", "boss", "--role", "manager")
    crm_ok("--config", config, "user", "add", "ann", "--role", "rep")
    crm_ok("--config", config, "user", "add", "bob", "--role", "rep")
    lead = crm_ok("--config", config, "--as", "ann", "create", "lead", "last_name=Annslead").strip()
    out = crm_ok("--config", config, "access", "explain", "boss", "lead", lead, "--action", "update")
    assert out.splitlines()[0] == f"boss may update lead {lead}"
    assert "matched: the owner holds a role below the actor's (role hierarchy)" in out
    out = crm_ok("--config", config, "access", "explain", "bob", "lead", lead)
    assert out.splitlines()[0] == f"bob may not read lead {lead}"
    decision = json.loads(crm_ok("--config", config, "access", "explain", "bob", "lead", lead, "--json"))
    assert decision["allowed"] is False and decision["chain"][-1] == "no grant matches this record"


def test_role_changes_show_on_the_next_command(config: str) -> None:
    crm_ok("--config", config, "user", "add", "ann", "--role", "rep")
    crm_ok("--config", config, "user", "add", "bob", "--role", "rep")
    crm_ok("--config", config, "--as", "bob", "create", "lead", "last_name=Bobslead")
    assert json.loads(crm_ok("--config", config, "--as", "ann", "list", "lead", "--json")) == []
    assert "ann holds: manager" in crm_ok("--config", config, "user", "roles", "ann", "--add", "manager", "--remove", "rep")
    assert [r["last_name"] for r in json.loads(crm_ok("--config", config, "--as", "ann", "list", "lead", "--json"))] == ["Bobslead"]
