"""Invoices and credit notes: made from sales orders (whole or by line and quantity) or on
their own, totalled by the orders plugin's engine, posted with gap-free numbers and frozen.

Lines change only while their invoice is a draft; the invoice's totals are recomputed before
the unit of work commits (:func:`refresh_pending`), which also checks that no order line is
invoiced beyond its quantity and no invoice line credited beyond what it invoiced.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crm_orders.documents import copy_pricing, totals_of
from crm_orders.settings import OrdersSettings
from crm_orders.totals import DocumentTotals, rounding_for
from crmcore import Actor
from crmcore.errors import NotFoundError, ValidationError

from crm_billing import ledger
from crm_billing.numbering import format_number, take_numbers
from crm_billing.settings import BillingSettings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "INVOICED_STATES",
    "LINE_FIELDS",
    "PendingInvoices",
    "cancel_invoice",
    "check_invoice_update",
    "check_line_writes",
    "credit_invoice",
    "invoice_from_order",
    "invoice_totals",
    "lines_of",
    "mark_lines",
    "new_invoice",
    "post_invoices",
    "refresh_pending",
    "refresh_totals",
    "today_in",
]

#: The order states that may be invoiced.
INVOICED_STATES = ("confirmed", "in_fulfilment", "fulfilled")
LINE_FIELDS = ("position", "product_id", "description", "quantity", "unit_price", "discounts", "tax_code", "tax_rate")
_READ = ("id", "invoice_id", *LINE_FIELDS, "sales_order_line_id", "credited_line_id")
_FROZEN_AFTER_POSTING = frozenset({
    "kind", "number", "title", "account_id", "sales_order_id", "credited_invoice_id", "invoice_date", "posted_at",
    "payment_terms", "currency", "document_discount", "rounding_mode", "rounding_method", "rounding_places",
    "subtotal", "discount_total", "net_total", "tax_total", "grand_total",
})
_TOTALS = ("subtotal", "discount_total", "net_total", "tax_total", "grand_total")


def _n(value: Decimal | None) -> str:
    """A quantity as people write it (``1``, ``2.5``)."""
    return format(Decimal(value or 0).normalize(), "f")


def today_in(uow: UnitOfWork) -> dt.date:
    """Today in the deployment's time zone."""
    return dt.datetime.now(uow.registry.timezone).date()


def _settings(uow: UnitOfWork) -> BillingSettings:
    return uow.crm.state(BillingSettings)


def _pricing_for(uow: UnitOfWork, currency: str) -> dict[str, Any]:
    orders = uow.crm.state(OrdersSettings)
    rounding = rounding_for(currency, mode=orders.rounding_mode, methods=orders.rounding_methods,
                            default_method=orders.rounding_method, places=orders.currency_places)
    return {"rounding_mode": rounding.mode, "rounding_method": rounding.method, "rounding_places": rounding.places}


# -- reading -------------------------------------------------------------------------------------


def lines_of(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """The lines of the invoices *ids*, by invoice, in position order (read as the system)."""
    wanted = sorted(set(ids))
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in wanted}
    with uow.acting_as(Actor.system()):
        for start in range(0, len(wanted), 500):
            for row in (uow.select("invoice_line", fields=_READ).where(("invoice_id", "in", wanted[start:start + 500]))
                        .order_by("invoice_id", "position", "id").all()):
                found[row["invoice_id"]].append(row)
    return found


def invoice_totals(invoice: Mapping[str, Any], lines: Sequence[Mapping[str, Any]]) -> DocumentTotals:
    """The totals of an invoice with these values and lines: the orders plugin's engine."""
    return totals_of(invoice, lines)


def _get(uow: UnitOfWork, invoice_id: int, *, lock: bool = False) -> Record:
    found = uow.find_many("invoice", "id", [invoice_id], lock=lock)
    if not found:
        raise NotFoundError(f"invoice {invoice_id} not found; `crm invoices list` shows the invoices you may read")
    return found[0]


# -- making invoices ----------------------------------------------------------------------------


