"""Enabling the service plugin on an existing database migrates it and keeps its rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from crmcore import create_app

MIGRATION = "service: 0001 field service"


def _tables(crm: Any) -> list[str]:
    with crm.connect() as connection:
        return sorted(t for t in sa.inspect(connection).get_table_names()
                      if t.startswith("service_"))


def test_enabling_the_plugin_on_an_existing_database(
    crm_factory: Any, make_record: Any, tmp_path: Path
) -> None:
    existing = crm_factory(file=True, create_schema=False)
    existing.upgrade()
    account = make_record(existing, "account", name="Acme")
    make_record(existing, "activity", kind="call", subject="Intro call", account_id=account.id)
    assert _tables(existing) == []
    settings = tmp_path / "crm.toml"
    settings.write_text(f'[crm]\ndatabase = "{existing.settings.database}"\n'
                        'plugins = ["service"]\n', encoding="utf-8")
    with create_app(settings) as crm:
        assert MIGRATION in crm.pending()
        done = crm.upgrade()
        assert MIGRATION in done and "service daily job queued" in done
        assert crm.pending() == []
        assert "service_installed_unit" in _tables(crm)
        with crm.unit_of_work() as uow:
            unit = uow.create("installed_unit", serial_number="SN-1", product_code="P",
                              account_id=account.id, install_date=dt.date(2026, 1, 1))
            order = uow.create("service_order", subject="Visit", account_id=account.id)
            uow.create("activity", kind="call", subject="Asked", service_order_id=order.id)
            uow.commit()
        with crm.unit_of_work() as uow:
            assert uow.get("installed_unit", unit.id).account_id == account.id
            assert [a.subject for a in uow.query("activity").order_by("id")] == [
                "Intro call", "Asked"]


def test_a_database_made_from_the_declarations_is_recorded_as_migrated(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["service"], file=True)
    assert f"{MIGRATION} (already in the database: recorded as applied)" in crm.pending()
    crm.upgrade()
    assert crm.pending() == []
