"""Warranty terms, registrations stamped at delivery or installation, extended warranties."""

from __future__ import annotations

import datetime as dt

import pytest
from crmcore import ValidationError
from service_support import unit

from crm_service import warranty


@pytest.fixture
def crm(crm_factory):
    app = crm_factory(plugins=["service"])
    with app.unit_of_work() as uow:
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12,
                   travel_pct=0)
        uow.create("warranty_term", name="Pumps 6 months", applies_to="group", product="pumps",
                   months=6, starts_from="delivery", parts_pct=50)
        uow.create("warranty_term", name="Pump care +24", product="PUMP-1", months=24,
                   kind="extended", parts_pct=0)
        uow.commit()
    return app


def _registrations(crm, unit_id):
    with crm.unit_of_work() as uow:
        return warranty.warranties_of(uow, [unit_id])[unit_id]


def test_a_warranty_ends_the_day_before_its_anniversary() -> None:
    assert warranty.end_of(dt.date(2026, 1, 5), 12) == dt.date(2027, 1, 4)
    assert warranty.end_of(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 27)


def test_installing_a_unit_stamps_the_term_of_its_product(crm) -> None:
    pump = unit(crm, "SN-1", "PUMP-1", product_group="pumps", install_date=dt.date(2026, 1, 5))
    [reg] = _registrations(crm, pump.id)
    assert (reg["term_id.name"], reg["kind"]) == ("Pump 12 months", "standard")
    assert (reg["starts_on"], reg["ends_on"]) == (dt.date(2026, 1, 5), dt.date(2027, 1, 4))
    assert (reg["labour_pct"], reg["parts_pct"], reg["travel_pct"]) == (100, 100, 0)


def test_a_product_group_term_starts_at_delivery(crm) -> None:
    other = unit(crm, "SN-2", "PUMP-9", product_group="pumps")
    assert _registrations(crm, other.id) == []
    with crm.unit_of_work() as uow:
        uow.update("installed_unit", other.id, {"delivery_date": dt.date(2026, 2, 1)})
        uow.commit()
    [reg] = _registrations(crm, other.id)
    assert (reg["term_id.name"], reg["ends_on"], reg["parts_pct"]) == (
        "Pumps 6 months", dt.date(2026, 7, 31), 50)


def test_a_unit_is_stamped_once(crm) -> None:
    pump = unit(crm, "SN-1", "PUMP-1", install_date=dt.date(2026, 1, 5))
    with crm.unit_of_work() as uow:
        uow.update("installed_unit", pump.id, {"install_date": None})
        uow.update("installed_unit", pump.id, {"install_date": dt.date(2026, 3, 1)})
        uow.commit()
    assert len(_registrations(crm, pump.id)) == 1


def test_a_unit_without_a_term_gets_no_warranty(crm) -> None:
    other = unit(crm, "SN-3", "VALVE-1", install_date=dt.date(2026, 1, 5))
    assert _registrations(crm, other.id) == []


def test_many_units_are_stamped_in_one_batch(crm) -> None:
    with crm.unit_of_work() as uow:
        made = uow.create_many("installed_unit", [
            {"serial_number": f"B-{i}", "product_code": "PUMP-1",
             "install_date": dt.date(2026, 1, 1)} for i in range(30)
        ])
        uow.commit()
    with crm.unit_of_work() as uow:
        found = warranty.warranties_of(uow, [u.id for u in made])
    assert all(len(regs) == 1 for regs in found.values())


def test_an_extended_warranty_starts_when_the_last_one_ends(crm) -> None:
    pump = unit(crm, "SN-1", "PUMP-1", install_date=dt.date(2026, 1, 5))
    with crm.unit_of_work() as uow:
        term = uow.query("warranty_term").where(name="Pump care +24").first()
        reg = warranty.extend_warranty(uow, pump, term.id, reference="EXT-1")
        uow.commit()
    assert (reg.kind, reg.starts_on, reg.ends_on) == (
        "extended", dt.date(2027, 1, 5), dt.date(2029, 1, 4))
    assert reg.parts_pct == 0


def test_only_an_extended_term_extends(crm) -> None:
    pump = unit(crm, "SN-1", "PUMP-1", install_date=dt.date(2026, 1, 5))
    with crm.unit_of_work() as uow:
        term = uow.query("warranty_term").where(name="Pump 12 months").first()
        with pytest.raises(ValidationError, match="extend with an extended one"):
            warranty.extend_warranty(uow, pump, term.id)


def test_a_registration_shows_in_the_units_history(crm) -> None:
    pump = unit(crm, "SN-1", "PUMP-1", install_date=dt.date(2026, 1, 5))
    with crm.unit_of_work() as uow:
        entities = {e.entity for e in uow.timeline("installed_unit", pump.id)}
    assert "warranty_registration" in entities