def new_invoice(uow: UnitOfWork, *, account_id: int, currency: str, lines: Sequence[Mapping[str, Any]] = (),
                **header: Any) -> Record:
    """A draft invoice (or credit note, ``kind="credit_note"``) of *account_id* with *lines*
    (``quantity``, ``unit_price`` as Money or text, ``description``, ``discounts``, ``tax_code``,
    ``tax_rate``, ``product_id``); rounding from the orders plugin's settings unless given."""
    values = {"account_id": account_id, "currency": currency, **_pricing_for(uow, currency), **header}
    invoice = uow.create("invoice", **values)
    if lines:
        uow.create_many("invoice_line", [
            {"position": number, **line, "invoice_id": invoice.id} for number, line in enumerate(lines, start=1)])
    refresh_totals(uow, [invoice.id])
    return uow.get("invoice", invoice.id)


def _invoiced(uow: UnitOfWork, order_line_ids: Sequence[int]) -> dict[int, Decimal]:
    """Quantities of order lines on invoices that are not cancelled."""
    if not order_line_ids:
        return {}
    with uow.acting_as(Actor.system()):
        rows = (uow.select("invoice_line", fields=("sales_order_line_id",))
                .where(("sales_order_line_id", "in", list(order_line_ids)), ("invoice_id.state", "!=", "cancelled"),
                       ("invoice_id.kind", "=", "invoice"))
                .group_by("sales_order_line_id").aggregate(sum=["quantity"]))
    return {row["sales_order_line_id"]: Decimal(row["sum_quantity"] or 0) for row in rows}


def invoice_from_order(uow: UnitOfWork, order_id: int, quantities: Mapping[int, Decimal | int | str] | None = None,
                       **header: Any) -> Record:
    """A draft invoice of the confirmed or fulfilled sales order *order_id*: every quantity not
    yet invoiced, or *quantities* (``{order line id: quantity}``). The invoice copies the
    order's pricing, so invoicing the whole order gives the order's totals to the cent.

    :raises ValidationError: for an order in another state, an unknown line, a quantity above
        what is left to invoice, or nothing left to invoice.
    """
    found = uow.find_many("sales_order", "id", [order_id])
    if not found:
        raise NotFoundError(f"sales order {order_id} not found or not readable")
    order = found[0]
    if order.state not in INVOICED_STATES:
        raise ValidationError({"sales_order_id": [
            f"sales order {order_id} is {order.state!r}; only {', '.join(INVOICED_STATES)} orders are invoiced: confirm it first"]})
    with uow.acting_as(Actor.system()):
        order_lines = (uow.select("sales_order_line", fields=("id", *LINE_FIELDS))
                       .where(sales_order_id=order_id).order_by("position", "id").all())
    done = _invoiced(uow, [line["id"] for line in order_lines])
    by_id = {line["id"]: line for line in order_lines}
    if quantities is not None:
        unknown = sorted(set(quantities) - set(by_id))
        if unknown:
            raise ValidationError({"lines": [f"order line(s) {unknown} are not lines of sales order {order_id}; its lines are {sorted(by_id)}"]})
    rows = []
    for line in order_lines:
        left = Decimal(line["quantity"] or 0) - done.get(line["id"], Decimal(0))
        wanted = left if quantities is None else Decimal(str(quantities.get(line["id"], 0)))
        if wanted > left:
            raise ValidationError({"quantity": [
                f"order line {line['id']} has {_n(left)} left to invoice, not {_n(wanted)}; invoice at most {_n(left)}"]})
        if wanted > 0:
            rows.append({**{name: line[name] for name in LINE_FIELDS}, "quantity": wanted, "sales_order_line_id": line["id"]})
    if not rows:
        raise ValidationError({"lines": [f"sales order {order_id} has nothing left to invoice"]})
    values = {"title": order.title, "sales_order_id": order.id, **copy_pricing(order.values), **header}
    values.pop("pricing_date", None)
    values.update(account_id=order.account_id)
    return new_invoice(uow, lines=rows, **values)


