"""The printable work report: a PDF for the customer, laid out with fpdf2.

:func:`text_pdf` lays lines of text out on A4 pages in Helvetica (a PDF standard font, so
nothing is embedded; text outside Latin-1 prints as ``?``), :data:`LINES_PER_PAGE` a page, the
first line bold. :func:`work_report_pdf` makes the lines of one work report: the order, the
customer and site, the units, every line with its price and coverage, the totals, the notes and
the customer's sign-off.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crmcore.money import Money
from fpdf import FPDF

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["LINES_PER_PAGE", "text_pdf", "work_report_lines", "work_report_pdf"]

LINES_PER_PAGE = 60
_LEADING = 4.2  # millimetres: 60 lines fill an A4 page between its margins


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def text_pdf(lines: Sequence[str], *, title: str = "") -> bytes:
    """A PDF of *lines* (the first one bold), :data:`LINES_PER_PAGE` a page."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(18, 15)
    pdf.set_title(_latin1(title))
    pdf.set_producer("crm-service")
    pages = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    for number, page in enumerate(pages):
        pdf.add_page()
        for index, line in enumerate(page):
            bold = number == 0 and index == 0
            pdf.set_font("Helvetica", style="B" if bold else "", size=12 if bold else 10)
            pdf.cell(0, _LEADING, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _money(value: Money | None) -> str:
    return "-" if value is None else f"{value.amount:,.2f} {value.currency}"


def work_report_lines(uow: UnitOfWork, report_id: int) -> list[str]:
    """The text of a work report, line by line, as the PDF prints it."""
    report = uow.get("work_report", report_id)
    order = uow.get("service_order", report.order_id)
    account = uow.select("account", ("name",)).where(id=order.account_id).first()
    text = [f"Work report {report.id} - service order {order.id}", ""]
    text.append(f"Customer: {account['name'] if account else '-'}")
    if order.site_address:
        text.append(f"Site: {' '.join(order.site_address.split())}")
    text.append(f"Date of work: {report.work_date}")
    text.append(f"Subject: {order.subject}")
    if order.problem:
        text.append(f"Problem: {' '.join(order.problem.split())}")
    units = uow.select("order_unit", ("unit_id.serial_number", "unit_id.product_code",
                                      "unit_id.product_name")).where(order_id=order.id).all()
    for unit in units:
        text.append(f"Unit: {unit['unit_id.serial_number']} {unit['unit_id.product_code']} "
                    f"{unit['unit_id.product_name'] or ''}".rstrip())
    text += ["", "Work done:"]
    lines = uow.select("work_line", ("line_type", "description", "technician_id.username",
                                     "quantity", "unit_price", "amount", "covered_percent",
                                     "charge")).where(report_id=report.id).order_by("id").all()
    totals: dict[str, list[decimal.Decimal]] = {}
    for line in lines:
        who = f" ({line['technician_id.username']})" if line["technician_id.username"] else ""
        text.append(f"  {line['line_type']:<7} {line['description'] or '':<30}{who}")
        text.append(f"          {line['quantity']} x {_money(line['unit_price'])} = "
                    f"{_money(line['amount'])}; covered {line['covered_percent'] or 0}%; "
                    f"you pay {_money(line['charge'])}")
        if line["amount"] is not None and line["charge"] is not None:
            sums = totals.setdefault(line["amount"].currency, [decimal.Decimal(0)] * 2)
            sums[0] += line["amount"].amount
            sums[1] += line["charge"].amount
    text.append("")
    for currency, (amount, charge) in sorted(totals.items()):
        text.append(f"Total of the work: {amount:,.2f} {currency}; covered by warranty or "
                    f"contract: {amount - charge:,.2f} {currency}; to pay: {charge:,.2f} "
                    f"{currency}")
    if report.notes:
        text += ["", "Notes:", *(f"  {n}" for n in report.notes.splitlines())]
    text.append("")
    if report.signed_by:
        when = f" on {report.signed_at:%Y-%m-%d %H:%M} UTC" if report.signed_at else ""
        text.append(f"Signed off by {report.signed_by}{when}")
    else:
        text.append("Not signed off yet")
    return text


def work_report_pdf(uow: UnitOfWork, report_id: int) -> bytes:
    """The printable work report *report_id* as PDF bytes."""
    lines = work_report_lines(uow, report_id)
    return text_pdf(lines, title=lines[0])
