"""The service plugin's hook implementations (the entry point ``service``): wiring only; the
logic is in the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_service import (
    contracts,
    entitlement,
    hookspecs,
    jobs,
    orders,
    phoneindex,
    planned,
    units,
    warranty,
)
from crm_service.entities import ACTIVITY_FIELDS, DOCUMENT_FIELDS, ENTITIES
from crm_service.settings import ServiceSettings

if TYPE_CHECKING:
    import click
    import pluggy
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record
    from crmcore.workflow import Pipeline


@hookimpl
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_permissions() -> list[str]:
    return [entitlement.OVERRIDE_PERMISSION, orders.REPRICE_PERMISSION]


@hookimpl
def crm_pipelines() -> list[Pipeline]:
    return [orders.pipeline()]


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    if entity_type == "activity":
        return list(ACTIVITY_FIELDS)
    if entity_type == "document":
        return list(DOCUMENT_FIELDS)
    return None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(ServiceSettings.from_table(settings))


@hookimpl
def crm_before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None] | None:
    if entity == "work_line":
        return list(orders.price_lines(uow, items))
    if entity == "plan_occurrence":
        return [planned.key_change(values) for values in items]
    if entity == "plan_exception":
        for values in items:
            planned.check_exception(values)
    if entity == "service_contract":
        for values in items:
            contracts.check_contract(uow, values)
    elif entity == "contract_item":
        for values in items:
            contracts.check_item(values)
    elif entity == "entitlement_override":
        for values in items:
            entitlement.check_override(uow, values)
    return None


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "installed_unit":
        warranty.stamp_units(uow, records)
    elif entity in phoneindex.FIELDS:
        phoneindex.index(uow, entity, records)


@hookimpl
def crm_after_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]
) -> None:
    if entity == "installed_unit":
        dated = [new for old, new, *_ in items if _dates_set(old, new)]
        warranty.stamp_units(uow, dated)
    elif entity in phoneindex.FIELDS:
        phoneindex.index(uow, entity, phoneindex.changed(items, entity))


def _dates_set(old: Record, new: Record) -> bool:
    return any(
        new.values.get(f) is not None and old.values.get(f) is None
        for f in warranty.EVENT_FIELDS.values()
    )


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None] | None:
    if entity == "work_line":
        return _reprice(uow, items)
    if entity == "service_contract":
        for record, changes in items:
            contracts.check_contract(uow, {**record.values, **changes})
    elif entity == "contract_item":
        for record, changes in items:
            contracts.check_item({**record.values, **changes})
    elif entity == "entitlement_override":
        for record, changes in items:
            entitlement.check_override(uow, {**record.values, **changes})
    elif entity == "plan_exception":
        for record, changes in items:
            planned.check_exception({**record.values, **changes})
    elif entity == "plan_occurrence":
        return [_rekey(record, changes) for record, changes in items]
    if entity in units.TREE_ENTITIES:
        units.check_parents(
            uow,
            entity,
            [(r.id, c["parent_id"]) for r, c in items if c.get("parent_id") is not None],
        )
    return None


@hookimpl
def crm_before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "entitlement_override" and records:
        uow.require("entitlement_override", entitlement.OVERRIDE_PERMISSION)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity in phoneindex.FIELDS:
        phoneindex.forget(uow, entity, [r.id for r in records])


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return jobs.handlers()


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    done = phoneindex.ensure(uow)
    if not uow.query("job").where(kind=jobs.DAILY_JOB, status="queued").count():
        jobs.queue_daily(uow)
        done.append("service daily job queued")
    return done


def _rekey(record: Record, changes: dict[str, Any]) -> dict[str, Any] | None:
    if "plan_id" not in changes and "rule_date" not in changes and "key" not in changes:
        return None
    return planned.key_change({**record.values, **changes})


def _reprice(
    uow: UnitOfWork, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None]:
    touched = [i for i, (_, changes) in enumerate(items)
               if any(f in changes for f in orders.PRICE_FIELDS)]
    result: list[dict[str, Any] | None] = [None] * len(items)
    if touched:
        priced = orders.price_lines(
            uow, [{**items[i][0].values, **items[i][1]} for i in touched],
            old=[items[i][0] for i in touched])
        for i, values in zip(touched, priced, strict=True):
            result[i] = values
    return result


@hookimpl
def crm_before_move(
    uow: UnitOfWork, entity: str, moves: list[tuple[Record, Any, Any]]
) -> None:
    if entity == "service_order":
        orders.check_done(uow, moves)
        orders.check_uninvoiced(uow, moves)


@hookimpl
def crm_after_move(
    uow: UnitOfWork, entity: str, moves: list[tuple[Record, Record, str | None, str | None]]
) -> None:
    if entity == "service_order":
        orders.uninvoice(uow, [new for _, new, source, target in moves
                               if source == "invoiced" and target == "done"])
        orders.invoice(uow, [new for _, new, _, target in moves if target == "invoiced"])


@hookimpl
def crm_demo(crm: Crm, echo: Any, story: Any) -> None:
    from crm_service.demo import tell

    tell(crm, echo, story)


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_service.cli import service

    return [service]


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_service.merging import RELATIONS

    return list(RELATIONS)