def credit_invoice(uow: UnitOfWork, invoice_id: int, quantities: Mapping[int, Decimal | int | str] | None = None,
                   **header: Any) -> Record:
    """A draft credit note reversing the posted invoice *invoice_id*: every line still
    creditable, or *quantities* (``{invoice line id: quantity}``). Post it to take effect.

    :raises ValidationError: for an invoice not posted, an unknown line, or more than is left.
    """
    invoice = _get(uow, invoice_id)
    if invoice.kind != "invoice" or invoice.state not in ("posted", "partially_paid", "paid"):
        raise ValidationError({"credited_invoice_id": [
            f"invoice {invoice_id} is a {invoice.kind} in state {invoice.state!r}; only posted invoices are credited"]})
    lines = lines_of(uow, [invoice_id])[invoice_id]
    credited = _credited(uow, [line["id"] for line in lines])
    by_id = {line["id"]: line for line in lines}
    if quantities is not None:
        unknown = sorted(set(quantities) - set(by_id))
        if unknown:
            raise ValidationError({"lines": [f"line(s) {unknown} are not lines of invoice {invoice_id}; its lines are {sorted(by_id)}"]})
    rows = []
    for line in lines:
        left = Decimal(line["quantity"] or 0) - credited.get(line["id"], Decimal(0))
        wanted = left if quantities is None else Decimal(str(quantities.get(line["id"], 0)))
        if wanted > left:
            raise ValidationError({"quantity": [f"invoice line {line['id']} has {_n(left)} left to credit, not {_n(wanted)}"]})
        if wanted > 0:
            rows.append({**{name: line[name] for name in LINE_FIELDS}, "quantity": wanted, "credited_line_id": line["id"]})
    if not rows:
        raise ValidationError({"lines": [f"invoice {invoice_id} has nothing left to credit"]})
    pricing = {name: invoice.values.get(name) for name in ("document_discount", "rounding_mode", "rounding_method", "rounding_places")}
    return new_invoice(uow, account_id=invoice.account_id, currency=invoice.currency, lines=rows, kind="credit_note",
                       credited_invoice_id=invoice.id, title=f"Credit note for {invoice.number}",
                       **{**pricing, **header})


def _credited(uow: UnitOfWork, line_ids: Sequence[int]) -> dict[int, Decimal]:
    if not line_ids:
        return {}
    with uow.acting_as(Actor.system()):
        rows = (uow.select("invoice_line", fields=("credited_line_id",))
                .where(("credited_line_id", "in", list(line_ids)), ("invoice_id.state", "!=", "cancelled"))
                .group_by("credited_line_id").aggregate(sum=["quantity"]))
    return {row["credited_line_id"]: Decimal(row["sum_quantity"] or 0) for row in rows}


def cancel_invoice(uow: UnitOfWork, invoice_id: int) -> Record:
    """Cancel a draft (a posted invoice is reversed by a credit note instead). Service orders
    whose work it held, and no other invoice holds, go back from ``invoiced`` to ``done``
    (:func:`crm_billing.service_work.release_orders`, as the acting user), so their work can
    be invoiced again.

    :raises PermissionDeniedError: when the acting user may not move those service orders.
    """
    from crm_billing.service_work import release_orders

    invoice = _get(uow, invoice_id, lock=True)
    if invoice.state != "draft":
        raise ValidationError({"state": [
            f"invoice {invoice.number or invoice_id} is {invoice.state!r}; only drafts are cancelled, credit a posted one"]})
    with uow.acting_as(Actor.system()):
        cancelled = uow.update(invoice, state="cancelled")
    release_orders(uow, invoice_id)
    return cancelled


# -- totals -------------------------------------------------------------------------------------


