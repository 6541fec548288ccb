"""Invoices of service work: the billing side of the service plugin's ``service_invoice_lines``.

When a service order moves to ``invoiced`` the service plugin hands its billable work lines
(a charge above zero) to :func:`invoice_work_lines`, which

- reads the order and the lines again through the unit of work (a record handed in is never
  trusted): only lines of that order, with a charge, count;
- refuses a line already on an invoice that is not cancelled (``source_ref`` ``work_line
  <id>`` on an invoice line), so no work is invoiced twice; the check before the commit
  (:func:`crm_billing.invoices.refresh_pending`) holds it for lines written any other way;
- makes a draft invoice per service order (``service_invoicing = "order"``, the default;
  ``source_ref`` ``service_order <id>``) or adds the lines to the account's open draft of
  service work in the currency (``"account"``: collective invoicing, ``source_ref``
  ``service``), owned by the acting user, who needs the privilege to create invoices;
- writes one invoice line per work line whose net amount is the line's charge to the cent:
  quantity and unit price of the work line, the covered share as a line discount when the
  entitlement covered part of it, or one unit at the charge when the charge was set by hand;
  parts name their catalog product (by code) and take its tax category; labour and travel
  take ``service_tax_code`` when set;
- returns ``invoice <id>``, which the service plugin stamps on the lines (``invoice_ref``).

Cancelling a draft that holds service work (:func:`crm_billing.invoices.cancel_invoice`)
moves each service order whose work no other invoice (not cancelled) holds back from
``invoiced`` to ``done`` (:func:`release_orders`), as the acting user through the service
pipeline, so its permissions apply; the order can then be invoiced again by moving it to
``invoiced``. The service plugin refuses that move back while an invoice still holds the
work: billing answers its ``service_invoice_held`` (:func:`invoice_holding`).

The recurring fees of service contracts come the same way, through ``service_contract_fee``
(:func:`bill_contract_fee`): one invoice line per contract period, ``source_ref``
``service_contract <id> <first day>``, billed once.

Without the service plugin nothing here runs: the hook is implemented as optional.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crm_orders.totals import discount_factor, rounding_for
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_billing.invoices import refresh_totals
from crm_billing.settings import BillingSettings

if TYPE_CHECKING:
    from crm_orders.totals import Rounding
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["COLLECTED_REF", "bill_contract_fee", "contract_revenue", "fee_ref", "invoice_holding", "invoice_work_lines",
           "line_ref", "order_ref", "release_orders"]

#: The ``source_ref`` of an account's draft collecting service work (``service_invoicing = "account"``).
COLLECTED_REF = "service"
_LINE_FIELDS = ("id", "order_id", "report_id", "report_id.work_date", "line_type", "description", "product_code",
                "quantity", "unit_price", "amount", "covered_percent", "entitlement_source", "charge", "charge_reason")


def line_ref(line_id: int) -> str:
    """The ``source_ref`` of the invoice line billing work line *line_id*."""
    return f"work_line {line_id}"


def order_ref(order_id: int) -> str:
    """The ``source_ref`` of the invoice of service order *order_id*."""
    return f"service_order {order_id}"


def fee_ref(contract_id: int, first: dt.date) -> str:
    """The ``source_ref`` of the invoice line billing the period from *first* of a contract's fee."""
    return f"service_contract {contract_id} {first.isoformat()}"


def bill_contract_fee(uow: UnitOfWork, contract: Record, first: dt.date, last: dt.date) -> str | None:
    """Bill one period of a service contract's recurring fee (the service plugin's
    ``service_contract_fee``): one invoice line ``Service contract <number>, <first> to
    <last>`` at the contract's fee (read again, not taken from the caller), on a draft of its
    own per contract period (``service_invoicing = "order"``) or on the account's open draft
    of service work (``"account"``). A period billed before (its line on an invoice that is
    not cancelled) is not billed again: its line's reference is returned, so the contract
    moves on.

    :returns: ``"invoice_line <id>"``, or ``None`` for a contract without a fee.
    :raises PermissionDeniedError: when the acting user may not create invoices.
    """
    uow.require("invoice", "create")
    user = uow.actor.user_id
    settings = uow.crm.state(BillingSettings)
    ref = fee_ref(contract.id, first)
    with uow.system_scope(f"bill the fee of service contract {contract.id} from {first}"):
        found = uow.find_many("service_contract", "id", [contract.id], fields=("number", "account_id", "fee"))
        fee: Money | None = found[0].values.get("fee") if found else None
        if fee is None or fee.amount <= 0:
            return None
        done = (uow.select("invoice_line", ("id",)).where(("source_ref", "=", ref), ("invoice_id.state", "!=", "cancelled"))
                .order_by("id").first())
        if done is not None:
            return f"invoice_line {done['id']}"
        current = found[0]
        number = current.values.get("number") or current.id
        invoice = _draft(uow, settings, current.values["account_id"], fee.currency, user,
                         f"Service contract {number}, {first} to {last}", f"service_contract {current.id}")
        tax = _service_tax(uow, settings)
        [line] = uow.create_many("invoice_line", [{
            "invoice_id": invoice.id, "position": _next_position(uow, invoice.id), "quantity": 1, "unit_price": fee,
            "description": f"Service contract {number}, {first} to {last}", "source_ref": ref,
            **({"tax_code": tax[0], "tax_rate": tax[1]} if tax else {})}])
        refresh_totals(uow, [invoice.id])
    return f"invoice_line {line.id}"


