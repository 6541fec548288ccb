"""Instalments and what settles them: the instalments of a posted invoice from its payment
terms, and allocations of payments and credit notes to instalments, which lower their
residuals and move their invoices to ``partially_paid`` or ``paid``.

Everything here runs as the system inside the caller's unit of work, set-based: one read of
the instalments concerned, one batch of allocations, one batch update of the residuals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crm_orders.documents import rounding_of
from crmcore import Actor
from crmcore.money import Money

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

    from crm_billing.settings import BillingSettings

__all__ = ["allocate", "apply_credit_notes", "make_instalments", "recompute_invoices", "split_amount"]


def split_amount(total: Money, percents: Sequence[Decimal], invoice: Record) -> list[Money]:
    """*total* split by *percents* (adding up to 100) in the invoice's rounding; the last part
    takes what rounding left, so the parts add up to *total* exactly."""
    rounding = rounding_of(invoice.values)
    parts = [rounding.round(total.amount * p / Decimal(100)) for p in percents[:-1]]
    parts.append(total.amount - sum(parts, Decimal(0)))
    return [Money(p, total.currency) for p in parts]


def make_instalments(uow: UnitOfWork, invoices: Sequence[Record], settings: BillingSettings) -> list[Record]:
    """The instalments of freshly posted *invoices* from their payment terms (residual = amount;
    the invoice's ``due_date``, the last one's, is set by the posting)."""
    rows: list[dict[str, Any]] = []
    for invoice in invoices:
        terms = settings.terms(invoice.payment_terms)
        day: dt.date = invoice.invoice_date
        amounts = split_amount(invoice.grand_total, [t.percent for t in terms], invoice)
        for number, (term, amount) in enumerate(zip(terms, amounts, strict=True), start=1):
            rows.append({"invoice_id": invoice.id, "account_id": invoice.account_id, "sequence": number,
                         "due_date": day + dt.timedelta(days=term.days), "amount": amount, "residual": amount})
    with uow.acting_as(Actor.system()):
        return uow.create_many("instalment", rows) if rows else []


def allocate(uow: UnitOfWork, source: dict[str, int], amount: Money, instalments: Sequence[Record]) -> tuple[Money, list[Record]]:
    """Apply *amount* to *instalments* in the order given, each up to its residual; *source*
    names the payment or credit note (``{"payment_id": 7}``). Returns what is left and the
    instalments changed (their invoices' states are the caller's to recompute)."""
    left = amount
    allocations: list[dict[str, Any]] = []
    changes: list[tuple[Record, dict[str, Any]]] = []
    for instalment in instalments:
        if left.amount <= 0:
            break
        residual: Money = instalment.residual
        if residual.currency != amount.currency or residual.amount <= 0:
            continue
        take = residual if residual <= left else left
        allocations.append({**source, "instalment_id": instalment.id, "amount": take})
        changes.append((instalment, {"residual": residual - take}))
        left = left - take
    with uow.acting_as(Actor.system()):
        if allocations:
            uow.create_many("payment_allocation", allocations)
        changed = uow.update_many("instalment", changes) if changes else []
    return left, changed


def open_instalments(uow: UnitOfWork, *, invoice_ids: Iterable[int] = (), account_ids: Iterable[int] = (),
                     ids: Iterable[int] = (), newest_first: bool = False) -> list[Record]:
    """Instalments with a residual, oldest due first (or newest first), of these invoices,
    accounts or ids."""
    where: list[Any] = [("residual", ">", 0)]
    if invoice_ids:
        where.append(("invoice_id", "in", sorted(set(invoice_ids))))
    if account_ids:
        where.append(("account_id", "in", sorted(set(account_ids))))
    if ids:
        where.append(("id", "in", sorted(set(ids))))
    with uow.acting_as(Actor.system()):
        found = uow.query("instalment").where(*where).order_by("due_date", "sequence", "id").all()
    return list(reversed(found)) if newest_first else found


def apply_credit_notes(uow: UnitOfWork, notes: Sequence[Record]) -> None:
    """Set freshly posted credit notes against the open instalments of the invoices they
    reverse (the latest due first); what no instalment takes stays open on the note as the
    customer's credit."""
    changed_invoices: set[int] = set()
    updates = []
    for note in notes:
        if note.credited_invoice_id is None:
            continue
        instalments = open_instalments(uow, invoice_ids=[note.credited_invoice_id], newest_first=True)
        left, changed = allocate(uow, {"credit_note_id": note.id}, note.grand_total, instalments)
        changed_invoices.update(i.invoice_id for i in changed)
        updates.append((note, {"open_amount": left}))
    with uow.acting_as(Actor.system()):
        if updates:
            uow.update_many("invoice", [(uow.get("invoice", n.id), c) for n, c in updates])
    recompute_invoices(uow, changed_invoices)


def recompute_invoices(uow: UnitOfWork, invoice_ids: Iterable[int]) -> None:
    """Open amount and state of posted invoices from their instalments' residuals."""
    wanted = sorted(set(invoice_ids))
    if not wanted:
        return
    with uow.acting_as(Actor.system()):
        sums = {row["invoice_id"]: row for row in uow.select("instalment", fields=("invoice_id",))
                .where(("invoice_id", "in", wanted)).group_by("invoice_id").aggregate(sum=["residual"])}
        changes = []
        for invoice in uow.get_many("invoice", wanted):
            if invoice.kind != "invoice" or invoice.state in ("draft", "cancelled"):
                continue
            row = sums.get(invoice.id)
            residual = row["sum_residual"] if row else Money(0, invoice.currency)
            if not isinstance(residual, Money):
                residual = Money(Decimal(residual or 0), invoice.currency)
            state = "paid" if residual.amount <= 0 else (
                "partially_paid" if residual < invoice.grand_total else "posted")
            if state != invoice.state or residual != invoice.open_amount:
                changes.append((invoice, {"state": state, "open_amount": residual}))
        if changes:
            uow.update_many("invoice", changes)
