"""``crm service ...`` through click's ``CliRunner``, on the database under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore.cli import CliState, main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    (tmp_path / "crm.toml").write_text('[crm]\nplugins = ["service"]\n')


@pytest.fixture
def db(crm_factory: Any) -> str:
    url: str = crm_factory.database_url(file=True)
    crm_factory(plugins=["service"], database=url)
    return url


def crm(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_units_import_list_and_show(db: str, tmp_path: Path) -> None:
    csv = tmp_path / "units.csv"
    csv.write_text("Serial Number,Product Code,Product Name\nSN-9,PUMP-1,Pump\n")
    assert "1 created" in ok(db, "service", "units", "import", str(csv))
    listed = ok(db, "service", "units")
    assert "SN-9" in listed and "PUMP-1" in listed
    shown = ok(db, "service", "unit", "SN-9")
    assert "SN-9: PUMP-1 Pump [active]" in shown
    assert "created installed_unit" in shown


def test_an_unknown_unit_is_one_line(db: str) -> None:
    result = crm(db, "service", "unit", "NOPE")
    assert result.exit_code != 0
    assert "no unit with id or serial number 'NOPE'" in result.output


def test_entitlement_explains_a_decision(db: str, crm_factory: Any) -> None:
    import datetime as dt

    app = crm_factory(plugins=["service"], database=db)
    with app.unit_of_work() as uow:
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12,
                   travel_pct=0)
        uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                   install_date=dt.date(2026, 1, 5))
        uow.commit()
    out = ok(db, "service", "entitlement", "SN-1", "--date", "2026-06-01")
    assert "labour: covered 100% - standard warranty 'Pump 12 months' covers 100% of labour" in out
    assert "travel: billable 0%" in out
    assert "2026-01-05 to 2027-01-04: valid" in out
    later = ok(db, "service", "entitlement", "SN-1", "--date", "2027-02-01", "--type", "parts")
    assert "parts: billable 0% - no warranty or contract covers parts on 2027-02-01" in later
    assert "not valid on that day" in later
