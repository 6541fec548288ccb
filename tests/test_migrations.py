"""Migrations: the core's branch, plugin branches enabled and disabled later, script-less
plugins and custom fields, on SQLite (a file) and on PostgreSQL (``CRM_TEST_DATABASE_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import ConfigError, CrmError, DatabaseError, EntityType, Field, PluginInfo, hookimpl
from crmcore.fields import Choice, Date, Reference, String, Text
from crmcore.storage import migrations

# -- throwaway plugins -------------------------------------------------------------------------


class Visits:
    """A plugin with an entity of its own and a field on ``account``."""

    PLUGIN = PluginInfo(name="visits", title="Visits")

    def __init__(self, folder: Path | None = None, *, extra_field: bool = False) -> None:
        self.folder = folder
        self.extra_field = extra_field

    @hookimpl
    def crm_entity_types(self) -> list[EntityType]:
        fields = [
            Field("account_id", Reference("account"), required=True),
            Field("visited_on", Date(), required=True),
            Field("rating", Choice("good", "bad")),
            Field("notes", Text()),
        ]
        if self.extra_field:
            fields.append(Field("weather", String(40)))
        return [EntityType("visit", fields=tuple(fields), ownable=True)]

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
        if entity_type == "account":
            return [Field("tier", Choice("basic", "gold"))]
        return None

    @hookimpl
    def crm_migrations(self) -> str | None:
        return None if self.folder is None else str(self.folder)


# -- helpers -----------------------------------------------------------------------------------


def table_names(crm: Any) -> set[str]:
    with crm.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def column_names(crm: Any, table: str) -> set[str]:
    with crm.connect() as connection:
        return {c["name"] for c in sa.inspect(connection).get_columns(table)}


def rows(crm: Any, sql: str) -> list[tuple[Any, ...]]:
    with crm.connect() as connection:
        return [tuple(r) for r in connection.exec_driver_sql(sql)]


def versions(crm: Any, plugin: str) -> list[str]:
    return [r[0] for r in rows(crm, f"SELECT version_num FROM {migrations.version_table(plugin)}")]


def core_revisions() -> list[str]:
    """``"core: <id> <message>"`` for each of the core's revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations.SCRIPT_LOCATION), version_locations=[str(migrations.CORE_VERSIONS)])
    return [f"core: {rev.revision} {(rev.doc or '').strip()}" for rev in reversed(list(script.walk_revisions()))]


def core_head() -> str:
    return core_revisions()[-1].split()[1]


def no_differences(crm: Any) -> list[Any]:
    """Alembic's comparison of the database with every declaration; empty when they match."""
    return migrations.differences(crm)


@pytest.fixture
def new_app(crm_factory: Any) -> Any:
    """``new_app(plugins=..., **kw)``: an app on a fresh, empty database (an SQLite file, or a
    PostgreSQL schema when ``CRM_TEST_DATABASE_URL`` is set)."""

    def make(plugins: list[Any] | tuple[Any, ...] = (), **kw: Any) -> Any:
        return crm_factory(plugins=plugins, file=True, create_schema=False, **kw)

    return make


def same_database(crm_factory: Any, first: Any, plugins: list[Any] | tuple[Any, ...] = (), **kw: Any) -> Any:
    return crm_factory(plugins=plugins, database=first.settings.database, create_schema=False, **kw)


# -- who owns what ----------------------------------------------------------------------------


def test_each_table_and_column_has_one_branch(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Visits()], create_schema=False)
    account, visit = crm.metadata.tables["crm_account"], crm.metadata.tables["visits_visit"]
    assert migrations.table_owner(account) == "core"
    assert migrations.column_owner(account, account.c.name) == "core"
    assert migrations.column_owner(account, account.c.visits_tier) == "visits"
    assert migrations.column_owner(visit, visit.c.owner_id) == "visits"
    assert migrations.injected(visit, visit.c.owner_id) and not migrations.injected(account, account.c.owner_id)
    builtin = [t for t in crm.metadata.tables.values() if str(t.info.get("origin", "")).startswith("core.")]
    assert all(migrations.table_owner(t) == "core" for t in builtin)
    assert migrations.version_table("core.permissions") == "crm_version_core_permissions"


