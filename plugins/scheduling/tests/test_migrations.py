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
