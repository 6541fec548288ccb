"""The installed base: units, components, the location tree, history and CSV import."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from crmcore import ValidationError
from crmcore.transfer import ImportFailedError
from service_support import account, get, unit

from crm_service import units


@pytest.fixture
def crm(crm_factory):
    return crm_factory(plugins=["service"])


def test_a_unit_keeps_its_product_account_place_and_dates(crm) -> None:
    acme = account(crm)
    with crm.unit_of_work() as uow:
        site = uow.create("location", name="Plant", account_id=acme, city="Blumenau")
        hall = uow.create("location", name="Hall 2", account_id=acme, parent_id=site.id)
        pump = uow.create(
            "installed_unit",
            serial_number="SN-100",
            product_code="PUMP-1",
            product_name="Pump",
            account_id=acme,
            location_id=hall.id,
            install_date=dt.date(2026, 1, 5),
        )
        assert units.location_path(uow, pump.location_id) == ["Plant", "Hall 2"]
        assert units.locations_below(uow, [site.id]) == {site.id: {site.id, hall.id}}
        uow.commit()
    found = get(crm, "installed_unit", pump.id)
    assert (found.status, found.install_date) == ("active", dt.date(2026, 1, 5))


def test_serial_numbers_are_unique(crm) -> None:
    unit(crm, "SN-1")
    with pytest.raises(ValidationError, match="SN-1"):
        unit(crm, "SN-1")


def test_components_are_listed_depth_first(crm) -> None:
    machine = unit(crm, "M-1", "MACHINE")
    motor = unit(crm, "MO-1", "MOTOR", parent_id=machine.id)
    unit(crm, "BR-1", "BEARING", parent_id=motor.id)
    unit(crm, "PA-1", "PANEL", parent_id=machine.id)
    with crm.unit_of_work() as uow:
        found = [(d, u.serial_number) for d, u in units.components(uow, machine.id)]
    assert found == [(1, "MO-1"), (2, "BR-1"), (1, "PA-1")]


def test_a_unit_cannot_become_a_component_of_its_own_component(crm) -> None:
    machine = unit(crm, "M-1", "MACHINE")
    motor = unit(crm, "MO-1", "MOTOR", parent_id=machine.id)
    bearing = unit(crm, "BR-1", "BEARING", parent_id=motor.id)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="installed_unit"):
        uow.update("installed_unit", machine.id, {"parent_id": bearing.id})
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="its own parent"):
        uow.update("installed_unit", machine.id, {"parent_id": machine.id})
    with crm.unit_of_work() as uow:
        uow.update("installed_unit", bearing.id, {"parent_id": machine.id})
        uow.commit()


def test_a_location_cannot_move_inside_itself(crm) -> None:
    with crm.unit_of_work() as uow:
        site = uow.create("location", name="Site")
        room = uow.create("location", name="Room", parent_id=site.id)
        with pytest.raises(ValidationError, match="location"):
            uow.update("location", site.id, {"parent_id": room.id})


def test_the_history_of_a_unit_holds_its_changes_and_its_components(crm) -> None:
    machine = unit(crm, "M-1", "MACHINE")
    motor = unit(crm, "MO-1", "MOTOR", parent_id=machine.id)
    with crm.unit_of_work() as uow:
        uow.update("installed_unit", machine.id, {"status": "in_repair"})
        uow.commit()
    with crm.unit_of_work() as uow:
        history = units.unit_history(uow, machine.id)
    assert ("installed_unit", machine.id, "updated") in [
        (e.entity, e.record_id, e.action) for e in history
    ]
    assert any(e.record_id == motor.id for e in history)


def test_units_import_from_csv_and_a_known_serial_updates(crm, tmp_path: Path) -> None:
    acme = account(crm)
    path = tmp_path / "units.csv"
    path.write_text(
        "Serial Number,Product Code,Product Name,Account,Install Date\n"
        f"SN-1,PUMP-1,Pump,{acme},2026-01-05\n"
        f"SN-2,PUMP-2,Big pump,{acme},\n"
    )
    assert units.import_units(crm, path).created == 2
    path.write_text("Serial Number,Product Code,Status\nSN-1,PUMP-1,in_repair\n")
    assert units.import_units(crm, path).updated == 1
    with crm.unit_of_work() as uow:
        assert units.find_unit(uow, "SN-1").status == "in_repair"
        assert units.find_unit(uow, "SN-2").account_id == acme


def test_a_bad_import_row_is_named(crm, tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text("Serial Number,Product Code,Install Date\nSN-1,PUMP-1,yesterday\n")
    with pytest.raises(ImportFailedError, match="yesterday"):
        units.import_units(crm, path)