# -- the core ----------------------------------------------------------------------------------


def test_pending_on_an_empty_database_lists_the_core_revision(new_app: Any) -> None:
    crm = new_app()
    assert "core: 0001 create core tables" in crm.pending()


def test_upgrade_from_empty_creates_exactly_the_registry_schema(new_app: Any) -> None:
    crm = new_app()
    done = crm.upgrade()
    assert done[: len(core_revisions())] == core_revisions()
    assert migrations.differences(crm, "core") == [], (
        "the core's revisions differ from the core's declarations; if a core entity changed, write "
        "a revision: crm db revision --plugin core -m 'what changed'"
    )
    assert no_differences(crm) == []
    assert set(crm.metadata.tables) <= table_names(crm)
    assert versions(crm, "core") == [core_head()]
    assert "alembic_version" not in table_names(crm)


def test_pending_is_empty_after_upgrade(new_app: Any) -> None:
    crm = new_app()
    assert crm.pending()
    crm.upgrade()
    assert crm.pending() == []


def test_upgrade_twice_does_nothing_the_second_time(new_app: Any, make_record: Any) -> None:
    crm = new_app()
    crm.upgrade()
    account = make_record(crm, "account", name="Acme")
    assert crm.upgrade() == []
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id).name == "Acme"


def test_the_upgraded_database_works_for_records(new_app: Any, make_record: Any) -> None:
    crm = new_app()
    crm.upgrade()
    contact = make_record(crm, "contact", last_name="Lovelace")
    with crm.unit_of_work() as uow:
        uow.tag(contact, "vip")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.tags(contact) == ["vip"]


def test_core_revisions_import_nothing_from_crmcore() -> None:
    for script in migrations.CORE_VERSIONS.glob("*.py"):
        assert "crmcore" not in script.read_text(encoding="utf-8"), script


# -- a plugin without scripts ------------------------------------------------------------------


def test_enabling_a_scriptless_plugin_later_adds_its_schema_and_keeps_rows(
    new_app: Any, crm_factory: Any, make_record: Any
) -> None:
    first = new_app()
    first.upgrade()
    accounts = [make_record(first, "account", name=f"Account {n}").id for n in range(3)]
    make_record(first, "contact", last_name="Hopper", account_id=accounts[0])
    before = rows(first, "SELECT id, name, version FROM crm_account ORDER BY id")

    second = same_database(crm_factory, first, [Visits()])
    assert second.pending() == ["visits: create table visits_visit", "visits: add column crm_account.visits_tier"]
    assert second.upgrade() == ["visits: create table visits_visit", "visits: add column crm_account.visits_tier"]
    assert second.pending() == []
    assert no_differences(second) == []
    assert rows(second, "SELECT id, name, version FROM crm_account ORDER BY id") == before
    assert rows(second, "SELECT count(*) FROM crm_contact") == [(1,)]
    with second.unit_of_work() as uow:
        uow.update("account", accounts[1], tier="gold")
        uow.create("visit", account_id=accounts[1], visited_on="2026-03-02", rating="good")
        uow.commit()


def test_disabling_a_plugin_leaves_its_tables_and_rows(
    new_app: Any, crm_factory: Any, make_record: Any
) -> None:
    with_plugin = new_app([Visits()])
    with_plugin.upgrade()
    account = make_record(with_plugin, "account", name="Acme", tier="gold")
    make_record(with_plugin, "visit", account_id=account.id, visited_on="2026-03-02")

    without = same_database(crm_factory, with_plugin)
    assert without.pending() == []
    assert without.upgrade() == []
    assert "visits_visit" in table_names(without)
    assert rows(without, "SELECT count(*) FROM visits_visit") == [(1,)]
    assert rows(without, "SELECT visits_tier FROM crm_account") == [("gold",)]
    make_record(without, "account", name="Created while visits is disabled")

    again = same_database(crm_factory, with_plugin, [Visits()])
    assert again.pending() == []
    with again.unit_of_work() as uow:
        assert uow.get("account", account.id).tier == "gold"
    assert rows(again, "SELECT count(*) FROM visits_visit") == [(1,)]


