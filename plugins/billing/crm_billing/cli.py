"""``crm invoices new|post|credit|cancel|show|pdf``, ``crm payments add|import``, ``crm dunning
preview|run`` and ``crm revenue estimate|prospects``.

Each command runs in one unit of work as :func:`crmcore.cli.current_actor` and commits when it
succeeds; errors are one line naming the record and what to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json, progress

from crm_billing import dunning, estimate
from crm_billing.invoices import (
    cancel_invoice,
    credit_invoice,
    invoice_from_order,
    lines_of,
    new_invoice,
    post_invoices,
)
from crm_billing.notices import send_pending
from crm_billing.payments import record_payment
from crm_billing.printing import render_invoice
from crm_billing.statements import import_statement

__all__ = ["dunning_group", "invoices_group", "payments_group", "revenue_group"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_DATE = click.option("--date", "on", type=click.DateTime(formats=["%Y-%m-%d"]), help="The day (today when left out).")


def _quantities(pairs: tuple[str, ...]) -> dict[int, str] | None:
    if not pairs:
        return None
    found = {}
    for pair in pairs:
        line, _, quantity = pair.partition("=")
        if not line.strip().isdigit() or not quantity.strip():
            raise click.BadParameter(f"{pair!r}: write LINE_ID=QUANTITY, e.g. 12=2", param_hint="--line")
        found[int(line)] = quantity.strip()
    return found


def _day(on: dt.datetime | None) -> dt.date:
    crm = current_app()
    return on.date() if on else dt.datetime.now(crm.registry.timezone).date()


def _summary(record) -> str:  # noqa: ANN001 - a Record
    v = record.values
    return (f"{v.get('kind')} {record.id} {v.get('number') or '(draft)'} [{v.get('state')}] account {v.get('account_id')}: "
            f"total {v.get('grand_total') or '-'}, open {v.get('open_amount') or '-'}")


# -- invoices ---------------------------------------------------------------------------------


@click.group("invoices")
def invoices_group() -> None:
    """Invoices and credit notes: make, post, credit, cancel, show, print."""


@invoices_group.command("new")
@click.option("--from-order", "order_id", type=int, help="Invoice what is left of this confirmed order.")
@click.option("--line", "lines", multiple=True, help="LINE_ID=QUANTITY of the order to invoice (repeat); all when left out.")
@click.option("--account", "account_id", type=int, help="A direct invoice for this account (add lines with crm create invoice_line).")
@click.option("--currency", default="EUR", show_default=True)
@click.option("--terms", help="Payment terms by name (settings); the default terms when left out.")
def new_command(order_id: int | None, lines: tuple[str, ...], account_id: int | None, currency: str, terms: str | None) -> None:
    """Make a draft invoice from an order, or an empty one for an account."""
    if (order_id is None) == (account_id is None):
        raise click.UsageError("give --from-order ID or --account ID")
    header = {"payment_terms": terms} if terms else {}
    with current_app().unit_of_work(current_actor()) as uow:
        if order_id is not None:
            invoice = invoice_from_order(uow, order_id, _quantities(lines), **header)
        else:
            invoice = new_invoice(uow, account_id=account_id, currency=currency, **header)
        uow.commit()
    click.echo(_summary(invoice))


@invoices_group.command("post")
@click.argument("invoice_ids", type=int, nargs=-1, required=True)
def post_command(invoice_ids: tuple[int, ...]) -> None:
    """Post drafts: number, freeze, make instalments (all or nothing)."""
    with current_app().unit_of_work(current_actor()) as uow:
        posted = post_invoices(uow, list(invoice_ids))
        uow.commit()
    for record in posted:
        click.echo(_summary(record))


@invoices_group.command("credit")
@click.argument("invoice_id", type=int)
@click.option("--line", "lines", multiple=True, help="LINE_ID=QUANTITY of the invoice to credit (repeat); all when left out.")
@click.option("--post/--draft", "post", default=True, show_default=True, help="Post the credit note at once.")
def credit_command(invoice_id: int, lines: tuple[str, ...], post: bool) -> None:
    """Reverse all or part of a posted invoice with a credit note."""
    with current_app().unit_of_work(current_actor()) as uow:
        note = credit_invoice(uow, invoice_id, _quantities(lines))
        if post:
            note = post_invoices(uow, [note.id])[0]
        uow.commit()
    click.echo(_summary(note))


@invoices_group.command("cancel")
@click.argument("invoice_id", type=int)
def cancel_command(invoice_id: int) -> None:
    """Cancel a draft."""
    with current_app().unit_of_work(current_actor()) as uow:
        record = cancel_invoice(uow, invoice_id)
        uow.commit()
    click.echo(_summary(record))


@invoices_group.command("show")
@click.argument("invoice_id", type=int)
@_JSON
def show_command(invoice_id: int, as_json: bool) -> None:
    """An invoice with its lines and instalments."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = uow.get("invoice", invoice_id)
        lines = lines_of(uow, [invoice_id])[invoice_id]
        instalments = uow.query("instalment").where(invoice_id=invoice_id).order_by("sequence").all()
        if as_json:
            echo_json({**dump_record(crm, record), "lines": [dump_record(crm, uow.get("invoice_line", line["id"])) for line in lines],
                       "instalments": [dump_record(crm, i) for i in instalments]})
            return
    click.echo(_summary(record))
    for line in lines:
        click.echo(f"  {line.get('position')}. {line.get('description')}: {format(line['quantity'].normalize(), 'f')} x {line['unit_price']}")
    for instalment in instalments:
        click.echo(f"  instalment {instalment.id}: {instalment.amount} due {instalment.due_date}, open {instalment.residual}"
                   f"{' (blocked)' if instalment.blocked else ''}")


