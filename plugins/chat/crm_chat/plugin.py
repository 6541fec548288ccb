"""The chat's hook implementations (the entry point ``chat``): wiring only; the logic is in
the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, hookimpl

from crm_chat import access, hooks, mentions, seed
from crm_chat.entities import ENTITIES
from crm_chat.settings import ChatSettings

if TYPE_CHECKING:
    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record
    from crmcore.security import AccessContext, Restriction


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(ChatSettings.from_table(settings))


@hookimpl
def crm_before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None] | None:
    return hooks.before_create(uow, entity, items)


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    hooks.after_create(uow, entity, records)


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None] | None:
    return hooks.before_update(uow, entity, items)


@hookimpl
def crm_after_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]
) -> None:
    hooks.after_update(uow, entity, items)


@hookimpl
def crm_before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    hooks.before_delete(uow, entity, records)


@hookimpl
def crm_access_restrictions(
    context: AccessContext, entity: str, action: str
) -> list[Restriction] | None:
    return access.restrictions(context, entity, action)


@hookimpl
def crm_timeline_records(
    uow: UnitOfWork, entity: str, record_id: int
) -> dict[str, list[int]] | None:
    return mentions.timeline_records(uow, entity, record_id)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    return seed.seed(uow)


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_chat.cli import chat

    return [chat]


@hookimpl
def crm_demo(crm: Crm, echo: Any) -> None:
    from crm_chat.demo import tell

    tell(crm, echo)


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_chat.merging import RELATIONS

    return list(RELATIONS)
