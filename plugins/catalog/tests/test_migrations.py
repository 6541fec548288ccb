"""Enabling the catalog on an existing database migrates it without losing rows; disabling it
leaves its tables and data in place; enabling it again finds them as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmcore import create_app
from crmcore.money import Money

MIGRATION = "catalog: 0001 catalog tables; account vendor, segment and customer group; opportunity line product"


def write_settings(path: Path, database: str, plugins: list[str]) -> Path:
    listed = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'[crm]\ndatabase = "{database}"\nplugins = [{listed}]\n', encoding="utf-8")
    return path


def test_enabling_disabling_and_enabling_again(crm_factory: Any, make_record: Any, tmp_path: Path) -> None:
    existing = crm_factory(file=True, create_schema=False)
    existing.upgrade()
    account = make_record(existing, "account", name="Acme")
    deal = make_record(existing, "opportunity", name="Engines", account_id=account.id)
    make_record(existing, "opportunity_line", opportunity_id=deal.id, product="Engine", quantity="1",
                unit_price="100 EUR")
    database = existing.settings.database
    settings = write_settings(tmp_path / "crm.toml", database, ["catalog"])
    with create_app(settings) as crm:
        assert MIGRATION in crm.pending()
        done = crm.upgrade()
        assert MIGRATION in done and "discount tier job queued" in done
        assert crm.pending() == []
        with crm.unit_of_work() as uow:
            kept = uow.get("account", account.id)
            assert (kept.name, kept.vendor, kept.segment) == ("Acme", None, None)
            assert uow.query("opportunity_line").first().product == "Engine"
            uow.update("account", account.id, segment="retail")
            product = uow.create("product", code="ENG", name="Engine", list_price="100 EUR")
            uow.commit()
    write_settings(settings, database, [])
    with create_app(settings) as crm:
        assert crm.pending() == [] and crm.upgrade() == []
        assert not crm.registry.entity("account").has_field("segment")
        with crm.unit_of_work() as uow:  # the core works on without the plugin's hooks
            uow.update("account", account.id, name="Acme Corp")
            uow.create("opportunity_line", opportunity_id=deal.id, product="Spare", quantity="2", unit_price="5 EUR")
            uow.commit()
    write_settings(settings, database, ["catalog"])
    with create_app(settings) as crm:
        assert crm.pending() == []
        with crm.unit_of_work() as uow:
            again = uow.get("account", account.id)
            assert (again.name, again.segment) == ("Acme Corp", "retail")
            assert uow.get("product", product.id).list_price == Money("100.00", "EUR")
            assert uow.query("opportunity_line").count() == 2
