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


def test_orders_and_leakage(db: str, crm_factory: Any, tmp_path: Path) -> None:
    import datetime as dt

    app = crm_factory(plugins=["service"], database=db)
    with app.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        tess = uow.create("user", username="tess")
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12,
                   travel_pct=0)
        pump = uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                          account_id=acme.id, install_date=dt.date(2026, 1, 5))
        order = uow.create("service_order", subject="Pump leaks", account_id=acme.id)
        uow.create("order_technician", order_id=order.id, user_id=tess.id)
        report = uow.create("work_report", order_id=order.id, work_date=dt.date(2026, 6, 1),
                            signed_by="J. Customer")
        uow.create("work_line", report_id=report.id, unit_id=pump.id, line_type="labour",
                   quantity="2", technician_id=tess.id)
        uow.create("work_line", report_id=report.id, unit_id=pump.id, line_type="travel",
                   quantity="10", technician_id=tess.id)
        uow.commit()
    assert "[new] normal Acme: Pump leaks" in ok(db, "service", "orders")
    shown = ok(db, "service", "orders", "show", str(order.id))
    assert "technician tess" in shown and "signed by J. Customer" in shown
    assert "labour  2.00 x 80.00 EUR = 160.00 EUR; covered 100%, charge 0.00 EUR" in shown
    pdf = tmp_path / "report.pdf"
    assert f"work report {report.id} written to" in ok(
        db, "service", "orders", "print", str(report.id), str(pdf))
    assert pdf.read_bytes().startswith(b"%PDF-")
    clean = ok(db, "service", "leakage", "--from", "2026-06-01", "--to", "2026-06-30")
    assert "2 lines checked, no leakage" in clean
    with app.unit_of_work() as uow:
        line = uow.query("work_line").where(line_type="labour").first()
        uow.update(line, charge="160.00 EUR", charge_reason="billed by mistake")
        uow.commit()
    found = ok(db, "service", "leakage", "--from", "2026-06-01", "--to", "2026-06-30",
               "--technician", "tess")
    assert "1 billed while covered, 0 free while not covered" in found
    assert "at stake 160.00 EUR" in found and "charge reason: billed by mistake" in found


def test_plans_preview_generate_and_skip(db: str, crm_factory: Any) -> None:
    import datetime as dt

    app = crm_factory(plugins=["service"], database=db)
    with app.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        plan = uow.create("service_plan", name="Pump check", account_id=acme.id,
                          rule="FREQ=WEEKLY;BYDAY=MO", starts_on=dt.date(2026, 3, 2),
                          timezone="Europe/Berlin", horizon_days=14)
        uow.commit()
    assert "Pump check (Acme): FREQ=WEEKLY;BYDAY=MO at 09:00 Europe/Berlin" in ok(
        db, "service", "plans")
    shown = ok(db, "service", "plans", "preview", str(plan.id), "--from", "2026-03-23",
               "--to", "2026-03-30")
    assert "2026-03-23 -> 2026-03-23 09:00 CET [planned]" in shown
    assert "2026-03-30 -> 2026-03-30 09:00 CEST [planned]" in shown
    ok(db, "service", "plans", "skip", str(plan.id), "2026-03-30", "--reason", "closed")
    assert "1 plans: 2 occurrences and 2 service orders created" in ok(
        db, "service", "plans", "generate", "--today", "2026-03-23")
    assert "0 occurrences" in ok(db, "service", "plans", "generate", "--today", "2026-03-23")


def test_caller_finds_and_logs(db: str, crm_factory: Any) -> None:
    app = crm_factory(plugins=["service"], database=db)
    with app.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        uow.create("contact", first_name="Ana", last_name="Silva", account_id=acme.id,
                   mobile="+55 47 99638-1719")
        order = uow.create("service_order", subject="Pump leaks", account_id=acme.id)
        uow.commit()
    out = ok(db, "service", "caller", "+55", "47", "99638-1719", "--log", "When?",
             "--order", str(order.id))
    assert "contact 1 Ana Silva" in out and "account 1 Acme" in out
    assert f"service order {order.id} [new] Pump leaks" in out
    assert "call logged as activity" in out
    assert "nobody has the number" in ok(db, "service", "caller", "+49 30 1234567")


def test_penalties_are_recorded_and_listed(db: str, crm_factory: Any) -> None:
    import datetime as dt

    app = crm_factory(plugins=["service"], database=db)
    with app.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        contract = uow.create("service_contract", number="SC-9", account_id=acme.id,
                              starts_on=dt.date(2026, 1, 1), ends_on=dt.date(2099, 12, 31),
                              penalty_amount="50.00 EUR")
        end = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
        uow.create("service_order", subject="Visit", account_id=acme.id,
                   contract_id=contract.id, window_end=end)
        uow.commit()
    out = ok(db, "service", "penalties", "--from", "2026-02-01", "--to", "2026-02-28",
             "--record")
    assert "1 new breaches recorded" in out and "contract SC-9: 1 breaches, 50.00 EUR" in out