# -- a plugin with its own branch --------------------------------------------------------------


@pytest.fixture
def visits_folder(tmp_path: Path, crm_factory: Any) -> Path:
    """A folder holding the ``0001`` revision of the Visits plugin, written by :func:`revision`."""
    folder = tmp_path / "visits_versions"
    folder.mkdir()
    scratch = crm_factory(plugins=[Visits(folder)], file=True, create_schema=False)
    migrations.revision(scratch, "visits", "create visits")
    return folder


def test_revision_writes_the_plugins_objects_only(visits_folder: Path) -> None:
    [script] = list(visits_folder.glob("*.py"))
    text = script.read_text(encoding="utf-8")
    assert script.name == "0001_create_visits.py"
    assert "op.create_table('visits_visit'" in text
    assert "visits_tier" in text
    assert "crm_contact" not in text and "create_table('crm_account'" not in text
    assert "crmcore" not in text


def test_revision_leaves_out_other_branches_columns(tmp_path: Path, crm_factory: Any) -> None:
    folder = tmp_path / "versions"
    folder.mkdir()
    custom = {"visit": {"mood": {"type": "string"}}, "account": {"region": {"type": "string"}}}
    scratch = crm_factory(plugins=[Visits(folder)], file=True, create_schema=False, custom_fields=custom)
    text = Path(migrations.revision(scratch, "visits", "create visits")).read_text(encoding="utf-8")
    assert "custom_mood" not in text and "custom_region" not in text
    scratch.upgrade()
    assert "custom_mood" in column_names(scratch, "visits_visit")
    assert scratch.pending() == []


def test_enabling_a_scripted_plugin_later_runs_its_branch_and_keeps_rows(
    new_app: Any, crm_factory: Any, make_record: Any, visits_folder: Path
) -> None:
    first = new_app()
    first.upgrade()
    account = make_record(first, "account", name="Acme")
    make_record(first, "opportunity", name="Big deal", account_id=account.id)
    before = rows(first, "SELECT id, name FROM crm_account ORDER BY id")

    second = same_database(crm_factory, first, [Visits(visits_folder)])
    assert second.pending() == ["visits: 0001 create visits"]
    assert second.upgrade()[0] == "visits: 0001 create visits"
    assert second.pending() == []
    assert no_differences(second) == []
    assert versions(second, "visits") == ["0001"]
    assert versions(second, "core") == [core_head()]
    assert rows(second, "SELECT id, name FROM crm_account ORDER BY id") == before
    assert rows(second, "SELECT count(*) FROM crm_opportunity") == [(1,)]
    visit = make_record(second, "visit", account_id=account.id, visited_on="2026-04-01")

    without = same_database(crm_factory, first)
    assert without.pending() == []
    assert without.upgrade() == []
    assert rows(without, "SELECT id FROM visits_visit") == [(visit.id,)]
    assert versions(without, "visits") == ["0001"]


def test_a_second_revision_only_adds_what_changed(
    new_app: Any, crm_factory: Any, make_record: Any, visits_folder: Path
) -> None:
    deployed = new_app([Visits(visits_folder)])
    deployed.upgrade()
    account = make_record(deployed, "account", name="Acme")
    make_record(deployed, "visit", account_id=account.id, visited_on="2026-04-01")

    scratch = new_app([Visits(visits_folder, extra_field=True)])
    path = Path(migrations.revision(scratch, "visits", "add weather"))
    text = path.read_text(encoding="utf-8")
    assert path.name == "0002_add_weather.py"
    assert "down_revision: str | None = '0001'" in text
    assert "add_column(sa.Column('weather'" in text and "create_table" not in text

    newer = same_database(crm_factory, deployed, [Visits(visits_folder, extra_field=True)])
    assert newer.pending() == ["visits: 0002 add weather"]
    assert newer.upgrade() == ["visits: 0002 add weather"]
    assert rows(newer, "SELECT count(*) FROM visits_visit") == [(1,)]
    assert "weather" in column_names(newer, "visits_visit")
    assert versions(newer, "visits") == ["0002"]