def contract_revenue(uow: UnitOfWork, account_ids: Sequence[int] | None, since: dt.date,
                     until: dt.date) -> list[dict[str, Any]] | None:
    """The recurring part of the revenue estimate from service contracts (billing's own
    ``billing_recurring_revenue``, answered when the service plugin is enabled): per active
    contract with a fee, the fee times the billing periods that begin in the horizon
    (*since* included, *until* excluded) and before the contract ends; ``source``
    ``service_contract:<id>``. Read as the acting user, in one select.

    :returns: the rows, or ``None`` without the service plugin.
    """
    if "service_contract" not in uow.registry:
        return None
    from crm_service.contracts import PERIOD_MONTHS
    from dateutil.relativedelta import relativedelta

    where: list[Any] = [("fee", "is not null"), ("status", "=", "active"), ("starts_on", "<", until),
                        ("ends_on", ">=", since)]
    if account_ids is not None:
        where.append(("account_id", "in", sorted(set(account_ids))))
    found = []
    for row in (uow.select("service_contract", ("id", "account_id", "fee", "billing_period", "starts_on", "ends_on"))
                .where(*where).order_by("id").all()):
        months = PERIOD_MONTHS.get(row["billing_period"] or "monthly", 1)
        begun = (since.year - row["starts_on"].year) * 12 + since.month - row["starts_on"].month
        step, periods = max(begun // months - 1, 0), 0
        while True:
            start = row["starts_on"] + relativedelta(months=step * months)
            if start >= until or start > row["ends_on"]:
                break
            if start >= since:
                periods += 1
            step += 1
        if periods and row["fee"].amount > 0:
            found.append({"account_id": row["account_id"], "amount": row["fee"] * periods,
                          "source": f"service_contract:{row['id']}"})
    return found


def invoice_work_lines(uow: UnitOfWork, order: Record, lines: Sequence[Record]) -> str | None:
    """Invoice the billable work lines of a service order entering ``invoiced`` (see the
    module's docstring).

    :returns: ``"invoice <id>"``, or ``None`` when no line of the order is billable.
    :raises PermissionDeniedError: when the acting user may not create invoices.
    :raises ValidationError: for an order that is not invoiced, a line already invoiced, or
        lines in several currencies.
    """
    uow.require("invoice", "create")
    user = uow.actor.user_id
    settings = uow.crm.state(BillingSettings)
    with uow.system_scope(f"invoice the billable work of service order {order.id}"):
        found = uow.find_many("service_order", "id", [order.id], fields=("status", "account_id", "subject"))
        if not found or found[0].values.get("status") != "invoiced":
            raise ValidationError({"status": [
                f"service order {order.id} is not invoiced; move it to 'invoiced' to invoice its work"]}, entity="invoice")
        current = found[0]
        wanted = sorted({line.id for line in lines})
        rows = [row for row in uow.select("work_line", _LINE_FIELDS).where(("id", "in", wanted)).order_by("id").all()
                if row["order_id"] == current.id and row["charge"] is not None and row["charge"].amount > 0] if wanted else []
        if not rows:
            return None
        _refuse_invoiced(uow, [row["id"] for row in rows])
        currencies = sorted({row["charge"].currency for row in rows})
        if len(currencies) > 1:
            raise ValidationError({"charge": [
                f"the billable lines of service order {current.id} are in {', '.join(currencies)}; an invoice has one "
                "currency: reprice the lines in one currency"]}, entity="invoice")
        currency = currencies[0]
        invoice = _target_invoice(uow, settings, current, currency, user)
        rounding = _rounding(uow, invoice)
        taxes = _taxes(uow, settings, rows)
        products = _products(uow, rows)
        start = _next_position(uow, invoice.id)
        values = [{**_line(row, rounding), **taxes.get(row["id"], {}), "product_id": products.get(row["product_code"]),
                   "position": start + index, "invoice_id": invoice.id, "source_ref": line_ref(row["id"])}
                  for index, row in enumerate(rows)]
        uow.create_many("invoice_line", values)
        refresh_totals(uow, [invoice.id])
    return f"invoice {invoice.id}"


def invoice_holding(uow: UnitOfWork, order: Record, lines: Sequence[Record]) -> str | None:
    """The service plugin's ``service_invoice_held``: ``"invoice <number or id>"`` of an
    invoice that is not cancelled holding one of *lines*, else ``None``. Read as the system,
    so an invoice the mover may not read still holds the work."""
    refs = [line_ref(line.id) for line in lines]
    if not refs:
        return None
    with uow.system_scope(f"check the invoices holding the work of service order {order.id}"):
        row = (uow.select("invoice_line", ("invoice_id", "invoice_id.number"))
               .where(("source_ref", "in", refs), ("invoice_id.state", "!=", "cancelled")).order_by("id").first())
    return None if row is None else f"invoice {row['invoice_id.number'] or row['invoice_id']}"


def release_orders(uow: UnitOfWork, invoice_id: int) -> list[int]:
    """Move the service orders whose work was on the cancelled invoice *invoice_id* back from
    ``invoiced`` to ``done``, unless another invoice (not cancelled) holds some of their work.
    The moves are made as the acting user (the service pipeline's permissions apply).

    :returns: the ids of the orders moved back, in id order.
    :raises PermissionDeniedError: when the acting user may not move those orders.
    """
    if "service_order" not in uow.registry:
        return []
    with uow.system_scope(f"find the service work of cancelled invoice {invoice_id}"):
        refs = [row["source_ref"] for row in uow.select("invoice_line", ("source_ref",))
                .where(("invoice_id", "=", invoice_id)).all()]
        work_ids = sorted({int(ref.split()[1]) for ref in refs if ref and ref.startswith("work_line ")})
        if not work_ids:
            return []
        orders = sorted({row["order_id"] for row in uow.select("work_line", ("order_id", "order_id.status"))
                         .where(("id", "in", work_ids)).all() if row["order_id.status"] == "invoiced"})
        if not orders:
            return []
        lines = uow.select("work_line", ("id", "order_id")).where(
            ("order_id", "in", orders), ("invoice_ref", "is not null")).all()
        held = {int(row["source_ref"].split()[1]) for row in uow.select("invoice_line", ("source_ref",)).where(
            ("source_ref", "in", [line_ref(row["id"]) for row in lines]), ("invoice_id.state", "!=", "cancelled")).all()
                } if lines else set()
    busy = {row["order_id"] for row in lines if row["id"] in held}
    free = [order for order in orders if order not in busy]
    for order in free:
        uow.move("service_order", order, "done")
    return free


def _refuse_invoiced(uow: UnitOfWork, line_ids: Sequence[int]) -> None:
    refs = [line_ref(i) for i in line_ids]
    done = (uow.select("invoice_line", ("source_ref", "invoice_id", "invoice_id.number"))
            .where(("source_ref", "in", refs), ("invoice_id.state", "!=", "cancelled")).order_by("id").limit(1).all())
    if done:
        row = done[0]
        raise ValidationError({"source_ref": [
            f"{row['source_ref']} is already on invoice {row['invoice_id.number'] or row['invoice_id']}; "
            "work is invoiced once: cancel that draft or credit that invoice first"]}, entity="invoice")


def _target_invoice(uow: UnitOfWork, settings: BillingSettings, order: Record, currency: str, user: int | None) -> Record:
    """The draft the lines go on: a new one per order, or the account's open draft of
    collected service work in *currency* (made when there is none)."""
    title = f"Service order {order.id}: {order.values.get('subject') or ''}".strip().rstrip(":")
    return _draft(uow, settings, order.values["account_id"], currency, user, title, order_ref(order.id))


def _draft(uow: UnitOfWork, settings: BillingSettings, account: int, currency: str, user: int | None,
           title: str, ref: str) -> Record:
    """A new draft titled *title* billing *ref*, or with ``service_invoicing = "account"``
    the account's open draft of collected service work in *currency* (made when there is
    none)."""
    from crm_billing.invoices import _pricing_for

    if settings.service_invoicing == "account":
        open_draft = uow.query("invoice").where(account_id=account, currency=currency, state="draft",
                                                 kind="invoice", source_ref=COLLECTED_REF).order_by("id").first()
        if open_draft is not None:
            return open_draft
        title, ref = "Service work", COLLECTED_REF
    values = {"account_id": account, "currency": currency, **_pricing_for(uow, currency), "rounding_mode": "line",
              "title": title[:200], "source_ref": ref}
    if user is not None:
        values["owner_id"] = user
    return uow.create("invoice", values)


def _rounding(uow: UnitOfWork, invoice: Record) -> Rounding:
    return rounding_for(invoice.currency, mode="line", default_method=invoice.values.get("rounding_method") or "half_up",
                        places={invoice.currency: invoice.values.get("rounding_places") or 2})


def _line(row: Mapping[str, Any], rounding: Rounding) -> dict[str, Any]:
    """An invoice line whose net amount is the work line's charge to the cent: its quantity
    and unit price (the covered share as a discount), else one unit at the charge."""
    charge: Money = row["charge"]
    quantity = Decimal(row["quantity"] or 0)
    price: Money | None = row["unit_price"]
    label = row["description"] or row["line_type"]
    day = row["report_id.work_date"]
    text = f"{label} (work report {row['report_id']}{f', {day}' if day else ''})"
    percent = Decimal(row["covered_percent"] or 0)
    tries: list[tuple[Decimal, Decimal, tuple[Decimal, ...], str]] = []
    if price is not None and price.currency == charge.currency and quantity > 0:
        if not row["charge_reason"]:
            discounts: tuple[Decimal, ...] = (percent,) if 0 < percent < 100 else ()
            covered = f", {percent.normalize():f}% covered by {row['entitlement_source']}" if discounts else ""
            tries.append((quantity, price.amount, discounts, text[:-1] + covered + ")"))
        tries.append((quantity, price.amount, (), text))
    reason = f": {row['charge_reason']}" if row["charge_reason"] else ""
    tries.append((Decimal(1), charge.amount, (), f"{text[:-1]}, charged {charge}{reason})"))
    for count, unit, discounts, description in tries:
        if rounding.round(count * unit * discount_factor(discounts)) == charge.amount:
            return {"quantity": count, "unit_price": Money(unit, charge.currency), "discounts": [str(d) for d in discounts] or None,
                    "description": description[:500]}
    raise ValidationError({"charge": [
        f"work line {row['id']}: the charge {charge} has more places than the invoice's {rounding.places}; "
        "round the charge"]}, entity="invoice_line")


def _products(uow: UnitOfWork, rows: Sequence[Mapping[str, Any]]) -> dict[str | None, int]:
    codes = sorted({row["product_code"] for row in rows if row["line_type"] == "parts" and row["product_code"]})
    if not codes:
        return {}
    return {r["code"]: r["id"] for r in uow.select("product", ("id", "code")).where(("code", "in", codes)).all()}


def _taxes(uow: UnitOfWork, settings: BillingSettings, rows: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """``{work line id: {tax_code, tax_rate}}``: a part its product's tax category, labour and
    travel the category ``service_tax_code`` names."""
    codes = sorted({row["product_code"] for row in rows if row["line_type"] == "parts" and row["product_code"]})
    by_product = {r["code"]: (r["tax_category_id.code"], r["tax_category_id.rate"]) for r in uow.select(
        "product", ("code", "tax_category_id.code", "tax_category_id.rate")).where(("code", "in", codes)).all()
        if r["tax_category_id.code"]} if codes else {}
    service = _service_tax(uow, settings)
    taxes: dict[int, dict[str, Any]] = {}
    for row in rows:
        tax = by_product.get(row["product_code"]) if row["line_type"] == "parts" else service
        if tax is not None:
            taxes[row["id"]] = {"tax_code": tax[0], "tax_rate": tax[1]}
    return taxes


def _service_tax(uow: UnitOfWork, settings: BillingSettings) -> tuple[str, Any] | None:
    """``(code, rate)`` of the tax category ``service_tax_code`` names, or ``None``.

    :raises ValidationError: for a code no tax category has.
    """
    if not settings.service_tax_code:
        return None
    found = uow.select("tax_category", ("code", "rate")).where(code=settings.service_tax_code).first()
    if found is None:
        raise ValidationError({"service_tax_code": [
            f"[plugins.billing] service_tax_code names the tax category {settings.service_tax_code!r}, which does not "
            "exist; create it in the catalog or change the setting"]}, entity="invoice_line")
    return found["code"], found["rate"]


def _next_position(uow: UnitOfWork, invoice_id: int) -> int:
    rows = uow.select("invoice_line", ("invoice_id",)).where(invoice_id=invoice_id).group_by("invoice_id").aggregate(max=["position"])
    return int(rows[0]["max_position"] or 0) + 1 if rows else 1