@invoices_group.command("pdf")
@click.argument("invoice_id", type=int)
@click.option("-o", "--output", help="The file to write (invoice-ID.pdf by default).")
def pdf_command(invoice_id: int, output: str | None) -> None:
    """Print an invoice or credit note to PDF."""
    with current_app().unit_of_work(current_actor()) as uow:
        data = render_invoice(uow, invoice_id)
    path = Path(output or f"invoice-{invoice_id}.pdf")
    path.write_bytes(data)
    click.echo(f"wrote {path} ({len(data)} bytes)")


# -- payments ---------------------------------------------------------------------------------


@click.group("payments")
def payments_group() -> None:
    """Payments: record by hand or import a bank statement."""


@payments_group.command("add")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--amount", required=True, help="An amount and currency, e.g. '500.00 EUR'.")
@_DATE
@click.option("--instalment", "instalments", type=int, multiple=True, help="Settle these instalments first (repeat).")
@click.option("--reference")
def add_command(account_id: int, amount: str, on: dt.datetime | None, instalments: tuple[int, ...], reference: str | None) -> None:
    """Record a payment and apply it (oldest due first unless instalments are named)."""
    with current_app().unit_of_work(current_actor()) as uow:
        payment = record_payment(uow, account_id=account_id, amount=amount, received_on=_day(on), reference=reference,
                                 instalment_ids=instalments)
        uow.commit()
    click.echo(f"payment {payment.id}: {payment.amount} from account {account_id}, unapplied {payment.unapplied}")


@payments_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
def import_command(path: str) -> None:
    """Import a bank statement CSV (date, amount, currency, account, reference[, transaction, instalment])."""
    with current_app().unit_of_work(current_actor()) as uow:
        report = import_statement(uow, path)
        uow.commit()
    unapplied = [p for p in report.payments if p.unapplied.amount > 0]
    click.echo(f"{Path(path).name}: {len(report.payments)} payment(s) recorded, {report.skipped} seen before, "
               f"{len(unapplied)} with an unapplied rest")


# -- dunning ----------------------------------------------------------------------------------


@click.group("dunning")
def dunning_group() -> None:
    """Dunning of overdue instalments: preview, run."""


@dunning_group.command("preview")
@_DATE
@_JSON
def preview_command(on: dt.datetime | None, as_json: bool) -> None:
    """What a run would do, per customer, and what is suppressed and why. Writes nothing."""
    with current_app().unit_of_work(current_actor()) as uow:
        customers = dunning.preview(uow, _day(on))
    if as_json:
        echo_json([{"account_id": c.account_id, "currency": c.currency, "amount_due": str(c.amount_due),
                    "items": [i.as_json() | {"reason": i.reason} for i in c.items],
                    "suppressed": [{"instalment_id": s.instalment_id, "invoice_number": s.invoice_number, "reason": s.reason}
                                   for s in c.suppressed]} for c in customers])
        return
    for customer in customers:
        click.echo(f"account {customer.account_id} ({customer.currency}): due {customer.amount_due}, levels {customer.levels or '-'}"
                   f" ({customer.procedure})")
        if customer.note:
            click.echo(f"  note: {customer.note}")
        for item in customer.items:
            click.echo(f"  remind {item.invoice_number} instalment {item.instalment_id} ({item.residual}) at level {item.level}: {item.reason}")
        for item in customer.suppressed:
            click.echo(f"  not {item.invoice_number} instalment {item.instalment_id} ({item.residual}): {item.reason}")
    if not customers:
        click.echo("nothing overdue")


def _advance(bar: Any) -> Callable[[int, int], None]:
    """``progress(done, total)`` of a run drawn on *bar* (:func:`crmcore.cli.progress`),
    whose length is known once the run has counted its work."""
    shown = 0

    def advance(done: int, total: int) -> None:
        nonlocal shown
        if done == 0:
            bar.length = max(total, 1)
        if done > shown:
            bar.update(done - shown)
            shown = done

    return advance


