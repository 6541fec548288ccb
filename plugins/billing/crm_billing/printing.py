"""An invoice or credit note as a PDF (fpdf2): header, lines with their net and tax, totals and
the instalments; amounts from the totals engine, exactly as stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.errors import NotFoundError

from crm_billing.invoices import invoice_totals, lines_of

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["render_invoice"]


def _latin(text: object) -> str:
    return str(text).encode("latin-1", "replace").decode("latin-1")


def render_invoice(uow: UnitOfWork, invoice_id: int) -> bytes:
    """The PDF of invoice *invoice_id* (any state; a draft is marked as such)."""
    from fpdf import FPDF

    found = uow.find_many("invoice", "id", [invoice_id])
    if not found:
        raise NotFoundError(f"invoice {invoice_id} not found or not readable")
    invoice = found[0]
    account = uow.find_many("account", "id", [invoice.account_id])
    lines = lines_of(uow, [invoice.id])[invoice.id]
    totals = invoice_totals(invoice.values, lines)
    title = "Credit note" if invoice.kind == "credit_note" else "Invoice"
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(0, 10, _latin(f"{title} {invoice.number or '(draft)'}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for text in (account[0].name if account else "", f"Date: {invoice.invoice_date or '-'}", f"Due: {invoice.due_date or '-'}"):
        pdf.cell(0, 6, _latin(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (80, 20, 30, 30, 30)
    pdf.set_font("Helvetica", style="B", size=10)
    for width, head in zip(widths, ("Description", "Qty", "Unit price", "Net", "Tax"), strict=True):
        pdf.cell(width, 7, head, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", size=10)
    for line, amounts in zip(lines, totals.lines, strict=True):
        cells = (line.get("description") or "", format(line["quantity"].normalize(), "f"), line["unit_price"], amounts.net, amounts.tax)
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 7, _latin(text)[:45], border=1)
        pdf.ln()
    pdf.ln(3)
    for label, amount in (("Net", totals.net), ("Tax", totals.tax), ("Total", totals.total)):
        pdf.cell(160, 6, label, align="R")
        pdf.cell(30, 6, _latin(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    instalments = uow.query("instalment").where(invoice_id=invoice.id).order_by("sequence").all()
    if instalments:
        pdf.ln(3)
        for instalment in instalments:
            pdf.cell(0, 6, _latin(f"Instalment {instalment.sequence}: {instalment.amount} due {instalment.due_date}"),
                     new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
