"""Enabling the scheduling plugin on an existing database migrates it and keeps its rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from crmcore import create_app

MIGRATION = "scheduling: 0001 resources and bookings"


def _tables(crm: Any) -> list[str]:
    with crm.connect() as connection:
        return sorted(t for t in sa.inspect(connection).get_table_names()
                      if t.startswith("scheduling_"))


def test_enabling_the_plugin_on_a_service_database(crm_factory: Any, tmp_path: Path) -> None:
    existing = crm_factory(plugins=["service"], file=True, create_schema=False)
    existing.upgrade()
    with existing.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        order = uow.create("service_order", subject="Visit", account_id=account.id)
        uow.commit()
    assert _tables(existing) == []
    settings = tmp_path / "crm.toml"
    settings.write_text(f'[crm]\ndatabase = "{existing.settings.database}"\n'
                        'plugins = ["scheduling"]\n', encoding="utf-8")
    with create_app(settings) as crm:
        assert MIGRATION in crm.pending()
        assert MIGRATION in crm.upgrade()
        assert crm.pending() == []
        assert "scheduling_booking" in _tables(crm)
        with crm.unit_of_work() as uow:
            uow.update("service_order", order.id, duration_minutes=90, latitude="-26.9")
            uow.create("order_skill", order_id=order.id, skill="gas", min_level=2)
            uow.commit()
        with crm.unit_of_work() as uow:
            stored = uow.get("service_order", order.id)
            assert (stored.subject, stored.duration_minutes, str(stored.latitude)) == (
                "Visit", 90, "-26.900000")


def test_a_database_made_from_the_declarations_is_recorded_as_migrated(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["scheduling"], file=True)
    assert f"{MIGRATION} (already in the database: recorded as applied)" in crm.pending()
    crm.upgrade()
    assert crm.pending() == []


def _step_down(crm: Any, package: Any, script: str) -> None:
    """Run the ``downgrade`` of revision *script* of *package*'s migrations on *crm*'s database."""
    import importlib.util

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    path = Path(package.__file__).parent / "migrations" / "versions" / script
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    with crm.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        with connection.begin(), Operations.context(MigrationContext.configure(connection)):
            module.downgrade()


def test_service_calendars_move_to_the_core_and_resources_and_plans_follow(
    crm_factory: Any,
) -> None:
    """A database from before the move: a service calendar (Monday to Friday, a holiday) that a
    plan and a resource use, and a core calendar already holding its name. Both revisions move
    it past the core's, renamed, open all day on its working days, and the plan and the
    resource follow it."""
    import datetime as dt

    import crm_service
    from crm_service import planned

    import crm_scheduling
    from crm_scheduling.resources import load_resources

    crm = crm_factory(plugins=["scheduling"], file=True, create_schema=False)
    crm.upgrade()
    _step_down(crm, crm_scheduling, "0004_bookings_flagged_as_conflicting.py")
    _step_down(crm, crm_scheduling, "0003_resource_calendars_move_to_core.py")
    _step_down(crm, crm_service, "0002_service_calendars_move_to_core.py")
    stamp = "1, '2026-01-01', '2026-01-01'"
    with crm.connect() as connection, connection.begin():
        run = connection.exec_driver_sql
        run("UPDATE crm_version_service SET version_num = '0001'")
        run("UPDATE crm_version_scheduling SET version_num = '0002'")
        run(f"INSERT INTO crm_business_calendar (version, created_at, updated_at, name, "
            f"timezone) VALUES ({stamp}, 'Office', 'UTC')")
        run(f"INSERT INTO service_service_calendar (version, created_at, updated_at, name, "
            f"workdays) VALUES ({stamp}, 'Office', '[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"]')")
        old = run("SELECT max(id) FROM service_service_calendar").scalar()
        run(f"INSERT INTO service_service_holiday (version, created_at, updated_at, calendar_id, "
            f"day, name) VALUES ({stamp}, {old}, '2027-01-19', 'Fair')")
        run(f"INSERT INTO crm_account (version, created_at, updated_at, name) "
            f"VALUES ({stamp}, 'Acme')")
        account = run("SELECT max(id) FROM crm_account").scalar()
        run(f"INSERT INTO service_service_plan (version, created_at, updated_at, name, "
            f"account_id, rule, starts_on, time_of_day, timezone, shift, calendar_id) VALUES "
            f"({stamp}, 'Check', {account}, 'FREQ=WEEKLY;BYDAY=TU', '2027-01-01', '09:00', "
            f"'UTC', 'next', {old})")
        run(f"INSERT INTO scheduling_resource (version, created_at, updated_at, name, kind, "
            f"calendar_id, day_start, day_end, timezone, active) VALUES ({stamp}, 'Ann', "
            f"'technician', {old}, '08:00', '17:00', 'UTC', true)")
    assert crm.pending() == [
        "service: 0002 service calendars move to the core's business calendars",
        "scheduling: 0003 resource calendars move to the core's business calendars",
        "scheduling: 0004 bookings flagged as conflicting"]
    crm.upgrade()
    with crm.unit_of_work() as uow:
        moved = uow.query("business_calendar").where(name="Office (service)").first()
        assert uow.query("business_hours").where(calendar_id=moved.id).count() == 5
        assert [p.calendar_id for p in uow.query("service_plan")] == [moved.id]
        (ann,) = uow.query("resource").all()
        assert ann.calendar_id == moved.id
        monday = dt.date(2027, 1, 18)
        working = load_resources(uow, monday, monday + dt.timedelta(days=6))[ann.id].working
        friday = monday + dt.timedelta(days=4)
        days = sorted({start.date() for start, _ in working if start.date() <= friday})
        assert days == [monday, *(monday + dt.timedelta(days=n) for n in (2, 3, 4))]  # Tue: Fair
        assert working[0] == (dt.datetime(2027, 1, 18, 8, tzinfo=dt.UTC),
                              dt.datetime(2027, 1, 18, 17, tzinfo=dt.UTC))
        plan = uow.query("service_plan").first()
        preview = planned.preview(uow, plan.id, monday, monday + dt.timedelta(days=6))
        assert [(o.scheduled_on, o.note) for o in preview] == [
            (dt.date(2027, 1, 20), "shifted from 2027-01-19 (Fair)")]
