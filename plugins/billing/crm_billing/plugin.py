"""The billing plugin's hook implementations (the entry point ``billing``): wiring only; the
logic is in the modules beside this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmcore import EntityType, Field, hookimpl

from crm_billing import invoices, jobs, revenue, seed
from crm_billing.entities import ACCOUNT_FIELDS, ENTITIES
from crm_billing.settings import BillingSettings

if TYPE_CHECKING:
    import datetime as dt

    import click
    import pluggy
    from crmcore import Crm, UnitOfWork
    from crmcore.demo import Story
    from crmcore.records import Record


@hookimpl
def crm_add_hookspecs(plugin_manager: pluggy.PluginManager) -> None:
    from crm_billing import hookspecs

    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    return list(ACCOUNT_FIELDS) if entity_type == "account" else None


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    crm.set_state(BillingSettings.from_table(settings))
    crm.set_state(invoices.PendingInvoices())


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity == "invoice_line":
        invoices.check_line_writes(uow, [item.get("invoice_id") for item in items])


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "invoice_line":
        invoices.mark_lines(uow, [r.values for r in records])


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> None:
    if entity == "invoice":
        invoices.check_invoice_update(items)
    elif entity == "invoice_line":
        invoices.check_line_writes(uow, [r.invoice_id for r, _ in items] + [c.get("invoice_id") for _, c in items])


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    if entity == "invoice_line":
        invoices.mark_lines(uow, [*(old.values for old, _, _ in items), *(new.values for _, new, _ in items)])


@hookimpl
def crm_before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "invoice_line":
        invoices.check_line_writes(uow, [r.invoice_id for r in records])
    elif entity == "invoice":
        posted = [r for r in records if r.state != "draft"]
        if posted:
            from crmcore.errors import ValidationError

            raise ValidationError({"state": [
                f"invoice {posted[0].number or posted[0].id} is {posted[0].state!r}; only drafts are deleted"]})


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "invoice_line":
        invoices.mark_lines(uow, [{"invoice_id": r.invoice_id} for r in records])


@hookimpl
def crm_before_commit(uow: UnitOfWork) -> None:
    invoices.refresh_pending(uow)


@hookimpl
def catalog_revenue(uow: UnitOfWork, account_ids: list[int], since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    return revenue.invoiced_revenue(uow, account_ids, since, until)


@hookimpl(optionalhook=True)
def service_invoice_lines(uow: UnitOfWork, order: Record, lines: list[Record]) -> str | None:
    """The service plugin's hook (only when it is enabled): billable work becomes invoice lines."""
    from crm_billing.service_work import invoice_work_lines

    return invoice_work_lines(uow, order, lines)


@hookimpl(optionalhook=True)
def service_invoice_held(uow: UnitOfWork, order: Record, lines: list[Record]) -> str | None:
    """The service plugin's hook (only when it is enabled): the invoice still holding an order's work."""
    from crm_billing.service_work import invoice_holding

    return invoice_holding(uow, order, lines)


@hookimpl
def billing_recurring_revenue(uow: UnitOfWork, account_ids: list[int] | None, since: dt.date,
                              until: dt.date) -> list[dict[str, Any]] | None:
    """Billing's own hook, answered for the service plugin's contracts when it is enabled."""
    from crm_billing.service_work import contract_revenue

    return contract_revenue(uow, account_ids, since, until)


@hookimpl(optionalhook=True)
def service_contract_fee(uow: UnitOfWork, contract: Record, first: dt.date, last: dt.date) -> str | None:
    """The service plugin's hook (only when it is enabled): a contract period's fee becomes an invoice line."""
    from crm_billing.service_work import bill_contract_fee

    return bill_contract_fee(uow, contract, first, last)


@hookimpl
def crm_migrations() -> str:
    return str(Path(__file__).resolve().parent / "migrations" / "versions")


@hookimpl
def crm_seed(uow: UnitOfWork) -> list[str]:
    return [*seed.seed(uow), *jobs.seed(uow)]


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    from crm_billing.cli import dunning_group, invoices_group, payments_group, revenue_group

    return [invoices_group, payments_group, dunning_group, revenue_group]


@hookimpl
def crm_demo(story: Story) -> None:
    from crm_billing.demo import tell

    tell(story)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return jobs.handlers()
