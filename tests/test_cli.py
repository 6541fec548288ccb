"""The ``crm`` command line: global options, core commands, plugin commands and errors.

Commands run through click's ``CliRunner`` on a database of the kind under test (an SQLite file,
or an isolated PostgreSQL schema when ``CRM_TEST_DATABASE_URL`` is set).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import click
import pytest

from crmcore import CrmError, PluginInfo, hookimpl
from crmcore.cli import (
    CliState,
    current_actor,
    current_app,
    parse_assignments,
    progress,
    settings_line,
)
from crmcore.testing import crm_fails, crm_ok, run_crm

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


pytestmark = pytest.mark.usefixtures("crm_workdir")


@pytest.fixture
def db(crm_factory: Any) -> str:
    """The URL of a fresh database of the kind under test, its tables created."""
    url: str = crm_factory.database_url(file=True)
    crm_factory(database=url)  # creates the schema; the factory closes the app afterwards
    return url


# -- throwaway plugins ---------------------------------------------------------------------------


@click.group("hello")
def hello_group() -> None:
    """Greetings from a plugin."""


@hello_group.command("greet")
def greet() -> None:
    """Say who acts, on which app."""
    app, actor = current_app(), current_actor()
    click.echo(f"hello from {actor.username}, {len(app.registry.entity_names)} entity types")


@hello_group.command("boom")
def boom() -> None:
    """Fail with an unexpected exception."""
    raise RuntimeError("the flux capacitor is empty")


class HelloPlugin:
    PLUGIN = PluginInfo(name="hello", title="Hello commands", version="1.2.3")

    @hookimpl
    def crm_cli_commands(self) -> list[click.Command]:
        return [hello_group]


class ClashingPlugin:
    PLUGIN = PluginInfo(name="clash", title="Clashing commands", requires=("hello",))

    @hookimpl
    def crm_cli_commands(self) -> list[click.Command]:
        return [click.Group("hello")]


# -- pure helpers --------------------------------------------------------------------------------


def test_assignments_become_texts_and_an_empty_value_empties() -> None:
    assert parse_assignments(["name=Acme", "website=", "note=a=b"]) == {"name": "Acme", "website": "", "note": "a=b"}


def test_an_assignment_without_equals_sign_is_named() -> None:
    with pytest.raises(CrmError, match="malformed argument 'Acme'"):
        parse_assignments(["Acme"])


def test_a_field_given_twice_is_refused() -> None:
    with pytest.raises(CrmError, match="field 'name' is given twice"):
        parse_assignments(["name=a", "name=b"])


def test_settings_line_finds_keys_tables_and_inline_tables(tmp_path: Path) -> None:
    path = tmp_path / "crm.toml"
    path.write_text(
        '# settings\n[crm]\ndatabase = "sqlite://"\nplugins = "x"\n\n[plugins.helpdesk]\nsla_hours = "8"\n'
        '[custom_fields.account]\nloyalty = { type = "choise" }\n'
    )
    assert settings_line(str(path), "crm.plugins") == 4
    assert settings_line(str(path), "plugins.helpdesk") == 6
    assert settings_line(str(path), "plugins.helpdesk.sla_hours") == 7
    assert settings_line(str(path), "custom_fields.account.loyalty.type") == 9
    assert settings_line(str(path), "crm.nothing") == 2  # the table, at least
    assert settings_line(str(tmp_path / "missing.toml"), "crm.plugins") is None


def test_progress_is_silent_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with progress([1, 2, 3], label="counting") as bar:
        assert list(bar) == [1, 2, 3]
    with progress(length=3, label="counting") as bar:
        bar.update(3)
    assert capsys.readouterr() == ("", "")


def test_current_app_outside_a_command_says_so() -> None:
    with pytest.raises(CrmError, match="only inside a running crm command"):
        current_app()


# -- help and commands -------------------------------------------------------------------------


def test_help_lists_the_core_commands_without_touching_a_database() -> None:
    out = crm_ok("--help")
    for name in ("init", "db", "plugins", "create", "show", "update", "delete", "timeline", "demo"):
        assert f"\n  {name} " in out
    assert not Path("crm.db").exists()


def test_help_works_with_broken_settings_and_the_error_comes_when_a_command_runs() -> None:
    Path("crm.toml").write_text("[crm]\nplugins = 'helpdesk'\n")
    assert "  show " in crm_ok("--help")
    assert crm_fails("show", "account", "1") == "error: crm.toml: crm.plugins must be a list, got 'helpdesk' (line 2)"


def test_malformed_toml_names_file_line_and_text() -> None:
    Path("crm.toml").write_text('[crm]\ndatabase = "sqlite:///x.db"\nplugins = ["a" "b"]\n')
    line = crm_fails("show", "account", "1")
    assert line.startswith("error: crm.toml: malformed TOML:")
    assert "line 3" in line and "plugins" in line


def test_an_unknown_settings_key_names_file_key_and_line() -> None:
    Path("s.toml").write_text("[crm]\ncurrency = 'EUR'\ncurrencyy = 'USD'\n")
    line = crm_fails("--config", "s.toml", "show", "account", "1")
    assert "s.toml" in line and "crm.currencyy" in line and "(line 3)" in line


def test_a_missing_settings_file_suggests_crm_init() -> None:
    assert "run 'crm init'" in crm_fails("--config", "nowhere.toml", "show", "account", "1")


def test_an_unknown_plugin_lists_the_installed_ones() -> None:
    Path("crm.toml").write_text("[crm]\nplugins = ['no_such_plugin']\n")
    line = crm_fails("show", "account", "1")
    assert "unknown plugin 'no_such_plugin'" in line and "installed plugins:" in line


def test_an_unreachable_database_is_one_line() -> None:
    line = crm_fails("--db", UNREACHABLE, "show", "account", "1")
    assert line.startswith("error: cannot reach database postgresql+psycopg://postgres@127.0.0.1:1/x")


def test_a_database_without_tables_suggests_db_upgrade(crm_factory: Any) -> None:
    url = crm_factory.database_url(file=True)
    if url.startswith("sqlite"):  # an empty file: a missing one is refused before (test_everyday.py)
        Path(url.removeprefix("sqlite:///")).touch()
    line = crm_fails("--db", url, "show", "account", "1")
    assert line.startswith("error: the database lacks the table crm_account")
    assert "crm_account" in line and "run 'crm db upgrade'" in line
    assert "SELECT" not in line


def test_a_misspelt_command_gets_a_suggestion() -> None:
    result = run_crm("shwo", "account", "1")
    assert result.exit_code == 2
    assert "no such command 'shwo'; did you mean 'show'?" in result.stderr


def test_the_version_is_shown() -> None:
    assert "crmcore, version" in crm_ok("--version")


# -- records -------------------------------------------------------------------------------------


def test_create_prints_the_new_id_and_show_prints_aligned_fields(db: str) -> None:
    account_id = crm_ok("--db", db, "create", "account", "name=Acme", "employees=12", "annual_revenue=1250.5 EUR").strip()
    assert account_id.isdigit()
    lines = crm_ok("--db", db, "show", "account", account_id).splitlines()
    assert lines[0] == f"ID:                  {account_id}"
    assert "Name:                Acme" in lines
    assert "Annual revenue:      1250.50 EUR" in lines
    assert "Created by:          system" in lines


def test_show_aligns_values_in_one_column(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme", "industry=Retail")
    lines = [line for line in crm_ok("--db", db, "show", "account", "1").splitlines() if not line.endswith(":")]
    columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in lines}
    assert len(columns) == 1


def test_show_names_the_record_a_reference_points_to(db: str) -> None:
    account = crm_ok("--db", db, "create", "account", "name=Acme").strip()
    contact = crm_ok("--db", db, "create", "contact", "last_name=Lovelace", f"account_id={account}").strip()
    assert re.search(rf"^Account: +{account} \(Acme\)$", crm_ok("--db", db, "show", "contact", contact), re.M)


def test_create_json_prints_the_record_with_dumped_values(db: str) -> None:
    data = json.loads(crm_ok("--db", db, "create", "opportunity", "name=Renewal", "amount=1200 EUR",
                         "close_date=2026-03-31", "--json"))
    assert data["name"] == "Renewal"
    assert data["amount"] == {"amount": "1200.00", "currency": "EUR"}
    assert data["close_date"] == "2026-03-31"
    assert data["stage"] == "initiation"
    assert data["version"] == 1 and isinstance(data["id"], int)
    assert data["created_at"].endswith("+00:00")


def test_show_json_matches_create_json(db: str) -> None:
    created = json.loads(crm_ok("--db", db, "create", "lead", "last_name=Hopper", "score=70", "--json"))
    shown = json.loads(crm_ok("--db", db, "show", "lead", str(created["id"]), "--json"))
    assert shown == created


def test_update_changes_fields_and_an_empty_value_empties(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme", "industry=Retail")
    assert crm_ok("--db", db, "update", "account", "1", "name=Acme Inc", "industry=").strip() == "updated account 1 (version 2)"
    data = json.loads(crm_ok("--db", db, "show", "account", "1", "--json"))
    assert (data["name"], data["industry"], data["version"]) == ("Acme Inc", None, 2)


def test_update_without_a_change_says_so(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme")
    assert crm_ok("--db", db, "update", "account", "1", "name=Acme").strip() == "account 1 unchanged (version 1)"


def test_update_json_prints_the_new_version(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme")
    assert json.loads(crm_ok("--db", db, "update", "account", "1", "employees=5", "--json"))["employees"] == 5


def test_delete_removes_the_record(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme")
    assert crm_ok("--db", db, "delete", "account", "1").strip() == "deleted account 1"
    assert crm_fails("--db", db, "show", "account", "1") == "error: account 1 not found"


def test_timeline_lists_changes_oldest_first(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme")
    crm_ok("--db", db, "create", "contact", "last_name=Lovelace", "account_id=1")
    crm_ok("--db", db, "update", "account", "1", "name=Acme Inc")
    lines = crm_ok("--db", db, "timeline", "account", "1").splitlines()
    assert len(lines) == 3
    assert "  system  created  account 1  name: Acme" in lines[0]
    assert "created  contact 1  last_name: Lovelace; account_id: 1" in lines[1]
    assert lines[2].endswith("updated  account 1  name: Acme → Acme Inc")


def test_timeline_json(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme", "annual_revenue=10 EUR")
    crm_ok("--db", db, "update", "account", "1", "annual_revenue=")
    entries = json.loads(crm_ok("--db", db, "timeline", "account", "1", "--json"))
    assert [e["action"] for e in entries] == ["created", "updated"]
    assert entries[1]["changes"] == {"annual_revenue": [{"amount": "10.00", "currency": "EUR"}, None]}
    assert entries[0]["actor"] == "system" and entries[0]["entity"] == "account" and entries[0]["id"] == 1


def test_timeline_of_a_missing_record_is_an_error(db: str) -> None:
    assert crm_fails("--db", db, "timeline", "account", "99") == "error: account 99 not found"


# -- acting as a user ----------------------------------------------------------------------------


def test_as_makes_the_user_own_and_author_what_they_create(db: str) -> None:
    user_id = int(crm_ok("--db", db, "create", "user", "username=ada"))
    data = json.loads(crm_ok("--db", db, "--as", "ada", "create", "account", "name=Acme", "--json"))
    assert data["owner_id"] == user_id and data["created_by"] == user_id
    assert "  ada  created  account" in crm_ok("--db", db, "timeline", "account", str(data["id"]))


def test_as_an_unknown_user_is_an_error(db: str) -> None:
    assert "no user named 'nobody'" in crm_fails("--db", db, "--as", "nobody", "create", "account", "name=Acme")


# -- bad input -----------------------------------------------------------------------------------


def test_a_malformed_argument_is_named(db: str) -> None:
    line = crm_fails("--db", db, "create", "account", "Acme")
    assert line == "error: malformed argument 'Acme': expected field=value, such as name=Acme"


def test_a_wrong_field_type_names_field_value_and_expectation(db: str) -> None:
    line = crm_fails("--db", db, "create", "account", "name=Acme", "employees=many")
    assert line == "error: account: employees: expected a whole number, got 'many'"


def test_a_reference_to_a_missing_record_is_refused(db: str) -> None:
    line = crm_fails("--db", db, "create", "contact", "last_name=Lovelace", "account_id=42")
    assert line == "error: contact: account_id: no account with id 42; create it first or correct the id"


def test_deleting_a_referenced_record_is_refused_naming_the_references(db: str) -> None:
    crm_ok("--db", db, "create", "account", "name=Acme")
    crm_ok("--db", db, "create", "contact", "last_name=Lovelace", "account_id=1")
    line = crm_fails("--db", db, "delete", "account", "1")
    assert "cannot delete account 1: referenced by contact 1 (field account_id)" in line
    assert crm_ok("--db", db, "show", "account", "1", "--json")  # nothing was lost


def test_an_unknown_entity_lists_the_known_ones(db: str) -> None:
    assert "unknown entity type 'acount'; known: account," in crm_fails("--db", db, "show", "acount", "1")


def test_a_non_numeric_id_is_refused(db: str) -> None:
    assert crm_fails("--db", db, "show", "account", "one") == "error: account id must be a whole number, got 'one'"


def test_debug_shows_the_traceback_then_the_line(db: str) -> None:
    result = run_crm("--db", db, "--debug", "create", "account", "employees=many")
    assert result.exit_code == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: account: ")


def test_an_unexpected_exception_names_its_type_and_suggests_debug(db: str) -> None:
    state = CliState(plugins=[HelloPlugin()])
    line = crm_fails("--db", db, "hello", "boom", obj=state)
    assert line == "error: RuntimeError: the flux capacitor is empty (run with --debug for the traceback)"


def test_an_unexpected_exception_with_debug_shows_the_traceback(db: str) -> None:
    result = run_crm("--db", db, "--debug", "hello", "boom", obj=CliState(plugins=[HelloPlugin()]))
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and 'raise RuntimeError("the flux capacitor is empty")' in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "error: RuntimeError: the flux capacitor is empty"


# -- plugins -------------------------------------------------------------------------------------


def test_plugin_commands_are_mounted_through_the_hook(db: str) -> None:
    state = CliState(plugins=[HelloPlugin()])
    assert "  hello " in crm_ok("--db", db, "--help", obj=CliState(plugins=[HelloPlugin()]))
    out = crm_ok("--db", db, "hello", "greet", obj=state)
    assert out.startswith("hello from system, ")


def test_plugin_commands_act_as_the_user_given_with_as(db: str) -> None:
    crm_ok("--db", db, "create", "user", "username=grace")
    out = crm_ok("--db", db, "--as", "grace", "hello", "greet", obj=CliState(plugins=[HelloPlugin()]))
    assert out.startswith("hello from grace, ")


def test_two_plugins_adding_one_command_name_are_both_named(db: str) -> None:
    line = crm_fails("--db", db, "hello", "greet", obj=CliState(plugins=[HelloPlugin(), ClashingPlugin()]))
    assert "plugins 'hello' and 'clash' both add the command 'crm hello'" in line


def test_plugins_list_shows_builtins_and_enabled_plugins(db: str) -> None:
    out = crm_ok("--db", db, "plugins", "list", obj=CliState(plugins=[HelloPlugin()]))
    header, *rows = out.splitlines()
    assert header.split() == ["name", "enabled", "kind", "version", "requires", "title"]
    assert any(r.split()[:4] == ["hello", "yes", "optional", "1.2.3"] and r.endswith("Hello commands") for r in rows)
    assert any(r.split()[:3] == ["core", "yes", "essential"] and r.endswith("(builtin)") for r in rows)


def test_plugins_list_json(db: str) -> None:
    data = json.loads(crm_ok("--db", db, "plugins", "list", "--json", obj=CliState(plugins=[HelloPlugin(), ClashingPlugin()])))
    by_name = {p["name"]: p for p in data}
    assert by_name["clash"]["requires"] == ["hello"]
    assert by_name["hello"] == {"name": "hello", "enabled": True, "builtin": False, "kind": "optional", "installed": True,
                                "version": "1.2.3", "requires": [], "title": "Hello commands"}
    assert by_name["core"]["builtin"] is True and by_name["core"]["enabled"] is True


# -- settings and database -----------------------------------------------------------------------


def test_db_overrides_the_database_of_the_settings(db: str) -> None:
    Path("crm.toml").write_text('[crm]\ndatabase = "sqlite:///elsewhere.db"\n')
    crm_ok("--db", db, "create", "account", "name=Acme")
    assert json.loads(crm_ok("--db", db, "show", "account", "1", "--json"))["name"] == "Acme"
    assert not Path("elsewhere.db").exists()


def test_config_reads_the_settings_file(db: str) -> None:
    Path("deploy.toml").write_text(
        f'[crm]\ndatabase = "{db}"\ncurrency = "EUR"\n'
    )
    data = json.loads(crm_ok("--config", "deploy.toml", "create", "account", "name=Acme", "annual_revenue=99", "--json"))
    assert data["annual_revenue"] == {"amount": "99.00", "currency": "EUR"}


def test_log_level_info_shows_startup_on_stderr(db: str) -> None:
    result = run_crm("--db", db, "--log-level", "info", "show", "account", "1")
    assert "INFO crmcore.app: app ready" in result.stderr


def test_logging_is_configured_only_while_the_command_runs(db: str) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    run_crm("--db", db, "--log-level", "debug", "show", "account", "1")
    assert (root.level, root.handlers) == (level, handlers)


def test_db_check_lists_pending_steps_and_upgrade_applies_them(crm_factory: Any) -> None:
    url = crm_factory.database_url(file=True)
    result = run_crm("--db", url, "db", "check")
    assert result.exit_code == 1
    assert result.stdout.strip(), "pending steps are listed"
    assert "run 'crm db upgrade'" in result.stderr
    steps = crm_ok("--db", url, "db", "upgrade")
    assert steps.strip() and steps.strip() != "database is up to date"
    assert crm_ok("--db", url, "db", "check").strip() == "database is up to date"
    assert crm_ok("--db", url, "db", "upgrade").strip() == "database is up to date"


def test_init_writes_commented_settings_and_prepares_the_database(crm_factory: Any) -> None:
    url = crm_factory.database_url(file=True)
    out = crm_ok("--db", url, "init")
    assert out.startswith("wrote crm.toml\n")
    assert out.rstrip().endswith("is ready")
    text = Path("crm.toml").read_text()
    assert text.startswith("# crmcore deployment settings")
    assert f'database = "{url}"' in text
    assert crm_ok("db", "check").strip() == "database is up to date"  # reads the new crm.toml
    crm_ok("create", "account", "name=Acme")
    again = crm_ok("init")
    assert again.startswith("crm.toml already exists; it was left as it is")
    assert Path("crm.toml").read_text() == text


def test_init_with_config_writes_that_file(crm_factory: Any) -> None:
    url = crm_factory.database_url(file=True)
    Path("conf").mkdir()
    crm_ok("--config", "conf/deploy.toml", "--db", url, "init")
    assert Path("conf/deploy.toml").exists()
    assert not Path("crm.toml").exists()
