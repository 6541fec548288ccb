"""The documents plugin's hook implementations (the entry point ``documents``): wiring only;
the logic is in the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_documents import access, contracts, hooks, seed
from crm_documents.entities import DOCUMENT_FIELDS, ENTITIES
from crm_documents.settings import DocumentsSettings

if TYPE_CHECKING:
    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record
    from crmcore.security import AccessContext, Restriction

_SCHEDULING = frozenset({"kind", "valid_until", "notice_days", "notice_date"})


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    return list(DOCUMENT_FIELDS) if entity_type == "document" else None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(DocumentsSettings.from_table(settings))


@hookimpl
def crm_before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None] | None:
    return hooks.before_create(uow, entity, items)


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    hooks.after_write(uow, entity, records)


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None] | None:
    return hooks.before_update(uow, entity, items)


@hookimpl
def crm_after_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]
) -> None:
    hooks.after_write(
        uow, entity, [new for _old, new, changes in items if _SCHEDULING & set(changes)]
    )


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    hooks.after_delete(uow, entity, records)


@hookimpl
def crm_access_restrictions(
    context: AccessContext, entity: str, action: str
) -> list[Restriction] | None:
    return access.restrictions(context, entity, action)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return contracts.handlers()


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    return seed.seed(uow)


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_documents.cli import documents

    return [documents]


@hookimpl
def crm_demo(crm: Crm, echo: Any, story: Story) -> None:
    from crm_documents.demo import tell

    tell(crm, echo, today=story.today)


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_documents.merging import RELATIONS

    return list(RELATIONS)
