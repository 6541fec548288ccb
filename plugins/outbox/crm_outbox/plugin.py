"""The outbox's hook implementations (the entry point ``outbox``): wiring only; the logic is in
the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, hookimpl

from crm_outbox import access
from crm_outbox.delivery import DELIVER_JOB, deliver_job
from crm_outbox.entities import OUTBOX_REQUEST
from crm_outbox.settings import parse_settings

if TYPE_CHECKING:
    import click
    import pluggy
    from crmcore import Crm
    from crmcore.security import AccessContext, Restriction


@hookimpl
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    from crm_outbox import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return [OUTBOX_REQUEST]


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    types = [(part.plugin, part.result) for part in crm.plugins.call_each("outbox_sinks")]
    crm.set_state(parse_settings(settings, crm.settings.sections.get("outbox"), types))


@hookimpl
def crm_permissions() -> list[str]:
    return list(access.PERMISSIONS)


@hookimpl
def crm_access_restrictions(
    context: AccessContext, entity: str, action: str
) -> list[Restriction] | None:
    return access.restrictions(context, entity, action)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return {DELIVER_JOB: deliver_job}


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_outbox.cli import outbox

    return [outbox]


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_outbox.merging import RELATIONS

    return list(RELATIONS)
