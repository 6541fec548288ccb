"""The orders plugin's hook implementations (the entry point ``orders``): wiring only; the
logic is in the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, hookimpl

from crm_orders import access, checks, documents, following, fulfilment, jobs, orders, quotes, revenue, workflow
from crm_orders.entities import ENTITIES
from crm_orders.settings import OrdersSettings

if TYPE_CHECKING:
    import datetime as dt

    import click
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record
    from crmcore.security import AccessContext, Restriction
    from crmcore.workflow import Pipeline

_DOCUMENTS = ("quote", "sales_order")
_LINES = ("quote_line", "sales_order_line")


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(OrdersSettings.from_table(settings))
    crm.set_state(documents.PendingTotals())


@hookimpl
def crm_pipelines() -> list[Pipeline]:
    return workflow.pipelines()


@hookimpl
def crm_access_restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    return access.restrictions(context, entity, action)


# -- records ----------------------------------------------------------------------------------


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    if entity in _DOCUMENTS:
        checks.check_documents(entity, items)
        return documents.take_prepared(uow, entity, len(items))
    if entity in _LINES:
        checks.check_lines(uow, entity, items)
    return None


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity in _LINES:
        documents.mark(uow, entity, [r.values for r in records])


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> None:
    if entity in _DOCUMENTS:
        checks.check_documents(entity, [changes for _, changes in items])
    elif entity in _LINES:
        checks.check_lines(uow, entity, [record.merged(changes) for record, changes in items],
                           old=[record for record, _ in items])


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    if entity in _LINES:
        documents.mark(uow, entity, [*(old.values for old, _, _ in items), *(new.values for _, new, _ in items)])
    elif entity in _DOCUMENTS:
        repriced = [new.id for _, new, changes in items if not documents.PRICING_FIELDS_SET.isdisjoint(changes)]
        if repriced:
            documents.mark_documents(uow, entity, repriced)
        if entity == "quote":
            followed = [new for _, new, changes in items if "net_total" in changes or "is_current" in changes]
            if followed:
                following.follow_amounts(uow, followed)


@hookimpl
def crm_before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity in _LINES:
        checks.check_lines(uow, entity, [], old=records)


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity in _LINES:
        documents.mark(uow, entity, [r.values for r in records])


@hookimpl
def crm_before_commit(uow: UnitOfWork) -> None:
    documents.refresh_pending(uow)


@hookimpl
def crm_before_move(uow: UnitOfWork, entity: str, moves: list[tuple[Record, Any, Any]]) -> None:
    if entity == "quote":
        quotes.check_sends(uow, [record for record, transition, _ in moves if transition.target == "sent"])


@hookimpl
def crm_after_move(uow: UnitOfWork, entity: str, moves: list[tuple[Record, Record, str | None, str | None]]) -> None:
    if entity == "sales_order":
        orders.on_moved(uow, moves)


# -- other plugins' hooks -----------------------------------------------------------------------


@hookimpl
def outbox_answered(uow: UnitOfWork, items: list[tuple[Record, str, str]]) -> None:
    fulfilment.follow_answers(uow, items)


@hookimpl
def catalog_revenue(uow: UnitOfWork, account_ids: list[int], since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    return revenue.confirmed_revenue(uow, account_ids, since, until)


# -- set-up, jobs, commands, demo ---------------------------------------------------------------


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    return jobs.seed(uow)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return jobs.handlers()


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_orders.cli import orders_group, quotes_group

    return [quotes_group, orders_group]


@hookimpl
def crm_demo(story: Story) -> None:
    from crm_orders.demo import tell

    tell(story)
