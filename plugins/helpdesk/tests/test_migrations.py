"""Enabling the help desk on an existing database migrates it without losing rows; disabling it
leaves its tables, columns and data in place; enabling it again finds them as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from crmcore import create_app
from helpdesk_support import users

from crm_helpdesk import kb

TABLES = ("crm_user", "crm_account", "crm_contact", "crm_activity", "crm_opportunity", "crm_audit")
MIGRATION = (
    "helpdesk: 0001 help desk tables, account support tier, activity ticket, "
    "knowledge base search index"
)


def write_settings(path: Path, database: str, plugins: list[str]) -> Path:
    listed = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'[crm]\ndatabase = "{database}"\nplugins = [{listed}]\n', encoding="utf-8")
    return path


def snapshot(crm: Any) -> dict[str, list[dict[str, Any]]]:
    with crm.connect() as connection:
        return {
            table: [
                dict(r)
                for r in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").mappings()
            ]
            for table in TABLES
        }


def kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> bool:
    """Every row of *before* is in *after* with the same values (new columns and rows aside)."""
    return all(
        [{k: row[k] for k in old} for row, old in zip(after[t], before[t], strict=False)]
        == before[t]
        and len(after[t]) >= len(before[t])
        for t in TABLES
    )


def helpdesk_tables(crm: Any) -> list[str]:
    with crm.connect() as connection:
        return sorted(
            t for t in sa.inspect(connection).get_table_names() if t.startswith("helpdesk_")
        )


def test_enabling_disabling_and_enabling_again(
    crm_factory: Any, make_record: Any, make_user: Any, tmp_path: Path
) -> None:
    existing = crm_factory(file=True, create_schema=False)
    existing.upgrade()
    owner = make_user(existing, "ada")
    account = make_record(existing, "account", name="Acme", owner_id=owner.user_id)
    contact = make_record(
        existing, "contact", last_name="Lovelace", account_id=account.id, owner_id=owner.user_id
    )
    make_record(existing, "activity", kind="call", subject="Intro call", contact_id=contact.id)
    make_record(
        existing, "opportunity", name="Engines", account_id=account.id, owner_id=owner.user_id
    )
    before = snapshot(existing)
    assert helpdesk_tables(existing) == []
    database = existing.settings.database

    settings = write_settings(tmp_path / "crm.toml", database, ["helpdesk"])
    with create_app(settings) as crm:
        assert MIGRATION in crm.pending()
        done = crm.upgrade()
        assert MIGRATION in done and "queue General created" in done
        assert crm.pending() == []
        assert kept(before, snapshot(crm))
        assert "helpdesk_ticket" in helpdesk_tables(crm)
        with crm.unit_of_work() as uow:
            assert uow.get("account", account.id).support_tier is None
            uow.update("account", account.id, support_tier="premium")
            ticket = uow.create(
                "ticket", subject="Printer on fire", contact_id=contact.id, priority="high"
            )
            uow.create("activity", kind="call", subject="Called back", ticket_id=ticket.id)
            article = uow.create(
                "kb_article", title="Printer prints blank labels", body="Update the driver."
            )
            uow.commit()
        with crm.unit_of_work() as uow:
            assert uow.get("ticket", ticket.id).account_id == account.id
            assert [h.article.id for h in kb.search(uow, "printer driver")] == [article.id]

    write_settings(settings, database, [])
    with create_app(settings) as crm:
        assert crm.pending() == []
        assert crm.upgrade() == []
        assert "helpdesk_ticket" in helpdesk_tables(crm)
        assert not crm.registry.entity("account").has_field("support_tier")
        with crm.connect() as connection:
            subjects = connection.exec_driver_sql(
                "SELECT id, subject FROM helpdesk_ticket"
            ).fetchall()
            tier = connection.exec_driver_sql(
                f"SELECT helpdesk_support_tier FROM crm_account WHERE id = {account.id}"
            ).scalar()
        assert [tuple(s) for s in subjects] == [(ticket.id, "Printer on fire")]
        assert tier == "premium"
        with crm.unit_of_work() as uow:  # the core works on without the plugin's hooks
            uow.create("activity", kind="task", subject="Follow up", account_id=account.id)
            uow.update("account", account.id, name="Acme Corp")
            uow.commit()

    write_settings(settings, database, ["helpdesk"])
    with create_app(settings) as crm:
        assert crm.pending() == []
        with crm.unit_of_work() as uow:
            assert uow.get("account", account.id).support_tier == "premium"
            assert uow.get("ticket", ticket.id).subject == "Printer on fire"
            assert [a.subject for a in uow.query("activity").where(ticket_id=ticket.id)] == [
                "Called back"
            ]
            assert [h.article.id for h in kb.search(uow, "labels")] == [article.id]


def test_a_database_made_from_the_declarations_is_recorded_as_migrated(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"], file=True)
    assert f"{MIGRATION} (already in the database: recorded as applied)" in crm.pending()
    assert f"{MIGRATION} (already in the database: recorded as applied)" in crm.upgrade()
    assert crm.pending() == []


CALENDARS = "helpdesk: 0003 SLA calendars move to the core's business calendars"
PER_FIELD = "helpdesk: 0002 knowledge base search indexes of the title alone and of the body alone"


def test_migration_0002_adds_the_per_field_search_indexes_over_the_articles_there(
    crm_factory: Any,
) -> None:
    """A database at 0001 with an article gets the indexes of the title alone and of the body
    alone, holding the article: a searcher who may not see the body finds it by its title."""
    reader = {"privileges": {"kb_article": ["read"]}, "fields": {"kb_article": {"body": "hidden"}}}
    security = {"profiles": {"reader": reader}, "roles": {"reader": {"profiles": ["reader"]}}}
    crm = crm_factory(plugins=["helpdesk"], file=True, create_schema=False, security=security)
    crm.upgrade()
    (ann,) = users(crm, "ann", roles=("reader",))
    with crm.unit_of_work() as uow:
        article = uow.move(
            uow.create("kb_article", title="Printer labels", body="Update the driver."), "published"
        )
        uow.commit()
    with crm.connect() as connection, connection.begin():  # back to 0001
        for fields in kb.SEARCH_SETS[1:]:
            if connection.dialect.name == "sqlite":
                for suffix in ("insert", "delete", "update"):
                    connection.exec_driver_sql(f"DROP TRIGGER {kb.fts_table(fields)}_{suffix}")
                connection.exec_driver_sql(f"DROP TABLE {kb.fts_table(fields)}")
            else:
                connection.exec_driver_sql(f"DROP INDEX {kb.pg_index(fields)}")
        connection.exec_driver_sql("UPDATE crm_version_helpdesk SET version_num = '0001'")
    assert crm.pending() == [PER_FIELD, CALENDARS]
    assert PER_FIELD in crm.upgrade()
    assert not any("search index" in line for line in crm.seed())  # the migration made them
    with crm.unit_of_work(ann) as uow:
        assert [h.article.id for h in kb.search(uow, "labels")] == [article.id]
        assert kb.search(uow, "driver") == []


def _step_down(crm: Any, script: str) -> None:
    """Run the ``downgrade`` of revision *script* of the help desk on *crm*'s database."""
    import importlib.util

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    path = Path(kb.__file__).parent / "migrations" / "versions" / script
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    with crm.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin():
            with Operations.context(MigrationContext.configure(connection)):
                module.downgrade()