def test_revision_with_nothing_new_writes_nothing(new_app: Any, visits_folder: Path) -> None:
    crm = new_app([Visits(visits_folder)])
    with pytest.raises(CrmError, match="nothing to write for 'visits'"):
        migrations.revision(crm, "visits", "again")
    assert [p.name for p in visits_folder.glob("*.py")] == ["0001_create_visits.py"]


def test_revision_needs_a_migration_folder(new_app: Any) -> None:
    crm = new_app([Visits()])
    with pytest.raises(ConfigError, match="names no migration folder"):
        migrations.revision(crm, "visits", "create visits")
    with pytest.raises(ConfigError, match="'helpdesk' is not enabled"):
        migrations.revision(crm, "helpdesk", "create tickets")


def test_a_missing_migration_folder_is_a_clear_error(new_app: Any, tmp_path: Path) -> None:
    crm = new_app([Visits(tmp_path / "nowhere")])
    with pytest.raises(ConfigError, match="names migration folder .*nowhere.* which does not exist"):
        crm.pending()


def test_declarations_without_a_revision_are_pending(new_app: Any, tmp_path: Path) -> None:
    crm = new_app([Visits(tmp_path)])
    crm.upgrade()
    assert crm.pending() == [
        "visits: table visits_visit is declared but no revision creates it; write one with "
        "'crm db revision --plugin visits -m MESSAGE'",
        "visits: column crm_account.visits_tier is declared but no revision creates it; write one "
        "with 'crm db revision --plugin visits -m MESSAGE'",
    ]


def test_a_failing_script_changes_nothing(new_app: Any, tmp_path: Path) -> None:
    (tmp_path / "0001_broken.py").write_text(
        '"""broken"""\n'
        "from alembic import op\n"
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    op.execute('SELECT * FROM no_such_table')\n\n"
        "def downgrade():\n    pass\n",
        encoding="utf-8",
    )
    crm = new_app([Visits(tmp_path)])
    with pytest.raises(DatabaseError, match=r"migration of 'visits' failed \(0001\).*nothing was changed"):
        crm.upgrade()
    assert "crm_account" not in table_names(crm)
    assert crm.pending()[0] == "core: 0001 create core tables"


def test_an_unknown_recorded_revision_is_a_clear_error(new_app: Any) -> None:
    crm = new_app()
    crm.upgrade()
    with crm.connect() as connection, connection.begin():
        connection.exec_driver_sql("UPDATE crm_version_core SET version_num = 'zz99'")
    with pytest.raises(DatabaseError, match="'zz99'.*crm_version_core.*install the plugin version"):
        crm.pending()


def test_a_database_made_by_create_schema_is_recorded_not_recreated(crm_factory: Any, make_record: Any) -> None:
    crm = crm_factory(file=True)  # tables straight from the registry, no migration history
    account = make_record(crm, "account", name="Acme")
    recorded = [f"{line} (already in the database: recorded as applied)" for line in core_revisions()]
    assert crm.pending() == recorded
    assert crm.upgrade()[: len(recorded)] == recorded
    assert versions(crm, "core") == [core_head()]
    assert crm.pending() == []
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id).name == "Acme"


def test_a_plugin_that_starts_shipping_scripts_records_its_first_revision(
    new_app: Any, crm_factory: Any, make_record: Any, visits_folder: Path
) -> None:
    before = new_app([Visits()])
    before.upgrade()
    account = make_record(before, "account", name="Acme", tier="gold")
    make_record(before, "visit", account_id=account.id, visited_on="2026-03-02")

    after = same_database(crm_factory, before, [Visits(visits_folder)])
    assert after.pending() == ["visits: 0001 create visits (already in the database: recorded as applied)"]
    after.upgrade()
    assert versions(after, "visits") == ["0001"]
    assert after.pending() == []
    assert rows(after, "SELECT count(*) FROM visits_visit") == [(1,)]


