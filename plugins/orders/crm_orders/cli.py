"""``crm quotes new|send|revise|accept|reject|pdf|show`` and ``crm orders
new|confirm|cancel|show|pdf``.

Each command runs in one unit of work as :func:`crmcore.cli.current_actor` and commits when it
succeeds; errors are one line naming the record and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json

from crm_orders import documents
from crm_orders.orders import cancel_order, confirm_order, order_from_opportunity, order_from_quote
from crm_orders.printing import render_document
from crm_orders.quotes import accept_quote, new_quote, quote_from_opportunity, reject_quote, revise_quote, send_quote

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record

__all__ = ["orders_group", "quotes_group"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _summary(record: Record) -> str:
    values = record.values
    total = values.get("grand_total")
    version = f" v{values.get('version_number')}" if record.entity == "quote" else ""
    return (f"{record.entity} {record.id}{version} [{values.get('state')}] {values.get('title')}: "
            f"net {values.get('net_total') or '-'}, total {total or '-'}")


def _show(crm: Crm, uow: UnitOfWork, record: Record, as_json: bool) -> None:
    document = documents.DOCUMENTS[record.entity]
    lineage = ("quote_id", "quote_line_id") if record.entity == "sales_order" else ("opportunity_line_id",)
    lines = documents.lines_of(uow, document, [record.id], fields=(*documents.LINE_FIELDS, "id", *lineage))[record.id]
    totals = documents.totals_of(record.values, lines)
    if as_json:
        echo_json({**dump_record(crm, record), "lines": [
            {**{k: (str(v) if v is not None and k in ("quantity", "tax_rate", "unit_price") else v) for k, v in line.items()},
             "net": str(amounts.net), "tax": str(amounts.tax)} for line, amounts in zip(lines, totals.lines, strict=True)]})
        return
    click.echo(_summary(record))
    for line, amounts in zip(lines, totals.lines, strict=True):
        discounts = " + ".join(f"{d}%" for d in documents.parse_discounts(line.get("discounts")))
        click.echo(f"  {line.get('position')}. {line.get('description')}: {line['quantity']} x {line['unit_price']}"
                   f"{' less ' + discounts if discounts else ''} = {amounts.net} (+ tax {amounts.tax})")
    if totals.document_discount.amount:
        click.echo(f"  document discount: {totals.document_discount}")
    for tax in totals.taxes:
        if tax.rate:
            click.echo(f"  tax {tax.code} {tax.rate}% on {tax.base}: {tax.tax}")
    click.echo(f"  total: {totals.total}")


def _write_pdf(entity: str, document_id: int, output: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        data = render_document(uow, entity, document_id)
    path = Path(output or f"{entity}-{document_id}.pdf")
    path.write_bytes(data)
    click.echo(f"wrote {path} ({len(data)} bytes)")


# -- quotes -----------------------------------------------------------------------------------


@click.group("quotes")
def quotes_group() -> None:
    """Quotes: make, send, revise, accept, reject, print."""


@quotes_group.command("new")
@click.option("--from-opportunity", "opportunity_id", type=int, help="Price the opportunity's lines for its account.")
@click.option("--account", "account_id", type=int, help="A quote for this account, without lines.")
@click.option("--title", help="The quote's title.")
@click.option("--currency", help="ISO 4217 code (the opportunity's, else the deployment's).")
def quotes_new(opportunity_id: int | None, account_id: int | None, title: str | None, currency: str | None) -> None:
    """Make a draft quote from an opportunity, for an account, or on its own."""
    if opportunity_id is not None and account_id is not None:
        raise click.UsageError("give --from-opportunity or --account, not both")
    crm = current_app()
    header = {k: v for k, v in {"title": title, "currency": currency}.items() if v}
    with crm.unit_of_work(current_actor()) as uow:
        if opportunity_id is not None:
            quote = quote_from_opportunity(uow, opportunity_id, **header)
        else:
            quote = new_quote(uow, account_id=account_id, **header)
        uow.commit()
    click.echo(f"created {_summary(quote)}")


@quotes_group.command("send")
@click.argument("quote_id", type=int)
def quotes_send(quote_id: int) -> None:
    """Send a draft quote (its version is frozen); asks for approval when its discount needs it."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        result = send_quote(uow, quote_id)
        uow.commit()
    if result.held:
        approval = result.approval
        click.echo(f"quote {quote_id} waits for approval {approval.id} by role {approval.values.get('role')!r} "
                   f"({approval.values.get('message')}); send it again once approved "
                   f"(crm approvals approve {approval.id} --as USER)")
    else:
        click.echo(f"sent {_summary(result.quote)}")


