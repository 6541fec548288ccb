"""The marketing plugin's hook implementations (the entry point ``marketing``): wiring only; the
logic is in the modules beside this one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_marketing import attribution, geography, plans, segments
from crm_marketing.entities import (
    ACCOUNT_FIELDS,
    CONTACT_FIELDS,
    ENTITIES,
    LEAD_FIELDS,
    OPPORTUNITY_FIELDS,
)
from crm_marketing.settings import MarketingSettings

if TYPE_CHECKING:
    import click
    import pluggy
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record

_EXTENSIONS = {
    "account": ACCOUNT_FIELDS,
    "contact": CONTACT_FIELDS,
    "lead": LEAD_FIELDS,
    "opportunity": OPPORTUNITY_FIELDS,
}


@hookimpl
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    from crm_marketing import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    fields = _EXTENSIONS.get(entity_type)
    return list(fields) if fields else None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(MarketingSettings.from_table(settings))


@hookimpl
def crm_before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None] | None:
    if entity == "lead":
        return attribution.resolve_codes(uow, items)
    return None


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "lead":
        attribution.record_lead_touches(uow, records)
    elif entity == "campaign":
        attribution.adopt_leads(uow, records)


@hookimpl
def crm_before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None] | None:
    if entity == "geography":
        geography.check_parent(
            uow, [(r.id, c["parent_id"]) for r, c in items if "parent_id" in c]
        )
    elif entity == "lead":
        coded = [changes if "campaign_code" in changes else {} for _, changes in items]
        return attribution.resolve_codes(uow, coded)
    return None


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    if entity == "lead":
        attribution.record_lead_touches(
            uow, [new for old, new, _ in items if new.values.get("campaign_id") != old.values.get("campaign_id")]
        )


@hookimpl
def crm_before_commit(uow: UnitOfWork) -> None:
    segments.check_changed_segments(uow)


@hookimpl(trylast=True)
def marketing_actuals(
    uow: UnitOfWork, period: tuple[dt.date, dt.date], dimensions: Sequence[str], accounts: Sequence[int] | None
) -> list[dict[str, Any]]:
    return plans.builtin_actuals(uow, period, dimensions, accounts)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    from crm_marketing.campaigns import handlers

    return handlers()


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_marketing.cli import campaigns_group, marketing, plans_group, segments_group

    return [marketing, segments_group, plans_group, campaigns_group]


@hookimpl
def crm_demo(story: Story) -> None:
    from crm_marketing.demo import tell

    tell(story)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_marketing.merging import RELATIONS

    return list(RELATIONS)
