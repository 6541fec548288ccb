"""The scheduling plugin's hook implementations (the entry point ``scheduling``): wiring only;
the logic is in the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_scheduling import booking, hookspecs, territories, watch
from crm_scheduling.entities import ACTIVITY_FIELDS, ENTITIES, ORDER_FIELDS
from crm_scheduling.settings import SchedulingSettings

if TYPE_CHECKING:
    import click
    import pluggy
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record


@hookimpl
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    if entity_type == "service_order":
        return list(ORDER_FIELDS)
    if entity_type == "activity":
        return list(ACTIVITY_FIELDS)
    return None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(SchedulingSettings.from_table(settings))


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity == "booking":
        booking.check_bookings(uow, items)
    elif entity == "absence":
        for values in items:
            territories.check_span(values)
    elif entity == "territory":
        territories.check_geography(uow, items)


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str,
                      items: list[tuple[Record, dict[str, Any]]]) -> None:
    if entity == "booking":
        moved = [(r, c) for r, c in items if any(f in c for f in booking.TIME_FIELDS)]
        booking.check_bookings(uow, [{**r.values, **c} for r, c in moved],
                               ignore=[r.id for r, _ in moved])
    elif entity == "absence":
        for record, changes in items:
            territories.check_span({**record.values, **changes})
    elif entity == "territory":
        territories.check_geography(uow, [c for _, c in items])
        territories.check_parents(uow, [(r.id, c["parent_id"]) for r, c in items
                                        if c.get("parent_id") is not None])


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity in watch.WATCHED and entity not in ("resource", "service_order"):  # no bookings yet
        watch.after_write(uow, entity, watch.values_of(records))


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str,
                     items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    if entity == "booking":
        moved = [new for _, new, changes in items
                 if new.values.get("conflict") and any(f in changes for f in booking.TIME_FIELDS)]
        if moved:
            watch.recheck(uow, watch.values_of(moved))
        return
    if entity not in watch.WATCHED:
        return
    changed = {name for _, _, changes in items for name in changes}
    rows = watch.values_of([old for old, _, _ in items] + [new for _, new, _ in items])
    watch.after_write(uow, entity, rows, changed)


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity in watch.WATCHED and entity not in ("resource", "service_order"):  # cascaded
        watch.after_write(uow, entity, watch.values_of(records))


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_demo(crm: Crm, echo: Any, story: Any) -> None:
    from crm_scheduling.demo import tell

    tell(crm, echo, story)


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_scheduling.cli import schedule

    return [schedule]


@hookimpl
def crm_merge_relations() -> list[Any]:
    from crm_scheduling.merging import RELATIONS

    return list(RELATIONS)