@dunning_group.command("run")
@_DATE
def run_command(on: dt.datetime | None) -> None:
    """Make the day's notices, then send the e-mails (progress bars on a terminal, quiet when
    piped)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        with progress(length=1, label="dunning notices") as bar:
            summary = dunning.run(uow, _day(on), progress=_advance(bar))
        uow.commit()
    for line in summary.lines():
        click.echo(line)
    with progress(length=1, label="sending e-mails") as bar:
        report = send_pending(crm, progress=_advance(bar))
    click.echo(f"e-mails sent: {report.sent}, failed (retried next run): {report.failed}")


# -- revenue ----------------------------------------------------------------------------------


def _horizon(text: str) -> int:
    value = text.strip().lower().removesuffix("m")
    if not value.isdigit() or not 1 <= int(value) <= 120:
        raise click.BadParameter(f"{text!r}: give months such as 12m (1 to 120)", param_hint="--horizon")
    return int(value)


@click.group("revenue")
def revenue_group() -> None:
    """Revenue estimates per customer, prospects."""


@revenue_group.command("estimate")
@click.option("--account", "account_id", type=int, help="One account (its child accounts included); all when left out.")
@click.option("--horizon", default="12m", show_default=True, help="Months ahead, e.g. 6m.")
@click.option("--backtest", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Compare the estimate made on this past day with what was invoiced after it.")
@_DATE
@_JSON
def estimate_command(account_id: int | None, horizon: str, as_of: dt.datetime | None, on: dt.datetime | None, as_json: bool) -> None:
    """History, run-rate and weighted pipeline per customer, each with its sources."""
    months = _horizon(horizon)
    accounts = [account_id] if account_id is not None else None
    with current_app().unit_of_work(current_actor()) as uow:
        if as_of is not None:
            rows = estimate.backtest(uow, as_of.date(), account_ids=accounts, horizon=months)
            for row in rows:
                click.echo(f"account {row.account_id}: estimated {row.estimated}, invoiced {row.actual}, error {row.error}")
            return
        found = estimate.estimate(uow, _day(on), account_ids=accounts, horizon=months)
    if as_json:
        echo_json([{"account_id": e.account_id, "currency": e.currency, "history": str(e.history),
                    "history_by_month": {m: str(v) for m, v in e.history_by_month.items()},
                    "history_sources": list(e.history_sources), "run_rate": str(e.run_rate),
                    "recurring": str(e.recurring), "recurring_sources": list(e.recurring_sources),
                    "pipeline": str(e.pipeline), "pipeline_sources": list(e.pipeline_sources), "estimate": str(e.total)}
                   for e in found])
        return
    for e in found:
        click.echo(f"account {e.account_id}: estimate {e.total} over {months} months")
        click.echo(f"  history {e.history} (invoices {list(e.history_sources)})")
        click.echo(f"  run-rate {e.run_rate}")
        click.echo(f"  recurring {e.recurring} ({', '.join(e.recurring_sources) or 'none reported'})")
        click.echo(f"  weighted pipeline {e.pipeline} (opportunities {list(e.pipeline_sources)})")


@revenue_group.command("chart")
@click.option("--account", "account_id", type=int, required=True)
@click.option("--horizon", default="12m", show_default=True)
@click.option("-o", "--output", help="The file to write: .svg or .png (account-ID.svg by default).")
@_DATE
def chart_command(account_id: int, horizon: str, output: str | None, on: dt.datetime | None) -> None:
    """A chart of the account's invoiced history and estimate per month (needs matplotlib)."""
    from crm_billing.chart import render_chart

    months, day = _horizon(horizon), _day(on)
    with current_app().unit_of_work(current_actor()) as uow:
        found = estimate.estimate(uow, day, account_ids=[account_id], horizon=months)
    if not found:
        raise click.ClickException(f"account {account_id} has no history, recurring revenue or pipeline to chart")
    path = Path(output or f"account-{account_id}.svg")
    data = render_chart(found[0], day, horizon=months, fmt=path.suffix.lstrip(".").lower() or "svg")
    path.write_bytes(data)
    click.echo(f"wrote {path} ({len(data)} bytes)")


@revenue_group.command("prospects")
@click.option("--horizon", default="12m", show_default=True)
@_DATE
def prospects_command(horizon: str, on: dt.datetime | None) -> None:
    """Accounts never invoiced: weighted pipeline against activities logged so far."""
    with current_app().unit_of_work(current_actor()) as uow:
        found = estimate.prospects(uow, _day(on), horizon=_horizon(horizon))
    for p in found:
        spent = ", ".join(str(m) for m in p.campaign_costs) or "-"
        click.echo(f"account {p.account_id} {p.name}: weighted pipeline {p.pipeline or '-'}, activities {p.activities}, "
                   f"campaign costs {spent}")
    if not found:
        click.echo("no prospects")
