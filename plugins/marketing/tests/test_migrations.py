"""Enabling marketing on an existing database migrates it without losing rows, and the
migration matches the declarations (nothing pending afterwards)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmcore import create_app

MIGRATION = "marketing: 0001 geographies, segments, campaigns, plans"


def test_enabling_marketing_on_an_existing_database(crm_factory: Any, make_record: Any, tmp_path: Path) -> None:
    existing = crm_factory(plugins=["sales"], file=True, create_schema=False)
    existing.upgrade()
    account = make_record(existing, "account", name="Acme")
    lead = make_record(existing, "lead", last_name="Lovelace")
    database = existing.settings.database
    settings = tmp_path / "crm.toml"
    settings.write_text(f'[crm]\ndatabase = "{database}"\nplugins = ["marketing"]\n', encoding="utf-8")
    with create_app(settings) as crm:
        assert MIGRATION in crm.pending()
        assert MIGRATION in crm.upgrade()
        assert crm.pending() == []
        with crm.unit_of_work() as uow:
            assert uow.get("account", account.id).name == "Acme"
            assert uow.get("lead", lead.id).email_opt_out is None
            germany = uow.create("geography", name="Germany", code="DE")
            uow.update("account", account.id, geography_id=germany.id)
            campaign = uow.create("campaign", name="Fair", code="FAIR", channel="visit", repeat_days=7)
            uow.update("lead", lead.id, campaign_code="FAIR")
            uow.commit()
        with crm.unit_of_work() as uow:
            assert uow.get("lead", lead.id).campaign_id == campaign.id
            assert uow.query("campaign_touch").where(kind="lead").count() == 1
