"""The service plugin's hook implementations (the entry point ``service``): wiring only; the
logic is in the modules beside this one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore import EntityType, hookimpl

from crm_service import units
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
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(ServiceSettings.from_table(settings))


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> None:
    if entity in units.TREE_ENTITIES:
        units.check_parents(
            uow,
            entity,
            [(r.id, c["parent_id"]) for r, c in items if c.get("parent_id") is not None],
        )


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_service.cli import service

    return [service]
