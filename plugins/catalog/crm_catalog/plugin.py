"""The catalog's hook implementations (the entry point ``catalog``): wiring only; the logic is
in the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_catalog import checks
from crm_catalog.entities import ACCOUNT_FIELDS, ENTITIES, OPPORTUNITY_LINE_FIELDS
from crm_catalog.settings import CatalogSettings

if TYPE_CHECKING:
    import click
    import pluggy
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record

#: The entities whose saves :mod:`crm_catalog.checks` checks.
CHECKED = frozenset({"product_group", "price_list", "price_list_line", "customer_discount"})


@hookimpl
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    from crm_catalog import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    if entity_type == "account":
        return list(ACCOUNT_FIELDS)
    if entity_type == "opportunity_line":
        return list(OPPORTUNITY_LINE_FIELDS)
    return None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(CatalogSettings.from_table(settings))


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity in CHECKED:
        checks.check_batch(uow, entity, items)


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "vendor_product":
        checks.flag_vendors(uow, records)
    elif entity == "price_list_line":
        checks.check_ties(uow, records)


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> None:
    if entity in CHECKED:
        checks.check_batch(uow, entity, [{**record.merged(changes), "id": record.id} for record, changes in items])


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    if entity == "vendor_product":
        checks.flag_vendors(uow, [new for _, new, changes in items if "vendor_id" in changes])
    elif entity == "price_list_line":
        scoped = ("price_list_id", "product_id", "group_id", "priority")
        checks.check_ties(uow, [new for _, new, changes in items if any(name in changes for name in scoped)])
    elif entity in ("product", "product_group"):  # a product or group moved: its lines may meet others
        checks.check_moved(uow, entity, [new.id for _, new, changes in items
                                         if ("group_id" if entity == "product" else "parent_id") in changes])


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    from crmcore.jobs import QUEUED, RUNNING

    from crm_catalog.tiers import JOB_KIND, queue_tier_job

    if uow.query("job").where(("status", "in", (QUEUED, RUNNING)), kind=JOB_KIND).count():
        return []
    queue_tier_job(uow)
    return ["discount tier job queued"]


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    from crm_catalog.tiers import JOB_KIND, run_tier_job

    return {JOB_KIND: run_tier_job}


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_catalog.cli import catalog, price

    return [catalog, price]


@hookimpl
def crm_demo(story: Story) -> None:
    from crm_catalog.demo import tell

    tell(story)
