"""The billing chapter of ``crm demo`` (``crm_demo``): after the orders chapter confirmed an
order, it is invoiced and posted six weeks back, comes due, the dunning preview shows level 1,
the run e-mails the customer (over the SMTP server of the settings), half of it is paid by a
bank statement, the next run two weeks later goes to level 2 for the remainder only, a credit
note settles the rest and a last run reminds nobody. With the service plugin enabled, a
service visit's billable work becomes a draft invoice, which is posted. The customer's revenue
estimate closes it.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

from crmcore.demo import Story, money_text

from crm_billing import dunning
from crm_billing.estimate import estimate
from crm_billing.invoices import credit_invoice, invoice_from_order, post_invoices
from crm_billing.notices import send_pending
from crm_billing.statements import import_statement

__all__ = ["tell"]


def _run(story: Story, on: dt.date) -> str:
    with story.crm.unit_of_work() as uow:
        summary = dunning.run(uow, on)
        uow.commit()
    report = send_pending(story.crm)
    levels = ", ".join(f"level {n.level} by {n.channel} for {money_text(n.amount_due)}" for n in summary.notices) or "no notice"
    return f"{levels}; e-mails sent {report.sent}, failed {report.failed}"


def _service_work(story: Story, account_id: int, day: dt.date) -> None:
    """With the service plugin: a visit's billable work becomes a draft invoice, posted."""
    crm, currency, echo = story.crm, story.currency, story.echo
    window = dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC)
    with crm.unit_of_work() as uow:
        order = uow.create("service_order", subject="Yearly inspection", account_id=account_id)
        report = uow.create("work_report", order_id=order.id, work_date=day, signed_by="Plant manager")
        uow.create_many("work_line", [
            {"report_id": report.id, "line_type": "labour", "quantity": "1.5", "unit_price": f"90.00 {currency}",
             "description": "Inspection"},
            {"report_id": report.id, "line_type": "parts", "quantity": "2", "unit_price": f"12.50 {currency}",
             "description": "Filter"},
        ])
        order = uow.move(order, "scheduled", window_start=window, window_end=window + dt.timedelta(hours=2))
        for stage in ("in_progress", "done", "invoiced"):
            order = uow.move(order, stage)
        [invoice] = uow.query("invoice").where(source_ref=f"service_order {order.id}").all()
        [posted] = post_invoices(uow, [invoice.id], today=day)
        uow.commit()
    echo(f"  service order {order.id} invoiced: its billable work became draft invoice {invoice.id} "
         f"({money_text(invoice.net_total)} net), posted as {posted.number}, total {money_text(posted.grand_total)}")


def tell(story: Story) -> None:
    """Tell the chapter (after the orders chapter)."""
    echo, crm = story.echo, story.crm
    echo("")
    echo("Billing and dunning")
    with crm.unit_of_work() as uow:
        order = uow.query("sales_order").where(("state", "in", ("confirmed", "in_fulfilment", "fulfilled"))).order_by("id").first()
    if order is None:
        echo("  skipped: no confirmed order to invoice (the orders chapter needs its outbox sinks)")
        return
    posted_on = story.today - dt.timedelta(days=45)
    with crm.unit_of_work() as uow:
        account = uow.get("account", order.account_id)
        if not account.values.get("email"):
            uow.update(account, email="accounts-payable@customer.example")
        invoice = invoice_from_order(uow, order.id, invoice_date=posted_on)
        invoice = post_invoices(uow, [invoice.id], today=posted_on)[0]
        uow.commit()
    echo(f"  sales order {order.id} invoiced and posted on {posted_on}: {invoice.number}, total "
         f"{money_text(invoice.grand_total)}, due {invoice.due_date} (the order's totals to the cent)")
    with crm.unit_of_work() as uow:
        preview = dunning.preview(uow, story.today)
    for customer in preview:
        for item in customer.items:
            echo(f"  preview {story.today}: {item.invoice_number} would reach level {item.level}: {item.reason}")
    echo(f"  dunning run {story.today}: {_run(story, story.today)}")
    half = (invoice.grand_total.amount / 2).quantize(Decimal("0.01"))
    folder = Path(tempfile.mkdtemp(prefix="crm-demo-statement-"))
    path = folder / "statement.csv"
    path.write_text("date,amount,currency,account,reference\n"
                    f"{story.today.isoformat()},{half},{invoice.currency},{account.id},{invoice.number}\n", encoding="utf-8")
    with crm.unit_of_work() as uow:
        imported = import_statement(uow, path)
        uow.commit()
    echo(f"  bank statement imported: {len(imported.payments)} payment of {half} {invoice.currency}")
    later = story.today + dt.timedelta(days=14)
    echo(f"  dunning run {later}: {_run(story, later)}")
    with crm.unit_of_work() as uow:
        note = post_invoices(uow, [credit_invoice(uow, invoice.id).id], today=later)[0]
        uow.commit()
    with crm.unit_of_work() as uow:
        credited = uow.get("invoice", invoice.id)
        note = uow.get("invoice", note.id)
    echo(f"  credit note {note.number} ({money_text(note.grand_total)}): {invoice.number} is {credited.state}, "
         f"open {money_text(credited.open_amount)}; {money_text(note.open_amount)} stays as the customer's credit")
    final = later + dt.timedelta(days=30)
    echo(f"  dunning run {final}: {_run(story, final)}")
    if "service_order" in crm.registry:
        _service_work(story, account.id, later)
    with crm.unit_of_work() as uow:
        for found in estimate(uow, story.today, account_ids=[account.id]):
            echo(f"  revenue estimate of {account.values['name']!r} over 12 months: {money_text(found.total)} "
                 f"(run-rate {money_text(found.run_rate)}, weighted pipeline {money_text(found.pipeline)})")