def refresh_totals(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, DocumentTotals]:
    """Recompute and write the totals of the draft invoices *ids* (set-based)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    pending = uow.crm.find_state(PendingInvoices)
    if pending is not None:
        pending.invoices.get(uow, set()).difference_update(wanted)
    lines = lines_of(uow, wanted)
    found: dict[int, DocumentTotals] = {}
    changes = []
    with uow.acting_as(Actor.system()):
        for record in uow.get_many("invoice", wanted):
            totals = invoice_totals(record.values, lines[record.id])
            found[record.id] = totals
            fields = totals.as_fields()
            if record.state == "draft" and any(record.values.get(n) != fields[n] for n in _TOTALS):
                changes.append((record, fields))
        if changes:
            uow.update_many("invoice", changes)
    return found


@attrs.define(eq=False)
class PendingInvoices:
    """Per unit of work, the invoices whose lines changed and the order and invoice lines whose
    invoiced or credited quantity must be checked before the commit."""

    invoices: weakref.WeakKeyDictionary[Any, set[int]] = attrs.field(factory=weakref.WeakKeyDictionary)
    order_lines: weakref.WeakKeyDictionary[Any, set[int]] = attrs.field(factory=weakref.WeakKeyDictionary)
    credited_lines: weakref.WeakKeyDictionary[Any, set[int]] = attrs.field(factory=weakref.WeakKeyDictionary)
    sources: weakref.WeakKeyDictionary[Any, set[str]] = attrs.field(factory=weakref.WeakKeyDictionary)


def mark_lines(uow: UnitOfWork, lines: Iterable[Mapping[str, Any]]) -> None:
    """Note the invoices (and order and credited lines) of these line values."""
    pending = uow.crm.state(PendingInvoices)
    for line in lines:
        if line.get("invoice_id") is not None:
            pending.invoices.setdefault(uow, set()).add(line["invoice_id"])
        if line.get("sales_order_line_id") is not None:
            pending.order_lines.setdefault(uow, set()).add(line["sales_order_line_id"])
        if line.get("credited_line_id") is not None:
            pending.credited_lines.setdefault(uow, set()).add(line["credited_line_id"])
        if line.get("source_ref"):
            pending.sources.setdefault(uow, set()).add(line["source_ref"])


def refresh_pending(uow: UnitOfWork) -> None:
    """``crm_before_commit``: recompute marked invoices and check invoiced quantities."""
    pending = uow.crm.find_state(PendingInvoices)
    if pending is None:
        return
    invoices = pending.invoices.pop(uow, set())
    if invoices:
        refresh_totals(uow, invoices)
    order_lines = sorted(pending.order_lines.pop(uow, set()))
    if order_lines:
        with uow.acting_as(Actor.system()):
            ordered = {r.id: Decimal(r.values.get("quantity") or 0)
                       for r in uow.find_many("sales_order_line", "id", order_lines, fields=("quantity",))}
        for line_id, quantity in sorted(_invoiced(uow, order_lines).items()):
            if quantity > ordered.get(line_id, Decimal(0)):
                raise ValidationError({"quantity": [
                    f"order line {line_id} would be invoiced {_n(quantity)} times but was ordered {_n(ordered.get(line_id))} times"]})
    credited = sorted(pending.credited_lines.pop(uow, set()))
    if credited:
        with uow.acting_as(Actor.system()):
            invoiced = {r.id: Decimal(r.values.get("quantity") or 0)
                        for r in uow.find_many("invoice_line", "id", credited, fields=("quantity",))}
        for line_id, quantity in sorted(_credited(uow, credited).items()):
            if quantity > invoiced.get(line_id, Decimal(0)):
                raise ValidationError({"quantity": [
                    f"invoice line {line_id} would be credited {_n(quantity)} but invoiced {_n(invoiced.get(line_id))}"]})
    sources = sorted(pending.sources.pop(uow, set()))
    if sources:
        _check_sources(uow, sources)


def _check_sources(uow: UnitOfWork, refs: Sequence[str]) -> None:
    """What another plugin's record bills (``source_ref``) is on one invoice at most, credit
    notes and cancelled invoices aside."""
    with uow.acting_as(Actor.system()):
        for start in range(0, len(refs), 500):
            twice = (uow.select("invoice_line", fields=("source_ref",))
                     .where(("source_ref", "in", list(refs[start:start + 500])), ("invoice_id.state", "!=", "cancelled"),
                            ("invoice_id.kind", "=", "invoice"))
                     .group_by("source_ref").aggregate())
            for row in twice:
                if row["count"] > 1:
                    raise ValidationError({"source_ref": [
                        f"{row['source_ref']} would be invoiced {row['count']} times; work is invoiced once: "
                        "cancel the other draft or credit the other invoice first"]})


def check_line_writes(uow: UnitOfWork, invoice_ids: Iterable[int]) -> None:
    """Lines are written only on drafts."""
    wanted = sorted({i for i in invoice_ids if i is not None})
    if not wanted:
        return
    with uow.acting_as(Actor.system()):
        frozen = [r for r in uow.find_many("invoice", "id", wanted, fields=("state", "number")) if r.state != "draft"]
    if frozen:
        record = frozen[0]
        raise ValidationError({"invoice_id": [
            f"invoice {record.number or record.id} is {record.state!r}: its lines are frozen; credit it instead"]})


def check_invoice_update(items: Sequence[tuple[Record, Mapping[str, Any]]]) -> None:
    """A posted (or cancelled) invoice keeps its header and totals."""
    for record, changes in items:
        if record.state != "draft":
            touched = sorted(set(changes) & _FROZEN_AFTER_POSTING)
            if touched:
                raise ValidationError({touched[0]: [
                    f"invoice {record.number or record.id} is {record.state!r}: {', '.join(touched)} cannot change; credit it instead"]})


# -- posting ------------------------------------------------------------------------------------


def post_invoices(uow: UnitOfWork, ids: Sequence[int], *, today: dt.date | None = None) -> list[Record]:
    """Post the draft invoices and credit notes *ids*: number them (gap-free, per kind and the
    year of their invoice date), freeze them, make an invoice's instalments from its payment
    terms and set a credit note against the invoice it reverses. All or nothing.

    :raises ValidationError: for a document not a draft, without lines or with a zero total.
    """
    today = today or today_in(uow)
    settings = _settings(uow)
    wanted = sorted(set(ids))
    records = {r.id: r for r in uow.find_many("invoice", "id", wanted, lock=True)}
    missing = [i for i in wanted if i not in records]
    if missing:
        raise NotFoundError(f"invoice(s) {missing} not found or not readable")
    uow.check_access_many(list(records.values()), "update")
    pending = uow.crm.find_state(PendingInvoices)
    if pending is not None:
        pending.invoices.get(uow, set()).difference_update(wanted)
    lines = lines_of(uow, wanted)
    totals = {}
    for record in records.values():
        if record.state != "draft":
            raise ValidationError({"state": [f"invoice {record.number or record.id} is {record.state!r}; only drafts are posted"]})
        totals[record.id] = invoice_totals(record.values, lines[record.id])
        if not totals[record.id].lines or totals[record.id].total.amount <= 0:
            raise ValidationError({"lines": [f"invoice {record.id} has no amount to post; add lines first"]})
    groups: dict[tuple[str, int], list[Record]] = {}
    for record in records.values():
        day = record.invoice_date or today
        groups.setdefault((record.kind, day.year), []).append(record)
    now = dt.datetime.now(dt.UTC)
    changes = []
    for (kind, year), members in sorted(groups.items()):
        prefix = settings.invoice_prefix if kind == "invoice" else settings.credit_note_prefix
        for record, number in zip(members, take_numbers(uow, kind, year, len(members)), strict=True):
            day = record.invoice_date or today
            fresh = totals[record.id].as_fields()
            values = {
                **{name: value for name, value in fresh.items() if record.values.get(name) != value},
                "number": format_number(prefix, year, number, settings.number_digits), "state": "posted",
                "posted_at": now, "invoice_date": day, "open_amount": totals[record.id].total,
            }
            if kind == "invoice":
                values["due_date"] = day + dt.timedelta(days=settings.terms(record.payment_terms)[-1].days)
            changes.append((record, values))
    with uow.acting_as(Actor.system()):
        posted = sorted(uow.update_many("invoice", changes), key=lambda r: r.id)
        ledger.make_instalments(uow, [r for r in posted if r.kind == "invoice"], settings)
        notes = [r for r in posted if r.kind == "credit_note"]
        if notes:
            ledger.apply_credit_notes(uow, notes)
            return uow.get_many("invoice", wanted)
    return posted