@quotes_group.command("revise")
@click.argument("quote_id", type=int)
@click.option("--reprice", is_flag=True, help="Price the lines again with today's catalog instead of keeping their snapshots.")
def quotes_revise(quote_id: int, reprice: bool) -> None:
    """Make the next version of a sent, rejected or expired quote (a draft)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        quote = revise_quote(uow, quote_id, reprice=reprice)
        uow.commit()
    click.echo(f"created {_summary(quote)} superseding quote {quote_id}")


@quotes_group.command("accept")
@click.argument("quote_id", type=int)
def quotes_accept(quote_id: int) -> None:
    """The customer accepts the current version of a sent quote."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        quote = accept_quote(uow, quote_id)
        order = uow.select("sales_order", fields=("id", "state")).where(quote_id=quote.id).order_by("-id").first()
        uow.commit()
    click.echo(f"accepted {_summary(quote)}" + (f"; sales_order {order['id']} [{order['state']}]" if order else ""))


@quotes_group.command("reject")
@click.argument("quote_id", type=int)
def quotes_reject(quote_id: int) -> None:
    """The customer rejects a sent quote."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        quote = reject_quote(uow, quote_id)
        uow.commit()
    click.echo(f"rejected {_summary(quote)}")


@quotes_group.command("show")
@click.argument("quote_id", type=int)
@_JSON
def quotes_show(quote_id: int, as_json: bool) -> None:
    """A quote with its lines and totals."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        _show(crm, uow, uow.get("quote", quote_id), as_json)


@quotes_group.command("pdf")
@click.argument("quote_id", type=int)
@click.option("-o", "--output", help="The file to write (quote-ID.pdf).")
def quotes_pdf(quote_id: int, output: str | None) -> None:
    """Print a quote to PDF with the deployment's layout."""
    _write_pdf("quote", quote_id, output)


# -- orders -----------------------------------------------------------------------------------


@click.group("orders")
def orders_group() -> None:
    """Sales orders: make, confirm, cancel, show, print."""


@orders_group.command("new")
@click.option("--from-quote", "quote_id", type=int, help="An accepted quote (its current version).")
@click.option("--from-opportunity", "opportunity_id", type=int, help="Price the opportunity's lines straight into an order.")
def orders_new(quote_id: int | None, opportunity_id: int | None) -> None:
    """Make a draft order from an accepted quote or from an opportunity."""
    if (quote_id is None) == (opportunity_id is None):
        raise click.UsageError("give one of --from-quote and --from-opportunity")
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        order = order_from_quote(uow, quote_id) if quote_id is not None else order_from_opportunity(uow, opportunity_id)
        uow.commit()
    click.echo(f"created {_summary(order)}")


@orders_group.command("confirm")
@click.argument("order_id", type=int)
def orders_confirm(order_id: int) -> None:
    """Confirm a draft order: stock reserved, fulfilment requests written."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        order = confirm_order(uow, order_id)
        requests = uow.select("outbox_request", fields=("id", "kind", "sink")).where(
            source_entity="sales_order", source_id=order.id).order_by("id").all()
        uow.commit()
    click.echo(f"confirmed {_summary(order)}")
    for request in requests:
        click.echo(f"  fulfilment request {request['id']}: {request['kind']} -> sink {request['sink']}")


@orders_group.command("cancel")
@click.argument("order_id", type=int)
def orders_cancel(order_id: int) -> None:
    """Cancel an order that is not fulfilled (a confirmed one releases its stock)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        order = cancel_order(uow, order_id)
        uow.commit()
    click.echo(f"cancelled {_summary(order)}")


@orders_group.command("show")
@click.argument("order_id", type=int)
@_JSON
def orders_show(order_id: int, as_json: bool) -> None:
    """An order with its lines, totals and lineage."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        order = uow.get("sales_order", order_id)
        _show(crm, uow, order, as_json)
        if not as_json and order.values.get("quote_id"):
            click.echo(f"  from quote {order.values.get('quote_id')}")


@orders_group.command("pdf")
@click.argument("order_id", type=int)
@click.option("-o", "--output", help="The file to write (sales_order-ID.pdf).")
def orders_pdf(order_id: int, output: str | None) -> None:
    """Print an order to PDF with the deployment's layout."""
    _write_pdf("sales_order", order_id, output)
