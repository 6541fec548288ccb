"""The printable work report: a PDF for the customer, written without a PDF library.

:func:`text_pdf` lays lines of text out on A4 pages in Helvetica (the PDF standard font, so
nothing is embedded; text outside Latin-1 prints as ``?``) and writes a PDF 1.4 file with its
cross-reference table. :func:`work_report_pdf` makes the lines of one work report: the order,
the customer and site, the units, every line with its price and coverage, the totals, the
notes and the customer's sign-off.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from crmcore.money import Money

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["LINES_PER_PAGE", "text_pdf", "work_report_lines", "work_report_pdf"]

LINES_PER_PAGE = 60
_WIDTH, _HEIGHT = 595, 842  # A4 in points
_LEADING = 12


def _escape(text: str) -> str:
    data = text.encode("latin-1", "replace").decode("latin-1")
    return data.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_pdf(lines: Sequence[str], *, title: str = "") -> bytes:
    """A PDF of *lines* (the first one bold), :data:`LINES_PER_PAGE` a page."""
    pages = [list(lines[i:i + LINES_PER_PAGE]) for i in range(0, len(lines), LINES_PER_PAGE)]
    pages = pages or [[]]
    objects: list[bytes] = []
    page_ids = [5 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   b"/Encoding /WinAnsiEncoding >>")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
                   b"/Encoding /WinAnsiEncoding >>")
    for number, page in enumerate(pages):
        ops = ["BT", f"{_LEADING} TL", f"50 {_HEIGHT - 60} Td"]
        for index, line in enumerate(page):
            font = "/F2 12" if number == 0 and index == 0 else "/F1 10"
            ops.append(f"{font} Tf ({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_WIDTH} {_HEIGHT}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
            f"/Contents {6 + 2 * number} 0 R >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
                       + b"\nendstream")
    info = len(objects) + 1
    objects.append(f"<< /Title ({_escape(title)}) /Producer (crm-service) >>".encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


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
