"""Security at the edges: ``--as``, open mode, what ``crm init`` writes, the profile of users
without a role, ``crm access explain`` and imports keeping ids, on the database under test."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore.errors import ConfigError, PermissionDeniedError
from crmcore.security import admin
from crmcore.security.model import OPEN_MODE_NOTICE
from crmcore.settings import load_settings
from crmcore.testing import crm_fails, crm_ok, run_crm
from crmcore.transfer import import_file

pytestmark = pytest.mark.usefixtures("crm_workdir")


@pytest.fixture
def deployment(crm_factory: Any) -> str:
    """A deployment set up by ``crm init`` (./crm.toml) with an administrator (root), a standard
    user without a role (ann) and one holding the role ``user`` (bob)."""
    out = crm_ok("--db", crm_factory.database_url(file=True), "init")
    assert "role administrator created" in out and "role user created" in out
    crm_ok("user", "add", "root", "--role", "administrator")
    assert "ann created (id 2) without roles (profile 'standard')" in crm_ok("user", "add", "ann")
    crm_ok("user", "add", "bob", "--role", "user")
    return "crm.toml"


@pytest.fixture
def open_db(crm_factory: Any) -> str:
    """The URL of a database with tables and no [security]: open mode."""
    url: str = crm_factory.database_url(file=True)
    crm_factory(database=url)
    return url


def lead_count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM crm_lead")).scalar_one())
    finally:
        engine.dispose()


# -- --as ----------------------------------------------------------------------------------------


def test_as_an_unknown_user_is_one_line_naming_the_user_and_what_to_do(deployment: str) -> None:
    assert crm_fails("--as", "ghost", "list", "lead") == (
        "error: no user named 'ghost'; add one with 'crm user add ghost' ('crm user list' lists the users)"
    )


def test_as_a_deactivated_user_is_refused_and_debug_shows_the_traceback(deployment: str) -> None:
    crm_ok("update", "user", "2", "active=false")
    line = crm_fails("--as", "ann", "create", "lead", "last_name=Sneaky")
    assert line == ("error: user 'ann' is deactivated and cannot act; act as an active user, or reactivate it "
                    "with 'crm update user 2 active=true'")
    debug = run_crm("--debug", "--as", "ann", "list", "lead")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "PermissionDeniedError" in debug.stderr
    crm_ok("update", "user", "2", "active=true")
    assert crm_ok("--as", "ann", "create", "lead", "last_name=Back").strip() == "1"


def test_a_deactivated_user_cannot_act_from_python_either(crm, make_user) -> None:
    ann = make_user(crm, "ann", active=False)
    bob = make_user(crm, "bob")
    refusal = re.escape(f"user 'ann' is deactivated and cannot act; act as an active user, or reactivate it "
                        f"with 'crm update user {ann.user_id} active=true'")

    with pytest.raises(PermissionDeniedError, match=f"^{refusal}$"):
        crm.actor("ann")
    with pytest.raises(PermissionDeniedError, match=f"^{refusal}$"):
        crm.unit_of_work("ann")
    with pytest.raises(PermissionDeniedError, match=f"^{refusal}$"):
        admin.acting_user(crm, "ann")  # what --as uses: the same refusal
    assert crm.actor("bob") == bob
    with crm.unit_of_work("bob") as uow:
        assert uow.actor == bob
    with crm.unit_of_work() as uow:
        assert uow.actor.is_system
        lead = uow.create("lead", last_name="Explained", owner_id=bob.user_id)
        uow.commit()
    assert crm.explain("ann", "lead", lead.id).chain  # explaining a deactivated user's access is not acting as it

    with crm.unit_of_work() as uow:
        uow.update("user", ann.user_id, active=True)
        uow.commit()
    assert crm.actor("ann") == ann


# -- open mode -----------------------------------------------------------------------------------


def test_open_mode_is_a_property_of_settings_and_of_the_model(crm_factory: Any) -> None:
    assert load_settings({}).open_security
    assert not load_settings({"security": {}}).open_security
    assert crm_factory(create_schema=False).access.model.open
    empty = crm_factory(security={}, create_schema=False)  # an empty section turns open mode off
    assert not empty.access.model.open and empty.access.model.no_role_profile == "read_only"


def test_user_add_and_access_explain_state_open_mode(open_db: str) -> None:
    added = run_crm("--db", open_db, "user", "add", "ann")
    assert added.exit_code == 0
    assert added.stderr == f"note: {OPEN_MODE_NOTICE}\n"
    assert "without roles (open mode: may do everything)" in added.stdout
    crm_ok("--db", open_db, "create", "lead", "last_name=Open")
    explained = run_crm("--db", open_db, "--as", "ann", "access", "explain", "ann", "lead", "1", "--json")
    assert explained.stderr == f"note: {OPEN_MODE_NOTICE}\n"
    assert json.loads(explained.stdout)["open_mode"] is True
    assert "add a [security] section to turn it off" in OPEN_MODE_NOTICE and "'crm init' writes one" in OPEN_MODE_NOTICE


def test_a_configured_deployment_says_nothing_of_open_mode(deployment: str) -> None:
    added = run_crm("user", "add", "cy")
    assert added.exit_code == 0 and added.stderr == ""
    crm_ok("create", "lead", "last_name=X")
    explained = run_crm("access", "explain", "cy", "lead", "1", "--json")
    assert explained.stderr == "" and json.loads(explained.stdout)["open_mode"] is False


# -- what crm init writes, and the profile of users without a role --------------------------------


def test_init_sets_up_administrators_standard_users_and_private_leads(deployment: str) -> None:
    ann_lead = crm_ok("--as", "ann", "create", "lead", "last_name=Anns").strip()
    crm_ok("--as", "bob", "create", "lead", "last_name=Bobs")
    assert [r["last_name"] for r in json.loads(crm_ok("--as", "bob", "list", "lead", "--json"))] == ["Bobs"]
    assert len(json.loads(crm_ok("--as", "root", "list", "lead", "--json"))) == 2
    account = crm_ok("--as", "ann", "create", "account", "name=Acme").strip()
    assert json.loads(crm_ok("--as", "bob", "show", "account", account, "--json"))["name"] == "Acme"  # public_read
    assert crm_fails("--as", "bob", "update", "account", account, "name=Mine").startswith("error: bob may not update account")
    assert crm_ok("--as", "root", "update", "account", account, "name=Acme Ltd")
    # a standard user cannot give itself a role, nor change a user
    refused = crm_fails("--as", "bob", "create", "role_assignment", "user_id=3", "role_id=1")
    assert refused.startswith("error: bob may not create role_assignment records")
    assert crm_fails("--as", "ann", "update", "user", "3", "active=false").startswith("error: ann may not update user records")
    assert crm_fails("--as", "bob", "show", "lead", ann_lead) == f"error: lead {ann_lead} not found"


def test_init_then_demo_still_tells_its_story(deployment: str) -> None:
    result = run_crm("demo", "--db", "demo.db")
    assert result.exit_code == 0, result.output
    assert "Explore it:" in result.stdout


def test_users_without_a_role_get_read_only_unless_no_role_profile_names_another(
    crm_factory: Any, make_user: Any, make_record: Any
) -> None:
    crm = crm_factory(security={"entities": {"lead": {"sharing": "public_read"}}})
    guest = make_user(crm, "guest")
    make_record(crm, "lead", last_name="Public")
    with crm.unit_of_work(guest) as uow:
        assert [r.last_name for r in uow.query("lead")] == ["Public"]
        assert [p.name for p in uow.access.profiles] == ["read_only"]
        with pytest.raises(PermissionDeniedError):
            uow.create("lead", last_name="Nope")
    standard = crm_factory(security={"no_role_profile": "standard"})
    walker = make_user(standard, "walker")
    with standard.unit_of_work(walker) as uow:
        assert uow.create("lead", last_name="Mine").owner_id == walker.user_id
        with pytest.raises(PermissionDeniedError, match="may not create role records"):
            uow.create("role", name="boss")


def test_no_role_profile_must_name_a_profile(crm_factory: Any) -> None:
    with pytest.raises(ConfigError, match="security.no_role_profile must be text, got None"):
        crm_factory(security={"no_role_profile": None}, create_schema=False)
    with pytest.raises(ConfigError, match="security.no_role_profile: unknown profile 'boss'"):
        crm_factory(security={"no_role_profile": "boss"}, create_schema=False)


# -- crm access explain --------------------------------------------------------------------------


def test_a_user_explains_its_own_access_to_records_it_reads(deployment: str) -> None:
    lead = crm_ok("--as", "bob", "create", "lead", "last_name=Bobs").strip()
    out = crm_ok("--as", "bob", "access", "explain", "bob", "lead", lead, "--action", "delete")
    assert out.splitlines()[0] == f"bob may delete lead {lead}"
    assert "matched: the actor owns the record" in out


def test_explaining_another_user_needs_security_explain(deployment: str) -> None:
    lead = crm_ok("--as", "bob", "create", "lead", "last_name=Bobs").strip()
    line = crm_fails("--as", "ann", "access", "explain", "bob", "lead", lead)
    assert line == (
        "error: ann may not explain the access of 'bob' to lead records: that needs the security.explain "
        "privilege (an administrator's); explain your own access with 'crm --as ann access explain ann lead ID'"
    )
    assert crm_fails("--as", "ann", "access", "explain", "nobody", "lead", lead) == line.replace("'bob'", "'nobody'")
    assert crm_ok("--as", "root", "access", "explain", "ann", "lead", lead).splitlines()[0] == f"ann may not read lead {lead}"
    assert crm_ok("access", "explain", "bob", "lead", lead).splitlines()[0] == f"bob may read lead {lead}"


def test_a_record_the_caller_cannot_read_is_explained_like_a_missing_one(deployment: str) -> None:
    hidden = crm_ok("--as", "bob", "create", "lead", "last_name=Bobs").strip()
    missing = str(int(hidden) + 100)
    assert crm_fails("--as", "ann", "access", "explain", "ann", "lead", hidden) == f"error: lead {hidden} not found"
    assert crm_fails("--as", "ann", "access", "explain", "ann", "lead", missing) == f"error: lead {missing} not found"
    assert crm_fails("--as", "ann", "show", "lead", hidden) == f"error: lead {hidden} not found"
    decision = json.loads(crm_ok("--as", "root", "access", "explain", "root", "lead", hidden, "--json"))
    assert decision["allowed"] is True
    assert crm_fails("--as", "root", "access", "explain", "root", "lead", missing) == f"error: lead {missing} not found"


# -- keeping ids on import -----------------------------------------------------------------------


def test_keep_ids_is_refused_to_others_alike_for_invisible_missing_and_unread_files(deployment: str) -> None:
    hidden = crm_ok("--as", "bob", "create", "lead", "last_name=Bobs").strip()
    Path("hidden.csv").write_text(f"id,last_name\n{hidden},Taken\n")
    Path("missing.csv").write_text("id,last_name\n500,Free\n")
    refusal = (
        "error: ann may not keep ids when importing lead records: that is for the system actor and administrators "
        "(the security.keep_ids privilege); import without --keep-ids (keep_ids=) and the records get new ids"
    )
    assert crm_fails("--as", "ann", "import", "lead", "hidden.csv", "--keep-ids") == refusal
    assert crm_fails("--as", "ann", "import", "lead", "missing.csv", "--keep-ids") == refusal
    assert crm_fails("--as", "ann", "import", "lead", "absent.csv", "--keep-ids") == refusal  # before the file is read
    url = load_settings(deployment).database
    assert lead_count(url) == 1
    assert "1 created" in crm_ok("--as", "root", "import", "lead", "missing.csv", "--keep-ids")
    Path("later.csv").write_text("id,last_name\n600,Later\n")
    assert "1 created" in crm_ok("import", "lead", "later.csv", "--keep-ids")  # the system actor
    assert lead_count(url) == 3


def test_keep_ids_from_python_needs_the_privilege(crm_factory: Any, tmp_path: Path) -> None:
    security = {
        "profiles": {"admin": {"privileges": {"*": ["all", "security.keep_ids"]}}, "clerk": {"privileges": {"lead": "all"}}},
        "roles": {"admin": {"profiles": ["admin"]}, "clerk": {"profiles": ["clerk"]}},
    }
    crm = crm_factory(security=security)
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "clerk", roles=["clerk"])
        admin.add_user(uow, "boss", roles=["admin"])
        uow.commit()
    clerk, boss = crm.actor("clerk"), crm.actor("boss")
    path = tmp_path / "ids.csv"
    path.write_text("id,last_name\n70,Kept\n")
    with pytest.raises(PermissionDeniedError, match="clerk may not keep ids when importing lead records"):
        import_file(crm, "lead", path, actor=clerk, keep_ids=True)
    assert import_file(crm, "lead", path, actor=clerk).created == 1  # new ids are fine
    assert import_file(crm, "lead", path, actor=boss, keep_ids=True).created == 1
    with crm.unit_of_work() as uow:
        assert sorted(r.id for r in uow.query("lead")) == [1, 70]


def test_dedupe_on_id_answers_alike_for_invisible_and_missing_records(deployment: str) -> None:
    hidden = crm_ok("--as", "bob", "create", "lead", "last_name=Bobs").strip()
    Path("hidden.csv").write_text(f"id,last_name\n{hidden},Same\n")
    Path("missing.csv").write_text("id,last_name\n500,Same\n")
    args = ("--dedupe-on", "id", "--on-duplicate", "update")
    one = run_crm("--as", "ann", "import", "lead", "hidden.csv", *args)
    other = run_crm("--as", "ann", "import", "lead", "missing.csv", *args)
    assert (one.exit_code, one.stderr) == (other.exit_code, other.stderr) == (0, "")
    assert one.stdout.replace("hidden", "missing") == other.stdout
    assert json.loads(crm_ok("show", "lead", hidden, "--json"))["last_name"] == "Bobs"