class CoreExtra:
    """Stands for a builtin of the core that puts a column on another plugin's entity."""

    PLUGIN = PluginInfo(name="core.extra")

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
        if entity_type == "visit":
            return [Field("flag", String(10), column="extra_flag")]
        return None


def test_a_column_the_core_adds_to_a_plugins_table_needs_no_plugin_revision(
    new_app: Any, crm_factory: Any, make_record: Any, visits_folder: Path
) -> None:
    deployed = new_app([Visits(visits_folder)])
    deployed.upgrade()
    account = make_record(deployed, "account", name="Acme")
    make_record(deployed, "visit", account_id=account.id, visited_on="2026-03-02")

    later = same_database(crm_factory, deployed, [Visits(visits_folder), CoreExtra()])
    assert later.pending() == ["core.extra: add column visits_visit.extra_flag"]
    assert later.upgrade() == ["core.extra: add column visits_visit.extra_flag"]
    assert later.pending() == []
    assert rows(later, "SELECT count(*) FROM visits_visit") == [(1,)]
    with pytest.raises(CrmError, match="nothing to write for 'visits'"):
        migrations.revision(later, "visits", "nothing of its own")


# -- custom fields from the settings -----------------------------------------------------------


def test_a_custom_field_added_later_is_pending_then_added(
    new_app: Any, crm_factory: Any, make_record: Any
) -> None:
    first = new_app()
    first.upgrade()
    ids = [make_record(first, "account", name=f"Account {n}").id for n in range(2)]
    before = rows(first, "SELECT id, name FROM crm_account ORDER BY id")

    custom = {"account": {"region": {"type": "string", "index": True}, "partner": {"type": "reference", "entity": "contact"}}}
    second = same_database(crm_factory, first, custom_fields=custom)
    assert second.pending() == [
        "settings: add column crm_account.custom_region",
        "settings: add column crm_account.custom_partner",
    ]
    second.upgrade()
    assert second.pending() == []
    assert no_differences(second) == []
    assert rows(second, "SELECT id, name FROM crm_account ORDER BY id") == before
    contact = make_record(second, "contact", last_name="Lovelace")
    with second.unit_of_work() as uow:
        uow.update("account", ids[0], region="EMEA", partner=contact.id)
        uow.commit()

    removed = same_database(crm_factory, first)
    assert removed.pending() == []
    assert removed.upgrade() == []
    assert rows(removed, f"SELECT custom_region FROM crm_account WHERE id = {ids[0]}") == [("EMEA",)]


def test_a_unique_custom_field_gets_its_constraint(new_app: Any, crm_factory: Any, make_record: Any) -> None:
    first = new_app()
    first.upgrade()
    make_record(first, "account", name="Acme")
    second = same_database(crm_factory, first, custom_fields={"account": {"code": {"type": "string", "unique": True}}})
    second.upgrade()
    assert no_differences(second) == []
    with second.connect() as connection:
        uniques = sa.inspect(connection).get_unique_constraints("crm_account")
    assert [u["column_names"] for u in uniques] == [["custom_code"]]


# -- the command line --------------------------------------------------------------------------


def test_crm_db_revision_names_what_is_missing(crm_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from crmcore.cli import main

    monkeypatch.chdir(tmp_path)
    url = crm_factory.database_url(file=True)
    result = CliRunner().invoke(main, ["--db", url, "db", "revision", "--plugin", "core.cli", "-m", "nothing"])
    assert result.exit_code != 0
    assert "plugin 'core.cli' names no migration folder" in result.stderr
    assert "Traceback" not in result.output
    usage = CliRunner().invoke(main, ["--db", url, "db", "revision", "-m", "no plugin"])
    assert usage.exit_code != 0 and "--plugin" in usage.output
