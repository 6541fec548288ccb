"""The service plugin's hook implementations (the entry point ``service``): wiring only; the
logic is in the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore import EntityType, hookimpl

from crm_service import contracts, entitlement, jobs, units, warranty
from crm_service.entities import ENTITIES
from crm_service.settings import ServiceSettings

if TYPE_CHECKING:
    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_permissions() -> list[str]:
    return [entitlement.OVERRIDE_PERMISSION]


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(ServiceSettings.from_table(settings))


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity == "service_contract":
        for values in items:
            contracts.check_contract(uow, values)
    elif entity == "contract_item":
        for values in items:
            contracts.check_item(values)
    elif entity == "entitlement_override":
        for values in items:
            entitlement.check_override(uow, values)


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "installed_unit":
        warranty.stamp_units(uow, records)


@hookimpl
def crm_after_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]
) -> None:
    if entity == "installed_unit":
        dated = [new for old, new, *_ in items if _dates_set(old, new)]
        warranty.stamp_units(uow, dated)


def _dates_set(old: Record, new: Record) -> bool:
    return any(
        new.values.get(f) is not None and old.values.get(f) is None
        for f in warranty.EVENT_FIELDS.values()
    )


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> None:
    if entity == "service_contract":
        for record, changes in items:
            contracts.check_contract(uow, {**record.values, **changes})
    elif entity == "contract_item":
        for record, changes in items:
            contracts.check_item({**record.values, **changes})
    elif entity == "entitlement_override":
        for record, changes in items:
            entitlement.check_override(uow, {**record.values, **changes})
    if entity in units.TREE_ENTITIES:
        units.check_parents(
            uow,
            entity,
            [(r.id, c["parent_id"]) for r, c in items if c.get("parent_id") is not None],
        )


@hookimpl
def crm_before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "entitlement_override" and records:
        uow.require("entitlement_override", entitlement.OVERRIDE_PERMISSION)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return jobs.handlers()


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    if uow.query("job").where(kind=jobs.DAILY_JOB, status="queued").count():
        return []
    jobs.queue_daily(uow)
    return ["service daily job queued"]


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_service.cli import service

    return [service]
