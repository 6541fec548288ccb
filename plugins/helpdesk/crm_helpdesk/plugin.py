"""The help desk's hook implementations (the entry point ``helpdesk``): wiring only; the logic
is in the modules beside this one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_helpdesk import access, checks, escalation, seed, tickets, workflow
from crm_helpdesk.entities import ACCOUNT_FIELDS, ACTIVITY_FIELDS, ENTITIES
from crm_helpdesk.settings import HelpdeskSettings
from crm_helpdesk.tickets import ASSIGN_PERMISSION

if TYPE_CHECKING:
    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record
    from crmcore.security import AccessContext, Grant, Restriction
    from crmcore.workflow import Pipeline, PipelineBuilder


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    if entity_type == "account":
        return list(ACCOUNT_FIELDS)
    if entity_type == "activity":
        return list(ACTIVITY_FIELDS)
    return None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(HelpdeskSettings.from_table(settings))


@hookimpl
def crm_permissions() -> list[str]:
    return [ASSIGN_PERMISSION, workflow.CLOSE_PERMISSION, workflow.PUBLISH_PERMISSION]


@hookimpl
def crm_pipelines() -> list[Pipeline]:
    return workflow.pipelines()


@hookimpl
def crm_extend_pipeline(pipeline: PipelineBuilder, settings: dict[str, Any]) -> None:
    if pipeline.name == workflow.TICKET_PIPELINE:
        workflow.add_reopen_guards(pipeline, settings["reopen_window_days"])


@hookimpl
def crm_before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None]:
    return [_before_create(uow, entity, values) for values in items]


def _before_create(uow: UnitOfWork, entity: str, values: dict[str, Any]) -> dict[str, Any] | None:
    checks.check(entity, values)
    if entity == "ticket":
        return tickets.on_create(uow, values)
    if entity == "activity":
        return tickets.on_activity_create(uow, values)
    return None


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "activity":
        for record in records:
            tickets.on_activity_created(uow, record)


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None]:
    return [_before_update(uow, record, changes) for record, changes in items]


def _before_update(
    uow: UnitOfWork, record: Record, changes: dict[str, Any]
) -> dict[str, Any] | None:
    if checks.applies(record.entity):
        checks.check(record.entity, {**record.values, **changes})
    if record.entity == "ticket":
        return tickets.on_update(uow, record, changes)
    if record.entity == "activity":
        tickets.on_activity_update(uow, changes)
        return None
    if record.entity == "kb_article" and changes.get("status") == "published":
        return {"published_at": dt.datetime.now(dt.UTC)}
    return None


@hookimpl
def crm_after_move(
    uow: UnitOfWork, entity: str, moves: list[tuple[Record, Record, str | None, str | None]]
) -> None:
    if entity == "ticket":
        for old, new, source, target in moves:
            tickets.on_moved(uow, old, new, source, target)


@hookimpl
def crm_access_grants(context: AccessContext, entity: str, action: str) -> list[Grant] | None:
    return access.grants(context, entity, action)


@hookimpl
def crm_access_restrictions(
    context: AccessContext, entity: str, action: str
) -> list[Restriction] | None:
    return access.restrictions(context, entity, action)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    return seed.seed(uow)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return escalation.handlers()


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_helpdesk.cli import helpdesk

    return [helpdesk]


@hookimpl
def crm_demo(crm: Crm, echo: Any) -> None:
    from crm_helpdesk.demo import tell

    tell(crm, echo)
