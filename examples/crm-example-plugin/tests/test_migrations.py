"""Enabling the example plugin in a deployment's crm.toml migrates an existing database without
losing rows; disabling it again leaves its tables and data in place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from crmcore import create_app


def write_settings(path: Path, database: str, plugins: list[str]) -> Path:
    listed = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'[crm]\ndatabase = "{database}"\nplugins = [{listed}]\n', encoding="utf-8")
    return path


TABLES = ("crm_user", "crm_account", "crm_contact", "crm_opportunity", "crm_audit")


def snapshot(crm: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of the core tables the test fills, as mappings."""
    with crm.connect() as connection:
        return {
            table: [
                dict(r)
                for r in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").mappings()
            ]
            for table in TABLES
        }


def kept(before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]) -> bool:
    """Every row of *before* is in *after* with the same values (new columns aside)."""
    return all(
        [{k: row[k] for k in old} for row, old in zip(after[t], before[t], strict=True)]
        == before[t]
        for t in TABLES
    )


def test_enabling_the_plugin_in_crm_toml_migrates_without_losing_rows(
    crm_factory: Any, make_record: Any, make_user: Any, tmp_path: Path
) -> None:
    existing = crm_factory(file=True, create_schema=False)
    existing.upgrade()
    owner = make_user(existing, "ada")
    account = make_record(existing, "account", name="Acme", owner_id=owner.user_id)
    make_record(
        existing, "contact", last_name="Lovelace", account_id=account.id, owner_id=owner.user_id
    )
    make_record(
        existing, "opportunity", name="Engines", account_id=account.id, owner_id=owner.user_id
    )
    before = snapshot(existing)
    database = existing.settings.database

    settings = write_settings(tmp_path / "crm.toml", database, ["example"])
    with create_app(settings) as crm:
        assert "example: 0001 site visits, account customer since" in crm.pending()
        assert "example: 0001 site visits, account customer since" in crm.upgrade()
        assert crm.pending() == []
        assert kept(before, snapshot(crm))
        with crm.unit_of_work() as uow:
            assert uow.get("account", account.id).customer_since is None
            uow.update("account", account.id, customer_since="2019-05-01")
            visit = uow.create(
                "site_visit", account_id=account.id, visited_on="2026-03-02", rating="good"
            )
            uow.commit()

    write_settings(settings, database, [])
    with create_app(settings) as crm:
        assert crm.pending() == []
        assert crm.upgrade() == []
        with crm.connect() as connection:
            visits = connection.exec_driver_sql(
                "SELECT id, rating FROM example_site_visit"
            ).fetchall()
            since = connection.exec_driver_sql(
                f"SELECT example_customer_since FROM crm_account WHERE id = {account.id}"
            ).scalar()
        assert [tuple(v) for v in visits] == [(visit.id, "good")]
        assert str(since) == "2019-05-01"

    write_settings(settings, database, ["example"])
    with create_app(settings) as crm:
        assert crm.pending() == []
        with crm.unit_of_work() as uow:
            assert uow.get("account", account.id).customer_since == dt.date(2019, 5, 1)
            assert uow.get("site_visit", visit.id).rating == "good"
