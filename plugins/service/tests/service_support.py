"""Small helpers the service plugin's tests share (plain functions over the public API)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import Crm

#: A fixed day for decisions that depend on the date.
TODAY = dt.date(2026, 3, 2)


def account(crm: Crm, name: str = "Acme", **values: Any) -> int:
    with crm.unit_of_work() as uow:
        record = uow.create("account", name=name, **values)
        uow.commit()
    return record.id


def unit(crm: Crm, serial: str = "SN-1", product: str = "PUMP-1", **values: Any) -> Any:
    with crm.unit_of_work() as uow:
        record = uow.create(
            "installed_unit", serial_number=serial, product_code=product, **values
        )
        uow.commit()
    return record


def get(crm: Crm, entity: str, record_id: int) -> Any:
    with crm.unit_of_work() as uow:
        return uow.get(entity, record_id)
