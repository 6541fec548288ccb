"""The calendar plugin's hook implementations (the entry point ``calendar_sync``): wiring only;
the logic is in the modules beside this one."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_calendar_sync import links, schedule
from crm_calendar_sync.credentials import CalendarSettings
from crm_calendar_sync.entities import ACTIVITY_FIELDS, CALENDAR_KINDS, CONTACT_FIELDS, ENTITIES

if TYPE_CHECKING:
    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(CalendarSettings.from_table(settings))


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    if entity_type == "activity":
        return list(ACTIVITY_FIELDS)
    if entity_type == "contact":
        return list(CONTACT_FIELDS)
    return None


@hookimpl
def crm_before_create(entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    """Every calendar activity gets its iCalendar UID when it is made, once and for good."""
    if entity != "activity":
        return None
    return [{"ical_uid": f"{uuid.uuid4()}@crmcore"}
            if values.get("kind") in CALENDAR_KINDS and not values.get("ical_uid") else None
            for values in items]


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "calendar_account":
        schedule.on_accounts_created(uow, records)


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "calendar_account":
        schedule.on_accounts_deleted(uow, records)


@hookimpl
def crm_timeline_records(uow: UnitOfWork, entity: str, record_id: int) -> dict[str, list[int]] | None:
    """The archived e-mails involving a contact or an account join its timeline."""
    from crm_calendar_sync.archive import timeline_records

    return timeline_records(uow, entity, record_id)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return schedule.handlers()


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    return links.ensure_tables(uow.raw(links.PLUGIN_NAME))


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_calendar_sync.cli import calendar
    from crm_calendar_sync.contacts_cli import contacts
    from crm_calendar_sync.mail_cli import mail

    return [calendar, contacts, mail]


@hookimpl
def crm_demo(story: Story) -> None:
    from crm_calendar_sync.demo import tell

    tell(story)


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_calendar_sync.merging import RELATIONS

    return list(RELATIONS)