def test_migration_0003_moves_sla_calendars_to_the_core_and_policies_follow(
    crm_factory: Any,
) -> None:
    """A database at 0002 holds its calendars in the help desk's tables, and the core already
    has a calendar of the same name and id: the help desk's move past it, renamed, with their
    hours and holidays, and the policies follow them, so clocks run as before."""
    import datetime as dt

    from helpdesk_support import account, open_ticket

    crm = crm_factory(plugins=["helpdesk"], file=True, create_schema=False)
    crm.upgrade()
    _step_down(crm, "0003_sla_calendars_move_to_core.py")
    with crm.connect() as connection, connection.begin():
        standard = connection.exec_driver_sql(
            "SELECT id FROM helpdesk_sla_calendar WHERE name = 'Standard'").scalar()
        connection.exec_driver_sql(
            "INSERT INTO helpdesk_sla_holiday "
            "(version, created_at, updated_at, calendar_id, day, name) "
            f"VALUES (1, '2026-01-01', '2026-01-01', {standard}, '2026-03-30', 'Closed')")
        for table in ("crm_business_holiday", "crm_business_hours"):
            connection.exec_driver_sql(f"DELETE FROM {table}")
        connection.exec_driver_sql(
            f"UPDATE crm_business_calendar SET description = 'the core' WHERE id = {standard}")
        connection.exec_driver_sql("UPDATE crm_version_helpdesk SET version_num = '0002'")
    assert crm.pending() == [CALENDARS]
    assert CALENDARS in crm.upgrade()
    with crm.connect() as connection:
        assert not sa.inspect(connection).has_table("helpdesk_sla_calendar")
    with crm.unit_of_work() as uow:
        moved = uow.query("business_calendar").where(name="Standard (help desk)").first()
        assert moved.id > standard
        assert uow.query("business_hours").where(calendar_id=moved.id).count() == 5
        assert [h.day for h in uow.query("business_holiday").where(calendar_id=moved.id)] == [
            dt.date(2026, 3, 30)]
        assert {p.calendar_id for p in uow.query("sla_policy")} == {moved.id}
        uow.create("business_calendar", name="After the move")  # the id sequence moved on
        uow.commit()
    friday = dt.datetime(2026, 3, 27, 20, 0, tzinfo=dt.UTC)  # after 09:00-17:00 closes
    ticket = open_ticket(crm, account_id=account(crm, tier="premium"), priority="urgent",
                         opened_at=friday)
    # Monday the 30th is the holiday: the clock starts on Tuesday at 09:00
    assert ticket.response_due.date() == dt.date(2026, 3, 31)
